// SPDX-License-Identifier: GPL-2.0
/*
 * usb_vsock USB driver: binds the bridge interface, owns its URBs, and
 * moves bytes between them and the builder and parser.
 *
 * IN URBs are one wMaxPacketSize each. A device transfer that is a
 * multiple of that size ends without a short packet, and a larger URB
 * would then wait, holding the received bytes, until the device sends
 * again; an URB the size of one packet completes with every packet, so
 * received data never waits in a half-filled URB. The parser joins
 * packets that span URBs.
 *
 * OUT transfers come from the builder, whole packets of at most tx_size
 * bytes, submitted by a thread that sleeps until a transfer holds data
 * and an URB is free.
 */

#include <linux/kthread.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/usb.h>

#include "usb_vsock/link.h"
#include "usb_vsock/trace.h"

/* How soon an IN URB that could not be submitted is tried again. */
#define USB_VSOCK_RX_RETRY	(HZ / 10)

/*
 * After a failed IN transfer (-EPROTO, -EILSEQ or -ETIME while the device
 * is being unplugged, -EOVERFLOW from a babbling one) IN URBs wait this
 * long before they go out again, as in usbnet: resubmitting them at once
 * spins rx_work on errors until hub_wq has noticed the unplug.
 */
#define USB_VSOCK_RX_THROTTLE	(HZ / 8)

/* Writers woken per transfer taken: one fills it, one more in case not. */
#define USB_VSOCK_TX_WAKE	2

/* How long a suspend waits for the OUT transfers in flight to end. */
#define USB_VSOCK_SUSPEND_DRAIN	HZ

static void usb_vsock_free_urbs(struct urb **urbs, unsigned int n)
{
	unsigned int i;

	if (!urbs)
		return;
	for (i = 0; i < n; i++) {
		if (urbs[i])
			kfree(urbs[i]->transfer_buffer);
		usb_free_urb(urbs[i]);
	}
	kfree(urbs);
}

static void usb_vsock_link_release(struct kref *kref)
{
	struct usb_vsock_link *link =
		container_of(kref, struct usb_vsock_link, kref);

	usb_vsock_ctrlq_purge(link);
	usb_vsock_free_urbs(link->in_urbs, link->n_in);
	usb_vsock_free_urbs(link->out_urbs, link->n_out);
	kfree(link->out_free);
	usb_vsock_parser_destroy(&link->rx);
	usb_vsock_builder_destroy(&link->tx);
	usb_put_intf(link->intf);
	usb_put_dev(link->udev);
	kfree(link);
}

/**
 * usb_vsock_link_get() - take a reference to a link
 * @link: the link
 */
void usb_vsock_link_get(struct usb_vsock_link *link)
{
	kref_get(&link->kref);
}

/**
 * usb_vsock_link_put() - drop a reference to a link
 * @link: the link; freed with the last reference
 */
void usb_vsock_link_put(struct usb_vsock_link *link)
{
	kref_put(&link->kref, usb_vsock_link_release);
}

static bool usb_vsock_urb_killed(int status)
{
	/* Unlinked, killed, poisoned, or the device went away. */
	return status == -ENOENT || status == -ECONNRESET ||
	       status == -ESHUTDOWN || status == -ENODEV;
}

/**
 * usb_vsock_link_kick_rx() - have rx_work look at held back IN URBs
 * @link: the link
 *
 * Does nothing once the link is going away, so that rx_work never runs
 * after disconnect has cancelled it.
 */
void usb_vsock_link_kick_rx(struct usb_vsock_link *link)
{
	unsigned long flags;

	spin_lock_irqsave(&link->lock, flags);
	if (!link->disconnected)
		mod_delayed_work(system_wq, &link->rx_work, 0);
	spin_unlock_irqrestore(&link->lock, flags);
}

/**
 * usb_vsock_link_reset_device() - have the USB core reset the device
 * @link: the link
 *
 * A port reset makes the device re-create its functions: it drops what it
 * holds and forgets a link it gave up on. SET_INTERFACE would reset our
 * function alone, but a device may stall it on an interface with a single
 * alternate setting (USB 2.0, 9.4.10), and the USB core then resets only
 * the host's side and reports success. The reset runs later, from the USB
 * core's work; pre_reset and post_reset keep the link bound.
 */
