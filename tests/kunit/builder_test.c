// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for the usb_vsock transmit builder: the Fuchsia seed tests,
 * data splitting, transfer lengths that would stall the peer, control
 * packet priority, and waking waiters.
 */

#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/list.h>
#include <linux/math.h>
#include <linux/prandom.h>
#include <linux/sched.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uio.h>
#include <linux/wait.h>

#include "usb_vsock/builder.h"
#include "usb_vsock/packet.h"

/* Generous: only a broken builder makes a test wait this long. */
#define TEST_WAIT	(30 * HZ)
/* How long a writer thread may take to go to sleep. */
#define ASLEEP_WAIT	(10 * HZ)

struct bfix {
	struct usb_vsock_builder b;
	u8 *spare;		/* the empty buffer handed to take() */
	size_t size, maxp;	/* what the builder was made with */
};

static void bfix_release(void *arg)
{
	struct bfix *f = arg;

	usb_vsock_builder_destroy(&f->b);
	kfree(f->spare);
}

static struct bfix *bfix_new(struct kunit *test, size_t size, size_t maxp)
{
	struct bfix *f = kunit_kzalloc(test, sizeof(*f), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, f);
	KUNIT_ASSERT_EQ(test, usb_vsock_builder_init(&f->b, size, maxp,
						     GFP_KERNEL), 0);
	f->spare = kmalloc(size, GFP_KERNEL);
	if (!f->spare)
		usb_vsock_builder_destroy(&f->b);
	KUNIT_ASSERT_NOT_NULL(test, f->spare);
	KUNIT_ASSERT_EQ(test, kunit_add_action_or_reset(test, bfix_release, f),
			0);
	f->size = size;
	f->maxp = maxp;
	return f;
}

/*
 * The tests' own rule for a transfer length that stalls the device, from
 * the protocol (Documentation/usb_vsock.rst): the device reads every OUT
 * transfer with a request of the transfer size, and a transfer whose
 * length is a non-zero multiple of wMaxPacketSize below that ends on a
 * full packet, so it does not complete the read; its bytes are glued to
 * the next transfer. A transfer of the whole size completes the read.
 * Written apart from usb_vsock_builder_bad_len() on purpose: a builder
 * with a wrong rule must fail here.
 */
static bool stalls(const struct bfix *f, size_t len)
{
	return f->maxp && len && len < f->size && len % f->maxp == 0;
}

/* Bytes in the transfer being filled. */
static size_t pending(struct bfix *f)
{
	size_t len;

	spin_lock_irq(&f->b.lock);
	len = f->b.len;
	spin_unlock_irq(&f->b.lock);
	return len;
}

/* Take a transfer; *out points at it until the next take. */
static size_t take(struct bfix *f, const u8 **out)
{
	size_t len = usb_vsock_builder_take(&f->b, &f->spare);

	*out = f->spare;
	return len;
}

static long forever = MAX_SCHEDULE_TIMEOUT;

/* A writer on a thread of its own. */
struct writer {
	struct bfix *f;
	struct task_struct *task;	/* referenced until writer_join() */
	struct completion done;
	int (*fn)(struct writer *w);
	int ret;
	enum usb_vsock_type type;
	u32 len;
	const u8 *payload;
	struct usb_vsock_addr addr;
};

static int writer_thread(void *arg)
{
	struct writer *w = arg;

	w->ret = w->fn(w);
	complete(&w->done);
	return 0;
}

static void writer_start(struct kunit *test, struct writer *w)
{
	struct task_struct *t;

	init_completion(&w->done);
	t = kthread_create(writer_thread, w, "usb_vsock_kunit");
	KUNIT_ASSERT_FALSE(test, IS_ERR(t));
	get_task_struct(t);
	w->task = t;
	wake_up_process(t);
}

/*
 * Wait for a writer; a stuck one is freed by killing the builder, and by
 * waking its queues here too, in case what is broken is that kill does
 * not wake them.
 */
static void writer_join(struct kunit *test, struct writer *w)
{
	if (!wait_for_completion_timeout(&w->done, TEST_WAIT)) {
		KUNIT_FAIL(test, "writer stuck");
		usb_vsock_builder_kill(&w->f->b);
		wake_up_all(&w->f->b.space_wq);
		wake_up_all(&w->f->b.data_wq);
		wait_for_completion(&w->done);
	}
	put_task_struct(w->task);
}

static int write_one(struct writer *w)
{
	long timeo = MAX_SCHEDULE_TIMEOUT;

	return usb_vsock_builder_write(&w->f->b, w->type, &w->addr,
				       w->payload, w->len, &timeo);
}

/* Is @t queued on @wq? Called with interrupts off. */
static bool on_queue(struct wait_queue_head *wq, struct task_struct *t)
{
	struct wait_queue_entry *e;
	bool found = false;

	spin_lock(&wq->lock);
	list_for_each_entry(e, &wq->head, entry)
		if (e->private == t)
			found = true;
	spin_unlock(&wq->lock);
	return found;
}

/*
 * Does @w sleep on @wq? Polled for up to @timeout jiffies (0: look once);
 * false as soon as it is done. The builder waits with its lock held
 * until it is queued and has found its condition false; with that lock
 * held here, a queued writer is one that sleeps until it is woken, and
 * one that was woken has left the queue.
 */
