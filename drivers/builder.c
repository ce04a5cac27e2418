// SPDX-License-Identifier: GPL-2.0
/*
 * usb_vsock transmit builder.
 *
 * Writers append whole packets to the transfer being filled; the submitter
 * swaps in an empty buffer and sends the full one. Only whole packets go
 * into a transfer: the Fuchsia device parses every OUT transfer on its own
 * and treats a packet that crosses a transfer boundary as a broken link.
 *
 * All copying into the buffer happens under the spinlock, so that a packet
 * is never visible half written. Data from user memory is copied with page
 * faults disabled; a fault ends the copy short, the lock is dropped, the
 * pages are faulted in, and the copy goes on.
 */

#include <linux/errno.h>
#include <linux/export.h>
#include <linux/log2.h>
#include <linux/minmax.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <kunit/visibility.h>

#include "usb_vsock/builder.h"

/**
 * usb_vsock_builder_init() - set up a builder
 * @b: the builder
 * @size: capacity of a transfer, at most what the peer reads at once
 * @maxp: wMaxPacketSize of the OUT endpoint (a power of two, at least 8),
 *	or 0 when the peer needs no protection against the lengths that
 *	usb_vsock_builder_bad_len() describes
 * @gfp: allocation flags for the first transfer buffer
 *
 * Return: 0, -EINVAL for sizes that cannot work, or -ENOMEM.
 */
int usb_vsock_builder_init(struct usb_vsock_builder *b, size_t size,
			   size_t maxp, gfp_t gfp)
{
	if (size <= USB_VSOCK_HDR_LEN)
		return -EINVAL;
	if (maxp && (maxp < 8 || !is_power_of_2(maxp)))
		return -EINVAL;

	memset(b, 0, sizeof(*b));
	spin_lock_init(&b->lock);
	init_waitqueue_head(&b->space_wq);
	init_waitqueue_head(&b->data_wq);
	b->buf = kmalloc(size, gfp);
	if (!b->buf)
		return -ENOMEM;
	b->size = size;
	b->maxp = maxp;
	b->epoch = 1;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_builder_init);

/**
 * usb_vsock_builder_destroy() - release the buffer being filled
 * @b: the builder; nobody may wait on it any more
 */
void usb_vsock_builder_destroy(struct usb_vsock_builder *b)
{
	kfree(b->buf);
	b->buf = NULL;
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_builder_destroy);

/**
 * usb_vsock_builder_bad_len() - would a transfer of @len bytes stall?
 * @b: the builder
 * @len: a transfer length
 *
 * A transfer whose length is a non-zero multiple of wMaxPacketSize ends
 * with a full packet, so it does not complete a peer's read that asked for
 * more; the bytes then wait for the next transfer and are glued to it. A
 * zero-length packet would end it on real hardware, but dummy_hcd does not
 * honour one, and whether every device does is unknown. A transfer that
 * fills the whole @b->size is fine: the peer's read is full.
 *
 * Return: true when @len must not be sent as one transfer.
 */
bool usb_vsock_builder_bad_len(const struct usb_vsock_builder *b, size_t len)
{
	return b->maxp && len && len < b->size && !(len & (b->maxp - 1));
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_builder_bad_len);

/*
 * Room for @need bytes? A Sync ends its transfer, and data yields to
 * control packets that wait, so that a stream of data cannot keep Reset,
 * Accept or an Echo reply off the link.
 */
static bool builder_fits(const struct usb_vsock_builder *b, size_t need,
			 bool prio)
{
	if (b->sealed)
		return false;
	if (!prio && b->prio_waiting)
		return false;
	return b->size - b->len >= need;
}

static bool builder_writable(const struct usb_vsock_builder *b, size_t need,
			     bool prio)
{
	return b->dead || builder_fits(b, need, prio);
}

/**
 * usb_vsock_builder_data_room() - how much stream data fits right now
 * @b: the builder
 *
 * Return: the payload one Data packet could carry without waiting, or 0
 * when usb_vsock_builder_write_data() would find no room.
 */