void usb_vsock_link_reset_device(struct usb_vsock_link *link)
{
	atomic64_inc(&link->stats.dev_resets);
	usb_queue_reset_device(link->intf);
}

/* A failed transfer lost bytes: rx_work resynchronizes the link. */
static void usb_vsock_schedule_resync(struct usb_vsock_link *link)
{
	set_bit(USB_VSOCK_RESYNC, &link->flags);
	usb_vsock_link_kick_rx(link);
}

static void usb_vsock_tx_complete(struct urb *urb)
{
	struct usb_vsock_link *link = urb->context;
	unsigned long flags;

	if (!urb->status) {
		WRITE_ONCE(link->tx_done_at, jiffies);
	} else if (!usb_vsock_urb_killed(urb->status)) {
		atomic64_inc(&link->stats.tx_errors);
		usb_vsock_link_log(link, dev_warn,
				   "OUT transfer failed: %d\n", urb->status);
		if (urb->status == -EPIPE) {
			set_bit(USB_VSOCK_OUT_HALT, &link->flags);
			/* Seen before the resync is (usb_vsock_rx_work()). */
			smp_mb__before_atomic();
		}
		usb_vsock_schedule_resync(link);
	} else {
		/* Killed for a suspend or a reset: the device got part of it. */
		set_bit(USB_VSOCK_TX_LOST, &link->flags);
	}
	spin_lock_irqsave(&link->lock, flags);
	link->out_free[link->n_free] = urb;
	WRITE_ONCE(link->n_free, link->n_free + 1);
	spin_unlock_irqrestore(&link->lock, flags);
	if (test_bit(USB_VSOCK_TX_BLOCKED, &link->flags))
		set_bit(USB_VSOCK_TX_RECHECK, &link->flags);
	wake_up(&link->tx.data_wq);
}

static void usb_vsock_out_release(struct usb_vsock_link *link, struct urb *urb)
{
	spin_lock_irq(&link->lock);
	link->out_free[link->n_free] = urb;
	WRITE_ONCE(link->n_free, link->n_free + 1);
	spin_unlock_irq(&link->lock);
}

/* One tracepoint per packet of a transfer about to go out. */
static void usb_vsock_trace_tx(struct usb_vsock_link *link, const u8 *buf,
			       size_t len)
{
	struct usb_vsock_pkt pkt;
	size_t off;

	/* The builder wrote it: whole, valid packets. */
	for (off = 0; off < len; off += usb_vsock_pkt_size(pkt.len)) {
		if (usb_vsock_pkt_decode(buf + off, len - off, len, &pkt))
			break;
		trace_usb_vsock_tx_pkt(&link->intf->dev, pkt.type, &pkt.addr,
				       pkt.len);
	}
}

/* Take a filled transfer from the builder and put it on the wire. */
static void usb_vsock_tx_submit(struct usb_vsock_link *link)
{
	struct urb *urb = NULL;
	size_t len;
	u8 *buf;
	int ret;

	spin_lock_irq(&link->lock);
	if (link->n_free && !link->disconnected && !link->suspended &&
	    !test_bit(USB_VSOCK_OUT_HALT, &link->flags)) {
		/* Progress, for usb_vsock_link_send(), counts from here. */
		if (link->n_free == link->n_out)
			WRITE_ONCE(link->tx_done_at, jiffies);
		WRITE_ONCE(link->n_free, link->n_free - 1);
		urb = link->out_free[link->n_free];
	}
	spin_unlock_irq(&link->lock);
	if (!urb)
		return;

	buf = urb->transfer_buffer;
	len = usb_vsock_builder_take(&link->tx, &buf);
	if (!len) {
		usb_vsock_out_release(link, urb);
		return;
	}
	/*
	 * One transfer's worth of room: a few writers are enough to fill
	 * it, and waking every blocked one for each transfer costs more
	 * than the copy when many connections write at once.
	 */
	usb_vsock_transport_wake_writers(link, USB_VSOCK_TX_WAKE);

	if (trace_usb_vsock_tx_pkt_enabled())
		usb_vsock_trace_tx(link, buf, len);
	dev_dbg(&link->intf->dev, "tx transfer of %zu bytes\n", len);
	urb->transfer_buffer = buf;
	urb->transfer_buffer_length = len;
	/*
	 * Real hardware ends a transfer of a multiple of wMaxPacketSize
	 * with a zero-length packet; the builder avoids such lengths where
	 * it can, for controllers that do not.
	 */
	urb->transfer_flags = len % link->out_maxp ? 0 : URB_ZERO_PACKET;
	ret = usb_submit_urb(urb, GFP_KERNEL);
	if (ret) {
		usb_vsock_out_release(link, urb);
		/* Poisoned by a suspend or a reset that began meanwhile. */
		if (ret == -EPERM)
			set_bit(USB_VSOCK_TX_LOST, &link->flags);
		if (ret == -EPERM || ret == -ENODEV)
			return;
		atomic64_inc(&link->stats.tx_errors);
		usb_vsock_link_log(link, dev_warn,
				   "cannot submit OUT transfer: %d\n", ret);
		usb_vsock_schedule_resync(link);
	}
}