static bool writer_asleep(struct writer *w, struct wait_queue_head *wq,
			  unsigned long timeout)
{
	unsigned long end = jiffies + timeout;
	bool queued;

	for (;;) {
		if (completion_done(&w->done))
			return false;
		spin_lock_irq(&w->f->b.lock);
		queued = on_queue(wq, w->task);
		spin_unlock_irq(&w->f->b.lock);
		if (queued && !task_is_running(w->task))
			return true;
		if (!time_before(jiffies, end))
			return false;
		usleep_range(100, 200);
	}
}

static void expect_asleep(struct kunit *test, struct writer *w,
			  struct wait_queue_head *wq, unsigned long timeout,
			  const char *what)
{
	if (writer_asleep(w, wq, timeout))
		return;
	if (completion_done(&w->done))
		KUNIT_FAIL(test, "%s: returned %d instead of sleeping", what,
			   w->ret);
	else
		KUNIT_FAIL(test, "%s: not asleep on its wait queue", what);
}

/* Seed test 1: one packet in, the same packet out. */
static void usb_vsock_test_builder_roundtrip(struct kunit *test)
{
	static const char hello[] = "hello world!";
	struct usb_vsock_addr addr = { 1, 2, 3, 4 };
	size_t size = usb_vsock_pkt_size(sizeof(hello) - 1);
	struct usb_vsock_pkt pkt;
	struct bfix *f = bfix_new(test, size, 0);
	const u8 *buf;
	long timeo = 0;

	KUNIT_EXPECT_EQ(test, take(f, &buf), (size_t)0);
	KUNIT_EXPECT_EQ(test, usb_vsock_builder_wait_data(&f->b, 0), 0L);

	KUNIT_ASSERT_EQ(test, usb_vsock_builder_write(&f->b, USB_VSOCK_DATA,
						      &addr, hello,
						      sizeof(hello) - 1,
						      &timeo), 0);
	/* Full now: no room for even a bare header. */
	KUNIT_EXPECT_EQ(test, usb_vsock_builder_write(&f->b, USB_VSOCK_RESET,
						      &addr, NULL, 0, &timeo),
			-EAGAIN);
	KUNIT_EXPECT_GT(test, usb_vsock_builder_wait_data(&f->b, 0), 0L);

	KUNIT_ASSERT_EQ(test, take(f, &buf), size);
	KUNIT_ASSERT_EQ(test, usb_vsock_pkt_decode(buf, size,
						   USB_VSOCK_MAX_PAYLOAD, &pkt),
			USB_VSOCK_PKT_OK);
	KUNIT_EXPECT_EQ(test, pkt.type, USB_VSOCK_DATA);
	KUNIT_EXPECT_EQ(test, memcmp(&pkt.addr, &addr, sizeof(addr)), 0);
	KUNIT_EXPECT_EQ(test, pkt.len, (u32)sizeof(hello) - 1);
	KUNIT_EXPECT_EQ(test, memcmp(pkt.payload, hello, pkt.len), 0);
	KUNIT_EXPECT_EQ(test, take(f, &buf), (size_t)0);
}

#define NUMBERED	1024
/* A packet of 96 bytes: two of them fill 192 of 256, a multiple of 64. */
#define NUMBERED_LEN	72

static u32 numbered(u32 num, char *payload)
{
	int n = snprintf(payload, NUMBERED_LEN, "packet #%u!", num);

	memset(payload + n, '.', NUMBERED_LEN - n);
	return NUMBERED_LEN;
}