size_t usb_vsock_builder_data_room(struct usb_vsock_builder *b)
{
	size_t room = 0;

	spin_lock_irq(&b->lock);
	if (!b->dead && builder_fits(b, USB_VSOCK_HDR_LEN + 1, false))
		room = b->size - b->len - USB_VSOCK_HDR_LEN;
	spin_unlock_irq(&b->lock);
	return room;
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_builder_data_room);

/* Wait, with b->lock held, until @need bytes fit. */
static int builder_wait_room(struct usb_vsock_builder *b, size_t need,
			     bool prio, long *timeo)
{
	long ret;

	if (b->dead)
		return -ESHUTDOWN;
	if (builder_fits(b, need, prio))
		return 0;
	if (!*timeo)
		return -EAGAIN;

	if (prio)
		b->prio_waiting++;
	ret = wait_event_interruptible_lock_irq_timeout(b->space_wq,
							builder_writable(b, need, prio),
							b->lock, *timeo);
	if (prio && !--b->prio_waiting)
		wake_up_all(&b->space_wq);

	if (ret < 0)
		return ret;
	if (b->dead)
		return -ESHUTDOWN;
	if (!ret) {
		*timeo = 0;
		return -EAGAIN;
	}
	if (*timeo != MAX_SCHEDULE_TIMEOUT)
		*timeo = ret;
	return 0;
}

/* Account for a packet of @size bytes just written at the end of b->buf. */
static void builder_commit(struct usb_vsock_builder *b, size_t size)
{
	b->len += size;
	b->packets++;
	wake_up(&b->data_wq);
}

/**
 * usb_vsock_builder_write() - append one whole packet
 * @b: the builder
 * @type: packet type; anything but Data goes ahead of waiting Data
 * @addr: address quad, or NULL for all zeroes
 * @payload: @len bytes, in kernel memory
 * @len: payload length
 * @timeo: in: how long to wait for room, in jiffies (0: do not wait,
 *	MAX_SCHEDULE_TIMEOUT: forever); out: what is left of it
 *
 * A Sync is the last packet of its transfer: later writers wait for the
 * next one.
 *
 * Return: 0; -EMSGSIZE when the packet is larger than a transfer; -EAGAIN
 * when there was no room in time; -ERESTARTSYS on a signal; -ESHUTDOWN
 * after usb_vsock_builder_kill().
 */
int usb_vsock_builder_write(struct usb_vsock_builder *b,
			    enum usb_vsock_type type,
			    const struct usb_vsock_addr *addr,
			    const void *payload, u32 len, long *timeo)
{
	size_t size = usb_vsock_pkt_size(len);
	int ret;

	if (size > b->size)
		return -EMSGSIZE;

	spin_lock_irq(&b->lock);
	ret = builder_wait_room(b, size, type != USB_VSOCK_DATA, timeo);
	if (!ret) {
		u8 *pos = b->buf + b->len;

		usb_vsock_hdr_init((struct usb_vsock_hdr *)pos, type, addr, len);
		if (len)
			memcpy(pos + USB_VSOCK_HDR_LEN, payload, len);
		if (type == USB_VSOCK_SYNC)
			b->sealed = true;
		builder_commit(b, size);
	}
	spin_unlock_irq(&b->lock);
	return ret;
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_builder_write);

/**
 * usb_vsock_builder_write_data() - append stream data as Data packets
 * @b: the builder
 * @epoch: the session of the connection (usb_vsock_builder_epoch() when
 *	it began), read under the builder's lock: once the builder was reset,
 *	or the caller set it to 0 (the connection ended), its data must not
 *	go out
 * @addr: address quad of the connection
 * @from: the data; advanced past what was written
 * @timeo: as for usb_vsock_builder_write()
 *
 * Each Data packet takes what room the transfer has, so data larger than
 * the room is split over several packets and transfers, never a packet
 * over two transfers.
 *
 * Return: the number of bytes written if any, else -EAGAIN, -ERESTARTSYS,
 * -ESHUTDOWN (as for usb_vsock_builder_write()), -ENOTCONN for an old
 * *@epoch, or -EFAULT.
 */
