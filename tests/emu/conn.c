// SPDX-License-Identifier: GPL-2.0
/*
 * usb_vsock_emu: the connection table and the services that run on
 * connections, one thread per connection.
 *
 * Flow control, end to end: a service reads its connection's rx queue and
 * writes its tx queue. The writer thread takes Data from tx queues (not
 * from a connection the host paused), so a host that does not read makes
 * the tx queue fill and the service block. A service that does not keep up
 * leaves data in its rx queue: past --rx-buf bytes, a v1 link sends
 * Pause(1) and keeps buffering (Pause(0) once the queue is back to
 * --rx-buf bytes or less, as Fuchsia's overflow writer does), a v0 link
 * stalls the reader thread until the service made room. Nothing is dropped
 * unless a v1 host ignores Pause for 64 times --rx-buf bytes: then the
 * connection is reset (counted as overflow_resets).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "emu.h"
#include "../tools/vsock_testdata.h"

#define SVC_CHUNK	4096

static struct emu_conn conn_head;

void conns_init(void)
{
	conn_head.next = &conn_head;
	conn_head.prev = &conn_head;
	emu.conns = &conn_head;
}

int buf_append(struct emu_buf *b, const void *data, size_t len)
{
	if (b->head + b->len + len > b->size) {
		if (b->head) {
			memmove(b->data, b->data + b->head, b->len);
			b->head = 0;
		}
		if (b->len + len > b->size) {
			size_t size = b->size ? b->size : 4096;
			__u8 *p;

			while (size < b->len + len)
				size *= 2;
			p = realloc(b->data, size);
			if (!p)
				return -ENOMEM;
			b->data = p;
			b->size = size;
		}
	}
	memcpy(b->data + b->head + b->len, data, len);
	b->len += len;
	return 0;
}

void buf_consume(struct emu_buf *b, void *out, size_t len)
{
	if (out)
		memcpy(out, b->data + b->head, len);
	b->head += len;
	b->len -= len;
	if (!b->len)
		b->head = 0;
}

void buf_free(struct emu_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static bool quad_eq(const struct emu_quad *a, const struct emu_quad *b)
{
	return a->dev_cid == b->dev_cid && a->host_cid == b->host_cid &&
	       a->dev_port == b->dev_port && a->host_port == b->host_port;
}

struct emu_conn *conn_find(const struct emu_quad *q)
{
	struct emu_conn *c;

	for (c = conn_head.next; c != &conn_head; c = c->next)
		if (quad_eq(&c->q, q))
			return c;
	return NULL;
}

struct emu_conn *conn_new(const struct emu_quad *q, enum emu_svc svc,
			  bool outgoing)
{
	struct emu_conn *c = calloc(1, sizeof(*c));
	pthread_condattr_t ca;

	if (!c)
		return NULL;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	c->q = *q;
	c->svc = svc;
	c->outgoing = outgoing;
	c->state = outgoing ? CS_CONNECTING : CS_OPEN;
	c->id = ++emu.next_conn_id;
	c->refs = 1;
	c->prev = conn_head.prev;
	c->next = &conn_head;
	conn_head.prev->next = c;
	conn_head.prev = c;
	emu.nconns++;
	return c;
}

void conn_get(struct emu_conn *c)
{
	c->refs++;
}

void conn_put(struct emu_conn *c)
{
	if (--c->refs)
		return;
	buf_free(&c->rx);
	buf_free(&c->tx);
	pthread_cond_destroy(&c->cond);
	free(c);
}

/* Take a connection out of the table; the caller holds emu.lock. */
void conn_kill(struct emu_conn *c)
{
	if (c->state == CS_DEAD)
		return;
	if (c->state != CS_CONNECTING)
		stat_inc(ST_conns_closed);
	emu_dbg("conn %u: closed (%u:%u <-> %u:%u)\n", c->id, c->q.dev_cid,
		c->q.dev_port, c->q.host_cid, c->q.host_port);
	c->state = CS_DEAD;
	c->prev->next = c->next;
	c->next->prev = c->prev;
	c->next = NULL;
	c->prev = NULL;
	emu.nconns--;
	pthread_cond_broadcast(&c->cond);
	pthread_cond_broadcast(&emu.cond);
	conn_put(c);
}