static int write_numbered(struct writer *w)
{
	char payload[NUMBERED_LEN];
	u32 num;
	int ret;

	for (num = 0; num < NUMBERED; num++) {
		struct usb_vsock_addr addr = { num, num, num, num };
		u32 len = numbered(num, payload);
		long timeo = MAX_SCHEDULE_TIMEOUT;

		ret = usb_vsock_builder_write(&w->f->b, USB_VSOCK_DATA, &addr,
					      payload, len, &timeo);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Seed test 2: 1024 numbered packets through a 256-byte builder from a
 * concurrent writer, read back in order. With a wMaxPacketSize, the
 * builder may split a packet's last byte into the next transfer, so the
 * reader joins consecutive pieces of the same address.
 *
 * Every other transfer is taken as soon as there is data, the others only
 * once the writer sleeps for room (or is done): full, that is two packets
 * or 192 bytes when the builder was empty, which stalls with wMaxPacketSize
 * 64. Such a take follows one that left the builder empty unless that one
 * carried, so with 64 the carry path is taken whatever the timing.
 */
static void usb_vsock_test_builder_many(struct kunit *test)
{
	const size_t *maxp = test->param_value;
	struct bfix *f = bfix_new(test, 256, *maxp);
	struct writer w = { .f = f, .fn = write_numbered };
	u32 num = 0, got = 0, transfers = 0, stalling = 0;
	char want[NUMBERED_LEN], have[NUMBERED_LEN];

	writer_start(test, &w);
	while (num < NUMBERED) {
		const u8 *buf;
		size_t len, off = 0, before = 0;

		if (usb_vsock_builder_wait_data(&f->b, TEST_WAIT) <= 0)
			break;
		if (!(transfers & 1)) {
			if (!writer_asleep(&w, &f->b.space_wq, ASLEEP_WAIT) &&
			    !completion_done(&w.done)) {
				KUNIT_FAIL(test, "writer neither waits nor ends");
				break;
			}
			before = pending(f);
		}
		len = take(f, &buf);
		transfers++;
		KUNIT_EXPECT_FALSE_MSG(test, stalls(f, len),
				       "transfer %u of %zu bytes", transfers,
				       len);
		if (stalls(f, before)) {
			stalling++;
			KUNIT_EXPECT_LT(test, len, before);
		}
		while (off < len && num < NUMBERED) {
			struct usb_vsock_pkt pkt;
			u32 wlen = numbered(num, want);

			if (usb_vsock_pkt_decode(buf + off, len - off,
						 USB_VSOCK_MAX_PAYLOAD, &pkt)) {
				KUNIT_FAIL(test, "bad packet at %zu", off);
				goto out;
			}
			off += usb_vsock_pkt_size(pkt.len);
			if (pkt.addr.device_port != num ||
			    got + pkt.len > wlen) {
				KUNIT_FAIL(test, "packet %u out of order", num);
				goto out;
			}
			memcpy(have + got, pkt.payload, pkt.len);
			got += pkt.len;
			if (got == wlen) {
				KUNIT_EXPECT_EQ(test, memcmp(have, want, wlen),
						0);
				num++;
				got = 0;
			}
		}
		KUNIT_EXPECT_EQ(test, off, len);
	}
out:
	writer_join(test, &w);
	KUNIT_EXPECT_EQ(test, w.ret, 0);
	KUNIT_EXPECT_EQ(test, num, (u32)NUMBERED);
	if (f->maxp) {
		/* The path this case is for was taken, and counted. */
		KUNIT_EXPECT_GT(test, stalling, 0U);
		KUNIT_EXPECT_GE(test, f->b.carries, (u64)stalling);
	} else {
		KUNIT_EXPECT_EQ(test, f->b.carries, 0ULL);
	}
	kunit_info(test, "%u packets in %u transfers, %u stalling, %llu carries\n",
		   num, transfers, stalling, f->b.carries);
}

static const size_t many_maxp[] = { 0, 64 };

static void maxp_desc(const size_t *maxp, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "maxp %zu", *maxp);
}

KUNIT_ARRAY_PARAM(many_maxp, many_maxp, maxp_desc);

static int write_now(struct bfix *f, const u8 *payload, u32 len)
{
	long timeo = 0;

	return usb_vsock_builder_write(&f->b, USB_VSOCK_DATA, NULL, payload,
				       len, &timeo);
}

/*
 * Seed test 3: nothing to take from an empty builder; a writer that needs
 * more room than is free waits; taking the transfer frees the room.
 */
static void usb_vsock_test_builder_fillable(struct kunit *test)
{
	struct bfix *f = bfix_new(test, USB_VSOCK_MTU, 0);
	static u8 big[USB_VSOCK_MAX_PAYLOAD], small[99];
	int round;

	memset(small, 'a', sizeof(small));
	for (round = 0; round < 10; round++) {
		struct writer w = {
			.f = f, .fn = write_one, .type = USB_VSOCK_DATA,
			.payload = big,
			/* One byte more than is left after two packets. */
			.len = USB_VSOCK_MTU - 2 * usb_vsock_pkt_size(99) -
			       USB_VSOCK_HDR_LEN + 1,
		};
		const u8 *buf;
		size_t len;

		KUNIT_EXPECT_EQ(test, take(f, &buf), (size_t)0);
		KUNIT_EXPECT_EQ(test, usb_vsock_builder_wait_data(&f->b, 1),
				0L);

		KUNIT_EXPECT_EQ(test, write_now(f, small, 99), 0);
		KUNIT_EXPECT_EQ(test, write_now(f, small, 99), 0);
		KUNIT_EXPECT_EQ(test, write_now(f, big, w.len), -EAGAIN);

		writer_start(test, &w);
		expect_asleep(test, &w, &f->b.space_wq, ASLEEP_WAIT,
			      "writer of a packet that does not fit");
		/* Nothing wakes it while the transfer stays full. */
		msleep(20);
		expect_asleep(test, &w, &f->b.space_wq, 0,
			      "the same writer 20 ms later");

		len = take(f, &buf);
		KUNIT_EXPECT_EQ(test, len, 2 * usb_vsock_pkt_size(99));
		writer_join(test, &w);
		KUNIT_EXPECT_EQ(test, w.ret, 0);
		KUNIT_EXPECT_EQ(test, take(f, &buf), usb_vsock_pkt_size(w.len));
	}
}

/* Transfers may be larger than USB_VSOCK_MTU here: allow any payload. */
static enum usb_vsock_verdict decode(const u8 *buf, size_t len,
				     struct usb_vsock_pkt *pkt)
{
	return usb_vsock_pkt_decode(buf, len, len, pkt);
}

/* Check a transfer holds whole packets; append its Data to @stream. */
static void check_transfer(struct kunit *test, const u8 *buf, size_t len,
			   u8 *stream, size_t *have, unsigned int *pkts)
{
	struct usb_vsock_pkt pkt;
	size_t off = 0;

	while (off < len) {
		KUNIT_ASSERT_EQ(test, decode(buf + off, len - off, &pkt),
				USB_VSOCK_PKT_OK);
		if (pkt.type == USB_VSOCK_DATA) {
			memcpy(stream + *have, pkt.payload, pkt.len);
			*have += pkt.len;
		}
		off += usb_vsock_pkt_size(pkt.len);
		(*pkts)++;
	}
	KUNIT_EXPECT_EQ(test, off, len);
}

/* Data larger than the room is split into Data packets, none across. */
static void usb_vsock_test_builder_split(struct kunit *test)
{
	struct bfix *f = bfix_new(test, 256, 0);
	size_t i, total = 3000, have = 0, written = 0;
	unsigned int pkts = 0, transfers = 0;
	struct iov_iter iter;
	struct kvec kv;
	u8 *src, *dst;

	src = kunit_kmalloc(test, total, GFP_KERNEL);
	dst = kunit_kzalloc(test, total, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, src);
	KUNIT_ASSERT_NOT_NULL(test, dst);
	for (i = 0; i < total; i++)
		src[i] = i * 13;

	/* Start half full, so that the first packet is short. */
	KUNIT_ASSERT_EQ(test, usb_vsock_builder_write(&f->b, USB_VSOCK_ECHO,
						      NULL, src, 100, &forever),
			0);
	kv.iov_base = src;
	kv.iov_len = total;
	iov_iter_kvec(&iter, ITER_SOURCE, &kv, 1, total);
	while (iov_iter_count(&iter)) {
		long timeo = 0;
		ssize_t n = usb_vsock_builder_write_data(&f->b, &f->b.epoch,
							 NULL, &iter, &timeo);
		const u8 *buf;
		size_t len;

		KUNIT_ASSERT_GT(test, n, 0);
		written += n;
		len = take(f, &buf);
		KUNIT_ASSERT_GT(test, len, (size_t)0);
		KUNIT_EXPECT_LE(test, len, (size_t)256);
		check_transfer(test, buf, len, dst, &have, &pkts);
		transfers++;
	}
	KUNIT_EXPECT_EQ(test, written, total);
	KUNIT_EXPECT_EQ(test, have, total);
	KUNIT_EXPECT_EQ(test, memcmp(src, dst, total), 0);
	/* The Echo, 108 bytes behind it, then 232 bytes a packet. */
	KUNIT_EXPECT_EQ(test, pkts, 2 + DIV_ROUND_UP(3000 - 108, 232));
	KUNIT_EXPECT_EQ(test, transfers, pkts - 1);
}

/* The exact case of the rig: 512-byte packets, 1024-byte reads. */
static void usb_vsock_test_builder_no_stall(struct kunit *test)
{
	struct bfix *f = bfix_new(test, USB_VSOCK_MTU, 512);
	u8 *payload, *stream;
	size_t have = 0;
	unsigned int pkts = 0;
	const u8 *buf;
	size_t len;

	payload = kunit_kmalloc(test, 488, GFP_KERNEL);
	stream = kunit_kmalloc(test, 488, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, payload);
	KUNIT_ASSERT_NOT_NULL(test, stream);
	memset(payload, 0x5a, 488);
	payload[487] = 0xa5;

	/* 24 + 488 = 512: would not end the device's 1024-byte read. */
	KUNIT_ASSERT_EQ(test, usb_vsock_builder_write(&f->b, USB_VSOCK_DATA,
						      NULL, payload, 488,
						      &forever), 0);
	len = take(f, &buf);
	KUNIT_EXPECT_EQ(test, len, (size_t)511);
	check_transfer(test, buf, len, stream, &have, &pkts);
	len = take(f, &buf);
	KUNIT_EXPECT_EQ(test, len, usb_vsock_pkt_size(1));
	check_transfer(test, buf, len, stream, &have, &pkts);
	KUNIT_EXPECT_EQ(test, have, (size_t)488);
	KUNIT_EXPECT_EQ(test, memcmp(stream, payload, 488), 0);
	KUNIT_EXPECT_EQ(test, f->b.carries, 1ULL);

	/* A full transfer is fine even though 1024 is a multiple of 512. */
	KUNIT_ASSERT_EQ(test, usb_vsock_builder_write(&f->b, USB_VSOCK_DATA,
						      NULL, payload, 488,
						      &forever), 0);
	KUNIT_ASSERT_EQ(test, usb_vsock_builder_write(&f->b, USB_VSOCK_DATA,
						      NULL, payload, 488,
						      &forever), 0);
	KUNIT_EXPECT_EQ(test, take(f, &buf), (size_t)USB_VSOCK_MTU);
}

/* Stream bytes for connection @c at offset @off. */
static u8 conn_byte(unsigned int c, size_t off)
{
	return c * 37 + off * 11 + (off >> 8);
}

struct conn {
	size_t sent, rcvd;
};

/*
 * A stalling transfer that could not have been helped: no packet boundary
 * inside it is a length that does not stall, and no Data packet could give
 * its last byte to the next transfer (one of two bytes or more can: if
 * its end less one stalls, its end does not).
 */
static bool unavoidable(const struct bfix *f, const u8 *buf, size_t len)
{
	size_t off, end;

	for (off = 0; off < len; off = end) {
		const struct usb_vsock_hdr *hdr = (const void *)(buf + off);
		u32 plen = le32_to_cpu(hdr->payload_len);

		end = off + usb_vsock_pkt_size(plen);
		if (end < len && !stalls(f, end))
			return false;
		if (hdr->type == USB_VSOCK_DATA && plen >= 2)
			return false;
	}
	return true;
}

struct rnd_stats {
	unsigned int stalling;	/* takes that found a stalling length */
	unsigned int bad;	/* transfers sent with one: unavoidable */
};

static void drain(struct kunit *test, struct bfix *f, struct conn *conns,
		  struct rnd_stats *st)
{
	struct usb_vsock_pkt pkt;
	const u8 *buf;
	size_t len, off, before;

	before = pending(f);
	len = take(f, &buf);
	if (!len)
		return;
	if (stalls(f, before))
		st->stalling++;
	if (stalls(f, len)) {
		KUNIT_EXPECT_TRUE_MSG(test, unavoidable(f, buf, len),
				      "transfer of %zu bytes", len);
		st->bad++;
	}
	for (off = 0; off < len; off += usb_vsock_pkt_size(pkt.len)) {
		struct conn *c;
		u32 i;

		KUNIT_ASSERT_EQ(test, decode(buf + off, len - off, &pkt),
				USB_VSOCK_PKT_OK);
		if (pkt.type != USB_VSOCK_DATA)
			continue;
		KUNIT_ASSERT_LT(test, pkt.addr.device_port, 4U);
		c = &conns[pkt.addr.device_port];
		for (i = 0; i < pkt.len; i++)
			KUNIT_ASSERT_EQ_MSG(test, pkt.payload[i],
					    conn_byte(pkt.addr.device_port,
						      c->rcvd + i),
					    "conn %u byte %zu",
					    pkt.addr.device_port, c->rcvd + i);
		c->rcvd += pkt.len;
	}
	KUNIT_EXPECT_EQ(test, off, len);
}

/* Write @n bytes of connection @addr's stream, without waiting. */
static ssize_t send_data(struct bfix *f, const struct usb_vsock_addr *addr,
			 struct conn *cn, u8 *src, size_t n)
{
	struct kvec kv = { src, n };
	struct iov_iter iter;
	long timeo = 0;
	ssize_t done;
	size_t i;

	for (i = 0; i < n; i++)
		src[i] = conn_byte(addr->device_port, cn->sent + i);
	iov_iter_kvec(&iter, ITER_SOURCE, &kv, 1, n);
	done = usb_vsock_builder_write_data(&f->b, &f->b.epoch, addr, &iter,
					    &timeo);
	if (done > 0)
		cn->sent += done;
	return done;
}

/*
 * Write Data (with @src) or an Echo reply (with @echo) of two bytes or
 * more that ends the transfer on a multiple of wMaxPacketSize below the
 * transfer size, when one fits.
 */
static void aim(struct kunit *test, struct bfix *f,
		const struct usb_vsock_addr *addr, struct conn *cn, u8 *src,
		const u8 *echo)
{
	size_t n = pending(f) + USB_VSOCK_HDR_LEN;
	size_t end = roundup(n + 2, f->maxp);
	long timeo = 0;
	ssize_t ret;

	if (end >= f->size)
		return;
	if (echo) {
		ret = usb_vsock_builder_write(&f->b, USB_VSOCK_ECHO_REPLY, addr,
					      echo, end - n, &timeo);
		KUNIT_EXPECT_EQ(test, ret, (ssize_t)0);
	} else {
		ret = send_data(f, addr, cn, src, end - n);
		KUNIT_EXPECT_EQ(test, ret, (ssize_t)(end - n));
	}
	KUNIT_EXPECT_EQ(test, pending(f), end);
}

struct stall_case {
	size_t size, maxp;
};

static const struct stall_case stall_cases[] = {
	{ 1024, 512 }, { 1024, 64 }, { 256, 64 }, { 4096, 512 },
	{ 4096, 1024 },
};

static void stall_desc(const struct stall_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "size %zu maxp %zu", c->size,
		 c->maxp);
}