ssize_t usb_vsock_builder_write_data(struct usb_vsock_builder *b,
				     const u32 *epoch,
				     const struct usb_vsock_addr *addr,
				     struct iov_iter *from, long *timeo)
{
	size_t done = 0;
	int ret = 0;

	spin_lock_irq(&b->lock);
	while (iov_iter_count(from)) {
		u8 *pos;
		size_t want, copied;

		ret = builder_wait_room(b, USB_VSOCK_HDR_LEN + 1, false, timeo);
		if (!ret && READ_ONCE(*epoch) != b->epoch)
			ret = -ENOTCONN;
		if (ret)
			break;

		pos = b->buf + b->len;
		want = min(b->size - b->len - USB_VSOCK_HDR_LEN,
			   iov_iter_count(from));
		pagefault_disable();
		copied = copy_from_iter(pos + USB_VSOCK_HDR_LEN, want, from);
		pagefault_enable();
		if (copied) {
			usb_vsock_hdr_init((struct usb_vsock_hdr *)pos,
					   USB_VSOCK_DATA, addr, copied);
			builder_commit(b, usb_vsock_pkt_size(copied));
			done += copied;
			continue;
		}

		spin_unlock_irq(&b->lock);
		if (fault_in_iov_iter_readable(from, want) == want) {
			ret = -EFAULT;
			goto out;
		}
		spin_lock_irq(&b->lock);
	}
	spin_unlock_irq(&b->lock);
out:
	return done ? done : ret;
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_builder_write_data);

/*
 * usb_vsock_builder_bad_len() says the transfer must not end where it
 * does. Find the latest place where it may end: a packet boundary, or one
 * byte before the end of a Data packet of two bytes or more, which is then
 * split. Everything behind that place moves to the start of @fresh, the
 * next transfer, in the same order. The buffer was written here, so its
 * packets need no checking. Returns the bytes placed in @fresh; *len is
 * what stays.
 */
static size_t builder_carry(struct usb_vsock_builder *b, u8 *fresh,
			    size_t *len)
{
	struct usb_vsock_hdr *hdr, *split = NULL;
	size_t off, end, cut = 0;
	u32 plen;

	*len = b->len;
	if (!usb_vsock_builder_bad_len(b, b->len))
		return 0;

	for (off = 0; off < b->len; off = end) {
		hdr = (struct usb_vsock_hdr *)(b->buf + off);
		plen = le32_to_cpu(hdr->payload_len);
		end = off + usb_vsock_pkt_size(plen);
		if (hdr->type == USB_VSOCK_DATA && plen >= 2 &&
		    !usb_vsock_builder_bad_len(b, end - 1)) {
			cut = end - 1;
			split = hdr;
		}
		if (end < b->len && !usb_vsock_builder_bad_len(b, end)) {
			cut = end;
			split = NULL;
		}
	}

	/*
	 * No place found: a lone packet that cannot be split, or control
	 * packets whose every boundary is bad too. It goes out as it is; the
	 * submitter's zero-length packet is all that can end it.
	 */
	if (!cut)
		return 0;

	*len = cut;
	if (!split) {
		memcpy(fresh, b->buf + cut, b->len - cut);
		return b->len - cut;
	}

	/* The split packet's last byte, then the packets behind it. */
	plen = le32_to_cpu(split->payload_len);
	memcpy(fresh, split, USB_VSOCK_HDR_LEN);
	((struct usb_vsock_hdr *)fresh)->payload_len = cpu_to_le32(1);
	memcpy(fresh + USB_VSOCK_HDR_LEN, b->buf + cut, b->len - cut);
	split->payload_len = cpu_to_le32(plen - 1);
	b->packets++;
	return USB_VSOCK_HDR_LEN + b->len - cut;
}