void conns_kill_all(void)
{
	while (conn_head.next != &conn_head)
		conn_kill(conn_head.next);
}

enum emu_svc svc_for_port(__u32 port)
{
	int s;

	for (s = SVC_ECHO; s < SVC_COUNT; s++)
		if (emu.o.port[s] && emu.o.port[s] == port)
			return s;
	return SVC_NONE;
}

/*
 * Queue data from the host for the service. The caller holds emu.lock and
 * a reference to c; on a v0 link this may wait for the service.
 */
void conn_deliver(struct emu_conn *c, const __u8 *data, size_t len)
{
	bool stalled = false;

	if (emu.agreed < 1) {
		while (c->state == CS_OPEN && !emu.stop && c->rx.len &&
		       c->rx.len + len > emu.o.rx_buf) {
			if (!stalled) {
				stat_inc(ST_v0_stalls);
				c->held = true;
				pthread_cond_broadcast(&c->cond);
			}
			stalled = true;
			pthread_cond_wait(&c->cond, &emu.lock);
		}
		if (c->state != CS_OPEN)
			return;
	}
	if (buf_append(&c->rx, data, len)) {
		emu_log("conn %u: out of memory, resetting\n", c->id);
		goto reset;
	}
	stat_max(ST_rx_buf_max, c->rx.len);
	pthread_cond_broadcast(&c->cond);
	if (emu.agreed < 1 || c->rx.len <= emu.o.rx_buf)
		return;
	if (!c->we_paused) {
		c->we_paused = true;
		c->held = true;
		stat_inc(ST_pause_sent);
		queue_pkt(USB_VSOCK_PAUSE_PKT, &c->q,
			  &(__u8){ USB_VSOCK_PAUSE }, 1, false);
	}
	if (c->rx.len <= 64 * emu.o.rx_buf)
		return;
	emu_log("conn %u: host ignores Pause (%zu bytes queued), resetting\n",
		c->id, c->rx.len);
	stat_inc(ST_overflow_resets);
reset:
	queue_pkt(USB_VSOCK_RESET, &c->q, NULL, 0, false);
	conn_kill(c);
}

/*
 * Put one Data packet payload of at most space bytes from c's tx queue
 * into out; the caller holds emu.lock.
 */
size_t conn_fill_data(struct emu_conn *c, __u8 *out, size_t space)
{
	size_t n = c->tx.len < space ? c->tx.len : space;

	if (c->state != CS_OPEN || c->host_paused || !n)
		return 0;
	buf_consume(&c->tx, out, n);
	pthread_cond_broadcast(&c->cond);
	return n;
}

/* Read up to max bytes; -1 once the connection is gone. */
static ssize_t svc_read(struct emu_conn *c, void *buf, size_t max)
{
	size_t n;

	pthread_mutex_lock(&emu.lock);
	while (!c->rx.len && c->state == CS_OPEN && !emu.stop)
		pthread_cond_wait(&c->cond, &emu.lock);
	if (!c->rx.len || c->state != CS_OPEN || emu.stop) {
		pthread_mutex_unlock(&emu.lock);
		return -1;
	}
	n = c->rx.len < max ? c->rx.len : max;
	buf_consume(&c->rx, buf, n);
	if (c->we_paused && c->rx.len <= emu.o.rx_buf) {
		c->we_paused = false;
		stat_inc(ST_unpause_sent);
		queue_pkt(USB_VSOCK_PAUSE_PKT, &c->q,
			  &(__u8){ USB_VSOCK_UNPAUSE }, 1, false);
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&emu.lock);
	return n;
}

static int svc_read_full(struct emu_conn *c, void *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = svc_read(c, (__u8 *)buf + got, len - got);
		if (n < 0)
			return -1;
		got += n;
	}
	return 0;
}

static int svc_write(struct emu_conn *c, const void *buf, size_t len)
{
	const __u8 *p = buf;
	size_t n;

	pthread_mutex_lock(&emu.lock);
	while (len) {
		while (c->tx.len >= emu.o.tx_buf && c->state == CS_OPEN &&
		       !emu.stop)
			pthread_cond_wait(&c->cond, &emu.lock);
		if (c->state != CS_OPEN || emu.stop)
			break;
		n = emu.o.tx_buf - c->tx.len;
		if (n > len)
			n = len;
		if (buf_append(&c->tx, p, n))
			break;
		p += n;
		len -= n;
		emu_kick();
	}
	pthread_mutex_unlock(&emu.lock);
	return len ? -1 : 0;
}