KUNIT_ARRAY_PARAM(stall, stall_cases, stall_desc);

/*
 * Random data on four connections mixed with control packets of random
 * sizes: every transfer is whole packets, none has a stalling length
 * that could have been avoided, and every byte arrives in order. A
 * quarter of the steps write Data or an Echo reply that ends the
 * transfer on a multiple of wMaxPacketSize and take it at once, so that
 * every case meets stalling lengths, most of which must be carried.
 */
static void usb_vsock_test_builder_random(struct kunit *test)
{
	const struct stall_case *sc = test->param_value;
	struct bfix *f = bfix_new(test, sc->size, sc->maxp);
	struct conn conns[4] = {};
	struct rnd_stats st = {};
	unsigned int step, c;
	struct rnd_state rnd;
	u8 *src, *echo;

	src = kunit_kmalloc(test, 2 * sc->size, GFP_KERNEL);
	echo = kunit_kzalloc(test, sc->size, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, src);
	KUNIT_ASSERT_NOT_NULL(test, echo);
	prandom_seed_state(&rnd, 0xb01d + sc->size + sc->maxp);

	for (step = 0; step < 4000 && test->status != KUNIT_FAILURE; step++) {
		u32 r = prandom_u32_state(&rnd);
		struct usb_vsock_addr addr = { 3, 2, r % 4, 7 };
		struct conn *cn = &conns[addr.device_port];
		long timeo = 0;
		size_t n;

		switch (r >> 8 & 7) {
		case 0:
			drain(test, f, conns, &st);
			break;
		case 1:		/* a control packet, or an Echo reply */
			if (usb_vsock_builder_write(&f->b, r & 1 ?
					USB_VSOCK_RESET : USB_VSOCK_ECHO_REPLY,
					&addr, echo, r & 1 ? 0 : r >> 16 & 127,
					&timeo) == -EAGAIN)
				drain(test, f, conns, &st);
			break;
		case 2:		/* Data that ends on a stalling length */
			aim(test, f, &addr, cn, src, NULL);
			drain(test, f, conns, &st);
			break;
		case 3:		/* an Echo reply that does */
			aim(test, f, &addr, cn, NULL, echo);
			drain(test, f, conns, &st);
			break;
		default:	/* data, mostly */
			n = 1 + (r >> 12) % (2 * sc->size - 1);
			if (send_data(f, &addr, cn, src, n) <= 0)
				drain(test, f, conns, &st);
			break;
		}
	}
	drain(test, f, conns, &st);
	drain(test, f, conns, &st);
	for (c = 0; c < 4; c++)
		KUNIT_EXPECT_EQ(test, conns[c].rcvd, conns[c].sent);
	/*
	 * The path this test is for was taken: the builder met stalling
	 * lengths, and carried every one it could avoid.
	 */
	KUNIT_EXPECT_GT(test, st.stalling, st.bad);
	KUNIT_EXPECT_EQ(test, f->b.carries, (u64)(st.stalling - st.bad));
	kunit_info(test, "%zu+%zu+%zu+%zu bytes, %u stalling, %llu carries, %u unavoidable\n",
		   conns[0].sent, conns[1].sent, conns[2].sent, conns[3].sent,
		   st.stalling, f->b.carries, st.bad);
}