static bool usb_vsock_tx_ready(struct usb_vsock_link *link)
{
	/* Once disconnected, nothing goes out: sleep until kthread_stop(). */
	return kthread_should_stop() ||
	       (!READ_ONCE(link->disconnected) && !READ_ONCE(link->suspended) &&
		!test_bit(USB_VSOCK_OUT_HALT, &link->flags) &&
		((READ_ONCE(link->n_free) &&
		  (READ_ONCE(link->ctrlq_len) || READ_ONCE(link->tx.len))) ||
		 test_bit(USB_VSOCK_TX_RECHECK, &link->flags)));
}

/*
 * The writers woken when the last transfer was taken may have left its
 * room unused (a poll() waiter that did not write, a sendmsg() cut short
 * by a signal), and no transfer would then be taken to wake the others:
 * an OUT transfer that ends with the room still empty wakes them all.
 */
static void usb_vsock_tx_recheck(struct usb_vsock_link *link)
{
	if (test_and_clear_bit(USB_VSOCK_TX_RECHECK, &link->flags) &&
	    !READ_ONCE(link->tx.len) && !READ_ONCE(link->ctrlq_len))
		usb_vsock_transport_wake_writers(link, UINT_MAX);
}

static int usb_vsock_tx_thread(void *arg)
{
	struct usb_vsock_link *link = arg;

	while (!kthread_should_stop()) {
		wait_event_interruptible(link->tx.data_wq,
					 usb_vsock_tx_ready(link));
		usb_vsock_tx_recheck(link);
		usb_vsock_tx_flush_ctrl(link);
		usb_vsock_tx_submit(link);
		/*
		 * The transfer just taken left room: queued control packets
		 * go in now, not when the next URB is free, since data
		 * waits for them.
		 */
		usb_vsock_tx_flush_ctrl(link);
	}
	return 0;
}

static void usb_vsock_rx_complete(struct urb *urb)
{
	struct usb_vsock_link *link = urb->context;
	unsigned long flags;

	/* The URB is ours again: its urb_list is free for our use. */
	spin_lock_irqsave(&link->lock, flags);
	list_add_tail(&urb->urb_list, &link->rx_done);
	if (!link->disconnected)
		mod_delayed_work(system_wq, &link->rx_work, 0);
	spin_unlock_irqrestore(&link->lock, flags);
}

static struct urb *usb_vsock_rx_pop(struct usb_vsock_link *link,
				    struct list_head *list)
{
	struct urb *urb;

	spin_lock_irq(&link->lock);
	urb = list_first_entry_or_null(list, struct urb, urb_list);
	if (urb)
		list_del_init(&urb->urb_list);
	spin_unlock_irq(&link->lock);
	return urb;
}

/* How long IN URBs must still wait after a failed IN transfer, or 0. */
static unsigned long usb_vsock_rx_throttle_left(struct usb_vsock_link *link)
{
	long left = link->rx_throttle_end - jiffies;

	if (!link->rx_throttled || left <= 0) {
		link->rx_throttled = false;
		return 0;
	}
	return left;
}

/*
 * Send an IN URB out again, unless the link goes away, or a connection
 * is over its limit and the link must stall (protocol version 0 has no
 * other flow control), or IN transfers failed a moment ago: the URB then
 * waits in rx_idle.
 */