/**
 * usb_vsock_builder_take() - take the filled transfer, give an empty one
 * @b: the builder
 * @buf: in: an empty buffer of @b->size bytes from kmalloc(); out: the
 *	filled transfer, when one is returned. Both stay the caller's.
 *
 * Swapping buffers saves a copy and lets writers fill the next transfer
 * while this one is on the wire. The returned length is never one that
 * usb_vsock_builder_bad_len() refuses, except for a lone packet that
 * cannot be split and a few runs of control packets (see
 * builder_carry()); the end of the transfer may be moved to the start of
 * the next one for that.
 *
 * Return: the length of the transfer now in *@buf, or 0 when there was
 * nothing to send (and *@buf is unchanged).
 */
size_t usb_vsock_builder_take(struct usb_vsock_builder *b, u8 **buf)
{
	u8 *fresh = *buf;
	size_t len, carry;

	spin_lock_irq(&b->lock);
	if (!b->len) {
		spin_unlock_irq(&b->lock);
		return 0;
	}

	carry = builder_carry(b, fresh, &len);
	if (carry)
		b->carries++;
	*buf = b->buf;
	b->buf = fresh;
	b->len = carry;
	/* A Sync is last, so when it is still here, it moved with the tail. */
	if (!carry)
		b->sealed = false;
	wake_up_all(&b->space_wq);
	spin_unlock_irq(&b->lock);
	return len;
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_builder_take);

/**
 * usb_vsock_builder_wait_data() - wait until there is a transfer to take
 * @b: the builder
 * @timeout: in jiffies, or MAX_SCHEDULE_TIMEOUT
 *
 * Return: > 0 when there is data, 0 on timeout, -ERESTARTSYS on a signal,
 * -ESHUTDOWN after usb_vsock_builder_kill().
 */
long usb_vsock_builder_wait_data(struct usb_vsock_builder *b, long timeout)
{
	long ret;

	spin_lock_irq(&b->lock);
	ret = wait_event_interruptible_lock_irq_timeout(b->data_wq,
							b->len || b->dead,
							b->lock, timeout);
	if (b->dead)
		ret = -ESHUTDOWN;
	spin_unlock_irq(&b->lock);
	return ret;
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_builder_wait_data);

/**
 * usb_vsock_builder_kill() - fail every writer and the submitter
 * @b: the builder
 *
 * For a link that goes away or resynchronizes: whoever waits wakes up
 * with -ESHUTDOWN, and so does whoever comes later, until
 * usb_vsock_builder_reset().
 */
void usb_vsock_builder_kill(struct usb_vsock_builder *b)
{
	spin_lock_irq(&b->lock);
	b->dead = true;
	wake_up_all(&b->space_wq);
	wake_up_all(&b->data_wq);
	spin_unlock_irq(&b->lock);
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_builder_kill);

/**
 * usb_vsock_builder_reset() - drop what was not sent and start afresh
 * @b: the builder
 *
 * For a link that resynchronizes: the packets of the old link must not
 * reach the new one, and a new session (epoch) begins.
 */
void usb_vsock_builder_reset(struct usb_vsock_builder *b)
{
	spin_lock_irq(&b->lock);
	/* Never 0, so that no connection's epoch is ever "unset". */
	b->epoch = b->epoch + 1 ?: 1;
	b->len = 0;
	b->sealed = false;
	b->dead = false;
	wake_up_all(&b->space_wq);
	spin_unlock_irq(&b->lock);
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_builder_reset);

/**
 * usb_vsock_builder_epoch() - the current session of a builder
 * @b: the builder
 *
 * Return: what usb_vsock_builder_write_data() takes for this session.
 */
u32 usb_vsock_builder_epoch(struct usb_vsock_builder *b)
{
	u32 epoch;

	spin_lock_irq(&b->lock);
	epoch = b->epoch;
	spin_unlock_irq(&b->lock);
	return epoch;
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_builder_epoch);