static int write_data_all(struct writer *w)
{
	struct kvec kv = { (void *)w->payload, w->len };
	struct iov_iter iter;
	long timeo = MAX_SCHEDULE_TIMEOUT;
	ssize_t n;

	iov_iter_kvec(&iter, ITER_SOURCE, &kv, 1, w->len);
	while (iov_iter_count(&iter)) {
		n = usb_vsock_builder_write_data(&w->f->b, &w->f->b.epoch,
						 &w->addr, &iter, &timeo);
		if (n < 0)
			return n;
	}
	return 0;
}

/* A control packet that waits goes ahead of data that waits. */
static void usb_vsock_test_builder_priority(struct kunit *test)
{
	struct bfix *f = bfix_new(test, 256, 0);
	static u8 data[600];
	struct writer dw = {
		.f = f, .fn = write_data_all, .payload = data,
		.len = sizeof(data), .addr = { 3, 2, 1, 1 },
	};
	struct writer cw = {
		.f = f, .fn = write_one, .type = USB_VSOCK_RESET,
		.addr = { 3, 2, 9, 9 },
	};
	struct usb_vsock_pkt pkt;
	const u8 *buf;
	size_t len;

	/* The data writer fills the transfer and waits for more room. */
	writer_start(test, &dw);
	expect_asleep(test, &dw, &f->b.space_wq, ASLEEP_WAIT,
		      "data writer on a full transfer");
	KUNIT_EXPECT_EQ(test, pending(f), (size_t)256);
	writer_start(test, &cw);
	expect_asleep(test, &cw, &f->b.space_wq, ASLEEP_WAIT,
		      "control writer on a full transfer");
	KUNIT_EXPECT_EQ(test, READ_ONCE(f->b.prio_waiting), 1U);
	expect_asleep(test, &dw, &f->b.space_wq, 0,
		      "data writer behind the control writer");

	len = take(f, &buf);
	KUNIT_EXPECT_EQ(test, len, (size_t)256);
	writer_join(test, &cw);
	KUNIT_EXPECT_EQ(test, cw.ret, 0);

	/*
	 * Both writers were woken; the Reset must lead the next transfer.
	 * No assertion until the data writer is joined: it uses this frame.
	 */
	len = take(f, &buf);
	if (len && usb_vsock_pkt_decode(buf, len, USB_VSOCK_MAX_PAYLOAD,
					&pkt) == USB_VSOCK_PKT_OK) {
		KUNIT_EXPECT_EQ(test, pkt.type, USB_VSOCK_RESET);
		KUNIT_EXPECT_EQ(test, pkt.addr.device_port, 9U);
	} else {
		KUNIT_FAIL(test, "no whole packet in a transfer of %zu bytes",
			   len);
	}

	while (!completion_done(&dw.done)) {
		if (usb_vsock_builder_wait_data(&f->b, TEST_WAIT) <= 0)
			break;
		take(f, &buf);
	}
	writer_join(test, &dw);
	KUNIT_EXPECT_EQ(test, dw.ret, 0);
}