static void usb_vsock_rx_resubmit(struct usb_vsock_link *link,
				  struct urb *urb)
{
	int ret;

	spin_lock_irq(&link->lock);
	if (link->disconnected) {
		spin_unlock_irq(&link->lock);
		return;
	}
	if (atomic_read(&link->rx_stalls) || usb_vsock_rx_throttle_left(link)) {
		list_add_tail(&urb->urb_list, &link->rx_idle);
		spin_unlock_irq(&link->lock);
		return;
	}
	spin_unlock_irq(&link->lock);

	ret = usb_submit_urb(urb, GFP_KERNEL);
	if (!ret || ret == -ENODEV)
		return;
	/* Poisoned for a reset: it waits for usb_vsock_rx_restart(). */
	if (ret != -EPERM)
		usb_vsock_link_log(link, dev_warn,
				   "cannot submit IN transfer: %d\n", ret);
	spin_lock_irq(&link->lock);
	list_add_tail(&urb->urb_list, &link->rx_idle);
	if (!link->disconnected && ret != -EPERM)
		schedule_delayed_work(&link->rx_work, USB_VSOCK_RX_RETRY);
	spin_unlock_irq(&link->lock);
}

/*
 * A version 0 connection over its limit holds the IN URBs back: end those
 * that held them too long, and look again when the next one is due.
 */
static void usb_vsock_rx_stalled(struct usb_vsock_link *link)
{
	unsigned long next = usb_vsock_transport_expire_stalls(link);

	spin_lock_irq(&link->lock);
	if (next && !link->disconnected)
		schedule_delayed_work(&link->rx_work, next);
	spin_unlock_irq(&link->lock);
}

/* The IN endpoint stalled: stop its other URBs, then clear the halt. */
static void usb_vsock_rx_clear_halt(struct usb_vsock_link *link,
				    struct urb *stalled)
{
	unsigned int i;

	for (i = 0; i < link->n_in; i++)
		if (link->in_urbs[i] != stalled)
			usb_kill_urb(link->in_urbs[i]);
	usb_clear_halt(link->udev, link->in_pipe);
}

/*
 * The OUT endpoint stalled. The transmit thread takes no transfer until
 * USB_VSOCK_OUT_HALT clears, and usb_clear_halt() wants nothing queued
 * (USB 2.0, 5.8.5): the URBs still queued, and one the thread took just
 * before the stall, are held off while the halt is cleared. What they
 * carried is lost like the stalled one's, and the resync the stall
 * scheduled covers both, so a resume need not resynchronize again for
 * them (USB_VSOCK_TX_LOST). Poisoning nests with a suspend's.
 */
static void usb_vsock_tx_clear_halt(struct usb_vsock_link *link)
{
	unsigned int i;

	for (i = 0; i < link->n_out; i++)
		usb_poison_urb(link->out_urbs[i]);
	usb_clear_halt(link->udev, link->out_pipe);
	for (i = 0; i < link->n_out; i++)
		usb_unpoison_urb(link->out_urbs[i]);
	clear_bit(USB_VSOCK_TX_LOST, &link->flags);
	clear_bit(USB_VSOCK_OUT_HALT, &link->flags);
	wake_up(&link->tx.data_wq);
}

/* Parse one completed IN URB. Returns false when it must not go out. */
static bool usb_vsock_rx_urb(struct usb_vsock_link *link, struct urb *urb)
{
	const u8 *data = urb->transfer_buffer;
	size_t len = urb->actual_length;
	struct usb_vsock_pkt pkt;
	int ret;

	/* Killed for a halt recovery, it goes out again; poisoned, it fails. */
	if (usb_vsock_urb_killed(urb->status))
		return urb->status == -ENOENT;
	if (urb->status) {
		atomic64_inc(&link->stats.rx_errors);
		usb_vsock_link_log(link, dev_warn,
				   "IN transfer failed: %d\n", urb->status);
		if (urb->status == -EPIPE) {
			usb_vsock_rx_clear_halt(link, urb);
		} else if (!usb_vsock_rx_throttle_left(link)) {
			link->rx_throttled = true;
			link->rx_throttle_end = jiffies + USB_VSOCK_RX_THROTTLE;
		}
		usb_vsock_link_resync(link, "IN transfer failed");
		return true;
	}

	while ((ret = usb_vsock_parser_next(&link->rx, &data, &len, &pkt)) > 0)
		usb_vsock_link_recv(link, &pkt);
	/* A short URB ends the device's transfer, and with it every packet. */
	if (!ret && urb->actual_length < urb->transfer_buffer_length)
		ret = usb_vsock_parser_end(&link->rx);
	if (ret < 0) {
		atomic64_inc(&link->stats.rx_errors);
		usb_vsock_link_log(link, dev_warn,
				   "bad packet: %s\n",
				   usb_vsock_verdict_str(link->rx.error));
		usb_vsock_link_resync(link, "bad packet");
	}
	return true;
}