/* The service is done: Finish once the tx queue is empty. */
static void svc_finish(struct emu_conn *c)
{
	pthread_mutex_lock(&emu.lock);
	if (c->state == CS_OPEN) {
		c->finish_req = true;
		emu_kick();
	}
	pthread_mutex_unlock(&emu.lock);
}

static void svc_echo(struct emu_conn *c)
{
	__u8 buf[SVC_CHUNK];
	ssize_t n;

	while ((n = svc_read(c, buf, sizeof(buf))) > 0)
		if (svc_write(c, buf, n))
			break;
}

/*
 * A slow sink reads nothing until it has held the host back once, or until
 * all of the left bytes have arrived: the flow control it is there to
 * exercise then happens however fast or slow the link and the host are.
 */
static void svc_wait_held(struct emu_conn *c, __u64 left)
{
	pthread_mutex_lock(&emu.lock);
	while (!c->held && c->rx.len < left && c->state == CS_OPEN &&
	       !emu.stop)
		pthread_cond_wait(&c->cond, &emu.lock);
	pthread_mutex_unlock(&emu.lock);
}

static void svc_sink(struct emu_conn *c, bool slow)
{
	__u64 left, h = VT_FNV_INIT;
	__u8 buf[SVC_CHUNK];
	size_t max = slow ? emu.o.slow_rate : sizeof(buf);
	ssize_t n;

	if (max > sizeof(buf))
		max = sizeof(buf);
	if (svc_read_full(c, buf, 8))
		return;
	left = vt_get_le64(buf);
	emu_dbg("conn %u: sink of %llu bytes\n", c->id,
		(unsigned long long)left);
	if (slow)
		svc_wait_held(c, left);
	while (left) {
		n = svc_read(c, buf, left < max ? left : max);
		if (n < 0)
			return;
		h = vt_fnv1a(h, buf, n);
		left -= n;
		if (slow)
			usleep(10000);
	}
	vt_put_le64(buf, h);
	if (svc_write(c, buf, 8))
		return;
	stat_inc(ST_svc_done);
	svc_finish(c);
}

static void svc_source(struct emu_conn *c)
{
	__u64 off = 0, count = c->count;
	__u8 buf[SVC_CHUNK];
	size_t n;

	if (!c->have_count) {
		if (svc_read_full(c, buf, 8))
			return;
		count = vt_get_le64(buf);
	}
	emu_dbg("conn %u: source of %llu bytes\n", c->id,
		(unsigned long long)count);
	while (off < count) {
		n = count - off < sizeof(buf) ? count - off : sizeof(buf);
		vt_pattern_fill(buf, n, off);
		if (svc_write(c, buf, n))
			return;
		off += n;
	}
	stat_inc(ST_svc_done);
	svc_finish(c);
}

static void *svc_thread(void *arg)
{
	struct emu_conn *c = arg;

	switch (c->svc) {
	case SVC_ECHO:
		svc_echo(c);
		break;
	case SVC_SINK:
		svc_sink(c, false);
		break;
	case SVC_SLOW_SINK:
		svc_sink(c, true);
		break;
	case SVC_SOURCE:
		svc_source(c);
		break;
	default:
		break;
	}
	pthread_mutex_lock(&emu.lock);
	conn_put(c);
	pthread_mutex_unlock(&emu.lock);
	return NULL;
}

/* Start the service of an open connection; the caller holds emu.lock. */
int conn_start(struct emu_conn *c)
{
	pthread_attr_t attr;
	pthread_t t;
	int err;

	stat_inc(ST_conns_opened);
	emu_dbg("conn %u: %s open (%u:%u <-> %u:%u)\n", c->id,
		svc_name(c->svc), c->q.dev_cid, c->q.dev_port, c->q.host_cid,
		c->q.host_port);
	conn_get(c);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	err = pthread_create(&t, &attr, svc_thread, c);
	pthread_attr_destroy(&attr);
	if (err) {
		emu_log("conn %u: cannot start a thread: %s\n", c->id,
			strerror(err));
		conn_put(c);
		return -err;
	}
	return 0;
}