/* A Sync ends its transfer: nothing is appended behind it. */
static void usb_vsock_test_builder_sync_seals(struct kunit *test)
{
	struct bfix *f = bfix_new(test, USB_VSOCK_MTU, 512);
	struct usb_vsock_pkt pkt;
	const u8 *buf;
	long timeo = 0;
	size_t len;

	KUNIT_ASSERT_EQ(test, usb_vsock_builder_write(&f->b, USB_VSOCK_RESET,
						      NULL, NULL, 0, &timeo),
			0);
	KUNIT_ASSERT_EQ(test, usb_vsock_builder_write(&f->b, USB_VSOCK_SYNC,
						      NULL, USB_VSOCK_VERSION1,
						      USB_VSOCK_VERSION_LEN,
						      &timeo), 0);
	KUNIT_EXPECT_EQ(test, usb_vsock_builder_write(&f->b, USB_VSOCK_CONNECT,
						      NULL, NULL, 0, &timeo),
			-EAGAIN);
	len = take(f, &buf);
	KUNIT_EXPECT_EQ(test, len, (size_t)USB_VSOCK_HDR_LEN +
			usb_vsock_pkt_size(USB_VSOCK_VERSION_LEN));
	KUNIT_ASSERT_EQ(test, usb_vsock_pkt_decode(buf + USB_VSOCK_HDR_LEN,
						   len - USB_VSOCK_HDR_LEN,
						   USB_VSOCK_MAX_PAYLOAD, &pkt),
			USB_VSOCK_PKT_OK);
	KUNIT_EXPECT_EQ(test, pkt.type, USB_VSOCK_SYNC);

	KUNIT_EXPECT_EQ(test, usb_vsock_builder_write(&f->b, USB_VSOCK_CONNECT,
						      NULL, NULL, 0, &timeo),
			0);
	KUNIT_EXPECT_EQ(test, take(f, &buf), (size_t)USB_VSOCK_HDR_LEN);
}