static void usb_vsock_urbs_poison(struct usb_vsock_link *link)
{
	unsigned int i;

	for (i = 0; i < link->n_in; i++)
		usb_poison_urb(link->in_urbs[i]);
	for (i = 0; i < link->n_out; i++)
		usb_poison_urb(link->out_urbs[i]);
}

static void usb_vsock_urbs_unpoison(struct usb_vsock_link *link)
{
	unsigned int i;

	for (i = 0; i < link->n_in; i++)
		usb_unpoison_urb(link->in_urbs[i]);
	for (i = 0; i < link->n_out; i++)
		usb_unpoison_urb(link->out_urbs[i]);
}

/*
 * The device was reset and every URB is back: what the IN URBs hold
 * belongs to the old link, so they go out again unread, after the new
 * handshake has begun. Called from rx_work only.
 */
static void usb_vsock_rx_restart(struct usb_vsock_link *link)
{
	LIST_HEAD(idle);
	struct urb *urb;

	spin_lock_irq(&link->lock);
	list_splice_init(&link->rx_done, &idle);
	list_splice_tail_init(&link->rx_idle, &idle);
	spin_unlock_irq(&link->lock);

	/* Whatever an OUT transfer lost went with the device's state. */
	clear_bit(USB_VSOCK_TX_LOST, &link->flags);
	usb_vsock_link_restart(link);
	while ((urb = list_first_entry_or_null(&idle, struct urb, urb_list))) {
		list_del_init(&urb->urb_list);
		usb_vsock_rx_resubmit(link, urb);
	}
}

/*
 * Process received transfers in order. Also where a failed OUT transfer,
 * or a device that leaves the link unread, resynchronizes the link, and
 * where held back IN URBs go out again once no connection is over its
 * limit.
 */
static void usb_vsock_rx_work(struct work_struct *work)
{
	struct usb_vsock_link *link =
		container_of(to_delayed_work(work), struct usb_vsock_link,
			     rx_work);
	unsigned int done = 0;
	unsigned long wait;
	LIST_HEAD(idle);
	struct urb *urb;

	if (test_bit(USB_VSOCK_OUT_HALT, &link->flags))
		usb_vsock_tx_clear_halt(link);
	if (test_and_clear_bit(USB_VSOCK_RESYNC, &link->flags)) {
		/* A stall is marked before its resync: the Sync needs it gone. */
		if (test_bit(USB_VSOCK_OUT_HALT, &link->flags))
			usb_vsock_tx_clear_halt(link);
		usb_vsock_link_resync(link, "OUT transfer failed");
	}
	if (test_and_clear_bit(USB_VSOCK_TX_WEDGED, &link->flags))
		usb_vsock_link_resync(link, "the device leaves the link unread");
	if (test_and_clear_bit(USB_VSOCK_RESTART, &link->flags))
		usb_vsock_rx_restart(link);

	while ((urb = usb_vsock_rx_pop(link, &link->rx_done))) {
		if (usb_vsock_rx_urb(link, urb))
			usb_vsock_rx_resubmit(link, urb);
		if (++done == 4 * link->n_in) {
			/* Let other work run; the rest waits in rx_done. */
			usb_vsock_link_kick_rx(link);
			return;
		}
	}

	if (atomic_read(&link->rx_stalls)) {
		usb_vsock_rx_stalled(link);
		return;
	}
	wait = usb_vsock_rx_throttle_left(link);
	if (wait) {
		spin_lock_irq(&link->lock);
		if (!link->disconnected)
			schedule_delayed_work(&link->rx_work, wait);
		spin_unlock_irq(&link->lock);
		return;
	}
	/* Each held back URB gets one try here; failures wait for a retry. */
	spin_lock_irq(&link->lock);
	list_splice_init(&link->rx_idle, &idle);
	spin_unlock_irq(&link->lock);
	while ((urb = list_first_entry_or_null(&idle, struct urb, urb_list))) {
		list_del_init(&urb->urb_list);
		usb_vsock_rx_resubmit(link, urb);
	}
}

static struct urb **usb_vsock_alloc_urbs(struct usb_vsock_link *link,
					 unsigned int n, size_t size,
					 unsigned int pipe,
					 usb_complete_t complete)
{
	struct urb **urbs;
	unsigned int i;
	void *buf;

	urbs = kcalloc(n, sizeof(*urbs), GFP_KERNEL);
	if (!urbs)
		return NULL;
	for (i = 0; i < n; i++) {
		urbs[i] = usb_alloc_urb(0, GFP_KERNEL);
		if (!urbs[i])
			return urbs;
		/* kmalloc(), not coherent memory: the builder swaps them. */
		buf = kmalloc(size, GFP_KERNEL);
		usb_fill_bulk_urb(urbs[i], link->udev, pipe, buf, size,
				  complete, link);
		if (!buf)
			return urbs;
	}
	return urbs;
}

static bool usb_vsock_urbs_ok(struct urb **urbs, unsigned int n)
{
	unsigned int i;

	if (!urbs)
		return false;
	for (i = 0; i < n; i++)
		if (!urbs[i] || !urbs[i]->transfer_buffer)
			return false;
	return true;
}

static int usb_vsock_check_endpoints(struct usb_interface *intf,
				     struct usb_endpoint_descriptor *in,
				     struct usb_endpoint_descriptor *out)
{
	size_t in_maxp = usb_endpoint_maxp(in), out_maxp = usb_endpoint_maxp(out);

	if (!in_maxp || !out_maxp || !is_power_of_2(out_maxp) || out_maxp < 8) {
		dev_err(&intf->dev,
			"unusable wMaxPacketSize: IN %zu, OUT %zu\n",
			in_maxp, out_maxp);
		return -ENODEV;
	}
	return 0;
}

/*
 * Take a running link down for good and drop the interface's reference:
 * no new connection (CID gone), no more transfers, every connection reset.
 */
static void usb_vsock_shutdown(struct usb_vsock_link *link)
{
	struct usb_interface *intf = link->intf;

	usb_vsock_link_stop(link);

	spin_lock_irq(&link->lock);
	WRITE_ONCE(link->disconnected, true);
	spin_unlock_irq(&link->lock);

	usb_vsock_builder_kill(&link->tx);
	kthread_stop(link->tx_thread);
	/* Poisoned URBs are waited for and can never go out again. */
	usb_vsock_urbs_poison(link);
	cancel_delayed_work_sync(&link->rx_work);

	usb_vsock_transport_reset_link(link);
	usb_vsock_ctrlq_purge(link);
	usb_set_intfdata(intf, NULL);
	usb_vsock_link_put(link);
}