static int wait_data_fn(struct writer *w)
{
	long ret = usb_vsock_builder_wait_data(&w->f->b, MAX_SCHEDULE_TIMEOUT);

	/* What is left of MAX_SCHEDULE_TIMEOUT does not fit an int. */
	return ret > 0 ? 1 : ret;
}

/* Kill wakes every waiter with -ESHUTDOWN; reset brings the builder back. */
static void usb_vsock_test_builder_kill(struct kunit *test)
{
	struct bfix *f = bfix_new(test, 64, 0);
	static u8 pad[40];
	struct writer w = {
		.f = f, .fn = write_one, .type = USB_VSOCK_DATA,
		.payload = pad, .len = sizeof(pad),
	};
	struct writer sub = { .f = f, .fn = wait_data_fn };
	struct kvec kv = { pad, 16 };
	struct iov_iter iter;
	const u8 *buf;
	long timeo = 0;
	u32 epoch;

	writer_start(test, &sub);
	expect_asleep(test, &sub, &f->b.data_wq, ASLEEP_WAIT,
		      "submitter on an empty builder");
	KUNIT_EXPECT_EQ(test, usb_vsock_builder_write(&f->b, USB_VSOCK_DATA,
						      NULL, pad, sizeof(pad),
						      &timeo), 0);
	writer_join(test, &sub);
	KUNIT_EXPECT_GT(test, sub.ret, 0);

	writer_start(test, &w);
	expect_asleep(test, &w, &f->b.space_wq, ASLEEP_WAIT,
		      "writer on a full transfer");
	usb_vsock_builder_kill(&f->b);
	writer_join(test, &w);
	KUNIT_EXPECT_EQ(test, w.ret, -ESHUTDOWN);
	KUNIT_EXPECT_EQ(test, usb_vsock_builder_wait_data(&f->b, 0),
			(long)-ESHUTDOWN);
	KUNIT_EXPECT_EQ(test, usb_vsock_builder_write(&f->b, USB_VSOCK_RESET,
						      NULL, NULL, 0, &timeo),
			-ESHUTDOWN);

	/*
	 * Reset drops what was queued for the old link, and the stream data
	 * of its connections is refused from then on.
	 */
	epoch = usb_vsock_builder_epoch(&f->b);
	usb_vsock_builder_reset(&f->b);
	KUNIT_EXPECT_NE(test, usb_vsock_builder_epoch(&f->b), epoch);
	KUNIT_EXPECT_EQ(test, take(f, &buf), (size_t)0);
	iov_iter_kvec(&iter, ITER_SOURCE, &kv, 1, kv.iov_len);
	KUNIT_EXPECT_EQ(test, usb_vsock_builder_write_data(&f->b, &epoch, NULL,
							   &iter, &timeo),
			(ssize_t)-ENOTCONN);
	KUNIT_EXPECT_EQ(test, take(f, &buf), (size_t)0);
	KUNIT_EXPECT_EQ(test, usb_vsock_builder_write(&f->b, USB_VSOCK_RESET,
						      NULL, NULL, 0, &timeo),
			0);
	KUNIT_EXPECT_EQ(test, take(f, &buf), (size_t)USB_VSOCK_HDR_LEN);
	epoch = usb_vsock_builder_epoch(&f->b);
	KUNIT_EXPECT_EQ(test, usb_vsock_builder_write_data(&f->b, &epoch, NULL,
							   &iter, &timeo),
			(ssize_t)kv.iov_len);
}