static int usb_vsock_probe(struct usb_interface *intf,
			   const struct usb_device_id *id)
{
	struct usb_endpoint_descriptor *in, *out;
	struct usb_vsock_link *link;
	unsigned int i;
	int ret;

	ret = usb_find_common_endpoints(intf->cur_altsetting, &in, &out,
					NULL, NULL);
	if (ret) {
		dev_err(&intf->dev, "needs one bulk IN and one bulk OUT endpoint\n");
		return -ENODEV;
	}
	ret = usb_vsock_check_endpoints(intf, in, out);
	if (ret)
		return ret;

	link = kzalloc(sizeof(*link), GFP_KERNEL);
	if (!link)
		return -ENOMEM;
	kref_init(&link->kref);
	link->udev = usb_get_dev(interface_to_usbdev(intf));
	/* Every log line names it, and the link can outlive disconnect. */
	link->intf = usb_get_intf(intf);
	link->in_pipe = usb_rcvbulkpipe(link->udev, usb_endpoint_num(in));
	link->out_pipe = usb_sndbulkpipe(link->udev, usb_endpoint_num(out));
	link->in_maxp = usb_endpoint_maxp(in);
	link->out_maxp = usb_endpoint_maxp(out);
	usb_vsock_link_init(link);
	spin_lock_init(&link->lock);
	INIT_LIST_HEAD(&link->rx_done);
	INIT_LIST_HEAD(&link->rx_idle);
	atomic_set(&link->rx_stalls, 0);
	INIT_DELAYED_WORK(&link->rx_work, usb_vsock_rx_work);

	ret = usb_vsock_builder_init(&link->tx, usb_vsock_tx_size,
				     link->out_maxp, GFP_KERNEL);
	if (ret)
		goto err_put;
	ret = usb_vsock_parser_init(&link->rx, USB_VSOCK_MAX_PAYLOAD,
				    GFP_KERNEL);
	if (ret)
		goto err_put;

	ret = -ENOMEM;
	link->in_urbs = usb_vsock_alloc_urbs(link, usb_vsock_rx_urbs,
					     link->in_maxp, link->in_pipe,
					     usb_vsock_rx_complete);
	if (link->in_urbs)
		link->n_in = usb_vsock_rx_urbs;
	link->out_urbs = usb_vsock_alloc_urbs(link, usb_vsock_tx_urbs,
					      usb_vsock_tx_size, link->out_pipe,
					      usb_vsock_tx_complete);
	if (link->out_urbs)
		link->n_out = usb_vsock_tx_urbs;
	link->out_free = kcalloc(link->n_out, sizeof(*link->out_free),
				 GFP_KERNEL);
	if (!usb_vsock_urbs_ok(link->in_urbs, link->n_in) ||
	    !usb_vsock_urbs_ok(link->out_urbs, link->n_out) || !link->out_free)
		goto err_put;
	for (i = 0; i < link->n_out; i++)
		link->out_free[link->n_free++] = link->out_urbs[i];
	link->tx_done_at = jiffies;

	usb_set_intfdata(intf, link);
	link->tx_thread = kthread_run(usb_vsock_tx_thread, link, "usb_vsock/%s",
				      dev_name(&intf->dev));
	if (IS_ERR(link->tx_thread)) {
		ret = PTR_ERR(link->tx_thread);
		goto err_intfdata;
	}

	/* A suspended device could not open connections without it. */
	intf->needs_remote_wakeup = 1;

	/* Before any IN URB: from then on, only rx_work owns the parser. */
	usb_vsock_link_start(link);
	for (i = 0; i < link->n_in; i++) {
		ret = usb_submit_urb(link->in_urbs[i], GFP_KERNEL);
		if (ret) {
			dev_err(&intf->dev, "cannot submit IN transfer: %d\n",
				ret);
			goto err_stop;
		}
	}
	return 0;

err_stop:
	usb_vsock_shutdown(link);
	return ret;
err_intfdata:
	usb_set_intfdata(intf, NULL);
err_put:
	usb_vsock_link_put(link);
	return ret;
}

static void usb_vsock_disconnect(struct usb_interface *intf)
{
	usb_vsock_shutdown(usb_get_intfdata(intf));
	dev_info(&intf->dev, "usb_vsock link down\n");
}

/*
 * The device is reset (usb_vsock_link_reset_device(), usbreset, another
 * interface's driver): no URB may be in flight, and the device forgets
 * the link, so a new handshake follows.
 */
static int usb_vsock_pre_reset(struct usb_interface *intf)
{
	usb_vsock_urbs_poison(usb_get_intfdata(intf));
	return 0;
}

static void usb_vsock_unsuspend(struct usb_vsock_link *link)
{
	usb_vsock_urbs_unpoison(link);
	spin_lock_irq(&link->lock);
	link->suspended = false;
	spin_unlock_irq(&link->lock);
}

/* Also the reset_resume handler: the device lost its state either way. */
static int usb_vsock_post_reset(struct usb_interface *intf)
{
	struct usb_vsock_link *link = usb_get_intfdata(intf);

	usb_vsock_unsuspend(link);
	set_bit(USB_VSOCK_RESTART, &link->flags);
	usb_vsock_link_kick_rx(link);
	wake_up(&link->tx.data_wq);
	return 0;
}

/*
 * Autosuspend waits for an idle link that is up: each connection holds a
 * PM reference (usb_vsock_link_pm_get()), and a handshake or queued
 * packets need the device awake.
 */
static bool usb_vsock_link_idle(struct usb_vsock_link *link)
{
	return READ_ONCE(link->state) == USB_VSOCK_UP &&
	       !READ_ONCE(link->ctrlq_len) && !READ_ONCE(link->tx.len) &&
	       READ_ONCE(link->n_free) == link->n_out;
}

/*
 * Nothing is submitted until the device resumes. An OUT transfer cut
 * short would break the stream the device reads, so those in flight get
 * a moment to end; any that does not is killed and the link resynchronizes
 * on resume.
 */
static int usb_vsock_suspend(struct usb_interface *intf, pm_message_t msg)
{
	struct usb_vsock_link *link = usb_get_intfdata(intf);

	if (PMSG_IS_AUTO(msg) && !usb_vsock_link_idle(link))
		return -EBUSY;
	spin_lock_irq(&link->lock);
	link->suspended = true;
	spin_unlock_irq(&link->lock);
	wait_event_timeout(link->tx.data_wq,
			   READ_ONCE(link->n_free) == link->n_out,
			   USB_VSOCK_SUSPEND_DRAIN);
	usb_vsock_urbs_poison(link);
	return 0;
}

/* The device kept its state, and so do the link and its connections. */
static int usb_vsock_resume(struct usb_interface *intf)
{
	struct usb_vsock_link *link = usb_get_intfdata(intf);

	usb_vsock_unsuspend(link);
	if (test_and_clear_bit(USB_VSOCK_TX_LOST, &link->flags))
		set_bit(USB_VSOCK_RESYNC, &link->flags);
	usb_vsock_link_kick_rx(link);
	wake_up(&link->tx.data_wq);
	return 0;
}

/**
 * usb_vsock_link_pm_get() - keep the device awake for a connection
 * @link: the link
 *
 * Resumes a suspended device, asynchronously: what is sent meanwhile waits
 * in the builder. May be called in atomic context.
 *
 * Return: true if a reference was taken, for usb_vsock_link_pm_put().
 */
bool usb_vsock_link_pm_get(struct usb_vsock_link *link)
{
	return !usb_autopm_get_interface_async(link->intf);
}

/**
 * usb_vsock_link_pm_put() - drop a reference of usb_vsock_link_pm_get()
 * @link: the link
 *
 * May be called in atomic context.
 */
void usb_vsock_link_pm_put(struct usb_vsock_link *link)
{
	usb_autopm_put_interface_async(link->intf);
}

static const struct usb_device_id usb_vsock_ids[] = {
	{ USB_VENDOR_AND_INTERFACE_INFO(USB_VSOCK_VENDOR_GOOGLE,
					USB_VSOCK_IF_CLASS,
					USB_VSOCK_IF_SUBCLASS,
					USB_VSOCK_IF_PROTOCOL) },
	{ }
};
MODULE_DEVICE_TABLE(usb, usb_vsock_ids);

static struct usb_driver usb_vsock_driver = {
	.name = "usb_vsock",
	.probe = usb_vsock_probe,
	.disconnect = usb_vsock_disconnect,
	.suspend = usb_vsock_suspend,
	.resume = usb_vsock_resume,
	.reset_resume = usb_vsock_post_reset,
	.pre_reset = usb_vsock_pre_reset,
	.post_reset = usb_vsock_post_reset,
	.supports_autosuspend = 1,
	.id_table = usb_vsock_ids,
	.dev_groups = usb_vsock_groups,
	.disable_hub_initiated_lpm = 1,
};

/**
 * usb_vsock_usb_register() - register the USB driver
 *
 * Return: 0 or a negative errno.
 */
int usb_vsock_usb_register(void)
{
	return usb_register(&usb_vsock_driver);
}

/**
 * usb_vsock_usb_deregister() - unbind every interface and unregister
 */
void usb_vsock_usb_deregister(void)
{
	usb_deregister(&usb_vsock_driver);
}