/* What has_space() reports must match what write_data() then takes. */
static void usb_vsock_test_builder_data_room(struct kunit *test)
{
	struct bfix *f = bfix_new(test, 256, 0);
	static u8 pad[256];
	struct iov_iter iter;
	struct kvec kv = { pad, sizeof(pad) };
	const u8 *buf;
	long timeo = 0;

	KUNIT_EXPECT_EQ(test, usb_vsock_builder_data_room(&f->b),
			(size_t)256 - USB_VSOCK_HDR_LEN);
	KUNIT_ASSERT_EQ(test, write_now(f, pad, 100), 0);
	KUNIT_EXPECT_EQ(test, usb_vsock_builder_data_room(&f->b),
			(size_t)256 - 124 - USB_VSOCK_HDR_LEN);
	iov_iter_kvec(&iter, ITER_SOURCE, &kv, 1, sizeof(pad));
	KUNIT_EXPECT_EQ(test, usb_vsock_builder_write_data(&f->b, &f->b.epoch,
							   NULL, &iter, &timeo),
			(ssize_t)(256 - 124 - USB_VSOCK_HDR_LEN));
	KUNIT_EXPECT_EQ(test, usb_vsock_builder_data_room(&f->b), (size_t)0);
	KUNIT_EXPECT_EQ(test, take(f, &buf), (size_t)256);

	/* Behind a Sync, data must wait for the next transfer. */
	KUNIT_ASSERT_EQ(test, usb_vsock_builder_write(&f->b, USB_VSOCK_SYNC,
						      NULL, USB_VSOCK_VERSION1,
						      USB_VSOCK_VERSION_LEN,
						      &timeo), 0);
	KUNIT_EXPECT_EQ(test, usb_vsock_builder_data_room(&f->b), (size_t)0);
	KUNIT_EXPECT_EQ(test, f->b.packets, 3ULL);
	usb_vsock_builder_kill(&f->b);
	KUNIT_EXPECT_EQ(test, usb_vsock_builder_data_room(&f->b), (size_t)0);
}

static void usb_vsock_test_builder_limits(struct kunit *test)
{
	struct usb_vsock_builder b;
	struct bfix *f = bfix_new(test, 64, 0);
	static u8 pad[64];
	long timeo = HZ / 50;

	KUNIT_EXPECT_EQ(test, usb_vsock_builder_init(&b, USB_VSOCK_HDR_LEN, 0,
						     GFP_KERNEL), -EINVAL);
	KUNIT_EXPECT_EQ(test, usb_vsock_builder_init(&b, 1024, 100,
						     GFP_KERNEL), -EINVAL);
	KUNIT_EXPECT_EQ(test, usb_vsock_builder_init(&b, 1024, 4, GFP_KERNEL),
			-EINVAL);

	/* Larger than a transfer: never fits, so no waiting either. */
	KUNIT_EXPECT_EQ(test, usb_vsock_builder_write(&f->b, USB_VSOCK_ECHO,
						      NULL, pad, 41, &forever),
			-EMSGSIZE);
	/* A timed wait for room that never comes ends in -EAGAIN. */
	KUNIT_ASSERT_EQ(test, usb_vsock_builder_write(&f->b, USB_VSOCK_ECHO,
						      NULL, pad, 30, &timeo),
			0);
	KUNIT_EXPECT_EQ(test, usb_vsock_builder_write(&f->b, USB_VSOCK_ECHO,
						      NULL, pad, 30, &timeo),
			-EAGAIN);
	KUNIT_EXPECT_EQ(test, timeo, 0L);
}

static struct kunit_case usb_vsock_builder_cases[] = {
	KUNIT_CASE(usb_vsock_test_builder_roundtrip),
	KUNIT_CASE_PARAM(usb_vsock_test_builder_many, many_maxp_gen_params),
	KUNIT_CASE(usb_vsock_test_builder_fillable),
	KUNIT_CASE(usb_vsock_test_builder_split),
	KUNIT_CASE(usb_vsock_test_builder_no_stall),
	KUNIT_CASE_PARAM(usb_vsock_test_builder_random, stall_gen_params),
	KUNIT_CASE(usb_vsock_test_builder_priority),
	KUNIT_CASE(usb_vsock_test_builder_sync_seals),
	KUNIT_CASE(usb_vsock_test_builder_kill),
	KUNIT_CASE(usb_vsock_test_builder_data_room),
	KUNIT_CASE(usb_vsock_test_builder_limits),
	{}
};

static struct kunit_suite usb_vsock_builder_suite = {
	.name = "usb_vsock_builder",
	.test_cases = usb_vsock_builder_cases,
};

kunit_test_suite(usb_vsock_builder_suite);
