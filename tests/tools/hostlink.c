// SPDX-License-Identifier: GPL-2.0
/*
 * usbfs_host: a host side of the usb vsock bridge protocol on usbfs.
 *
 * The host parses the IN byte stream across URB boundaries (a packet may
 * straddle two URBs), answers Echo, accepts device Connects to the ports
 * it listens on, replies Reset to Finish, honours Pause, and sends every
 * OUT packet in a transfer of its own whose length is never a multiple of
 * wMaxPacketSize below 1024.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/usb_vsock.h>

#include "hostlink.h"
#include "vsock_testdata.h"

static bool quad_eq(const struct hq *a, const struct hq *b)
{
	return !memcmp(a, b, sizeof(*a));
}

struct hconn *find_conn(struct hlink *l, const struct hq *q)
{
	int i;

	for (i = 0; i < MAXC; i++)
		if (l->c[i].state != HC_FREE && l->c[i].state != HC_CLOSED &&
		    quad_eq(&l->c[i].q, q))
			return &l->c[i];
	return NULL;
}

static struct hconn *new_conn(struct hlink *l, const struct hq *q)
{
	int i;

	for (i = 0; i < MAXC; i++) {
		struct hconn *c = &l->c[i];

		if (c->state != HC_FREE && c->state != HC_CLOSED)
			continue;
		free(c->rx);
		memset(c, 0, sizeof(*c));
		c->q = *q;
		c->state = HC_CONNECTING;
		return c;
	}
	return NULL;
}

static void free_conn(struct hconn *c)
{
	free(c->rx);
	memset(c, 0, sizeof(*c));
}

void put_hdr(uint8_t *buf, int type, const struct hq *q, uint32_t plen)
{
	static const struct hq zero;

	if (!q)
		q = &zero;
	memcpy(buf, USB_VSOCK_MAGIC, USB_VSOCK_MAGIC_LEN);
	buf[3] = type;
	put32(buf + 4, q->dcid);
	put32(buf + 8, q->hcid);
	put32(buf + 12, q->dport);
	put32(buf + 16, q->hport);
	put32(buf + 20, plen);
}

int send_pkt(struct hlink *l, int type, const struct hq *q,
	     const void *payload, uint32_t plen)
{
	uint8_t buf[MTU];

	put_hdr(buf, type, q, plen);
	if (plen)
		memcpy(buf + HDR, payload, plen);
	return uf_send(&l->io, buf, HDR + plen);
}

static void rx_append(struct hconn *c, const uint8_t *p, size_t n)
{
	if (c->rx_len + n > c->rx_cap) {
		size_t cap = c->rx_cap ? c->rx_cap : 65536;

		while (cap < c->rx_len + n)
			cap *= 2;
		c->rx = realloc(c->rx, cap);
		if (!c->rx) {
			uf_log("out of memory\n");
			exit(1);
		}
		c->rx_cap = cap;
	}
	memcpy(c->rx + c->rx_len, p, n);
	c->rx_len += n;
}

static bool listening(uint32_t port)
{
	return port == LISTEN_SOURCE || port == LISTEN_SINK ||
	       port == LISTEN_ECHO;
}

static void dev_connect(struct hlink *l, const struct hq *q)
{
	struct hconn *c;

	if (find_conn(l, q))
		return;
	if (!l->synced || q->dcid != l->cid ||
	    q->hcid != USB_VSOCK_CID_HOST || !listening(q->hport)) {
		send_pkt(l, USB_VSOCK_RESET, q, NULL, 0);
		return;
	}
	c = new_conn(l, q);
	if (!c) {
		send_pkt(l, USB_VSOCK_RESET, q, NULL, 0);
		return;
	}
	c->incoming = true;
	c->state = HC_OPEN;
	send_pkt(l, USB_VSOCK_ACCEPT, q, NULL, 0);
}

static void handle_pkt(struct hlink *l, const uint8_t *p, uint32_t plen)
{
	const uint8_t *pl = p + HDR;
	struct hconn *c;
	struct hq q;

	q.dcid = get32(p + 4);
	q.hcid = get32(p + 8);
	q.dport = get32(p + 12);
	q.hport = get32(p + 16);
	c = find_conn(l, &q);
	switch (p[3]) {
	case USB_VSOCK_SYNC:
		l->dev_sync = true;
		l->dev_sync_q = q;
		memcpy(l->dev_sync_payload, pl, plen);
		l->dev_sync_len = plen;
		break;
	case USB_VSOCK_ECHO:
		if (l->ignore_echo)
			break;
		l->dev_echoes++;
		send_pkt(l, USB_VSOCK_ECHO_REPLY, &q, pl, plen);
		break;
	case USB_VSOCK_ECHO_REPLY:
		l->got_echo_reply = true;
		memcpy(l->echo_reply, pl, plen);
		l->echo_reply_len = plen;
		break;
	case USB_VSOCK_CONNECT:
		dev_connect(l, &q);
		break;
	case USB_VSOCK_ACCEPT:
		if (c && c->state == HC_CONNECTING) {
			c->got_accept = true;
			c->state = HC_OPEN;
		} else {
			l->unknown++;
		}
		break;
	case USB_VSOCK_RESET:
		if (c) {
			c->got_reset = true;
			c->state = HC_CLOSED;
		} else {
			l->unknown++;
		}
		break;
	case USB_VSOCK_FINISH:
		if (c) {
			c->got_finish = true;
			c->state = HC_CLOSED;
			send_pkt(l, USB_VSOCK_RESET, &q, NULL, 0);
		} else {
			l->unknown++;
		}
		break;
	case USB_VSOCK_DATA:
		l->in_data += plen;
		if (c && c->state == HC_OPEN)
			rx_append(c, pl, plen);
		else
			l->unknown++;
		break;
	case USB_VSOCK_PAUSE_PKT:
		l->dev_pauses++;
		if (plen != 1 || !c) {
			l->unknown++;
			break;
		}
		c->dev_paused = pl[0];
		if (pl[0])
			c->pauses++;
		else
			c->unpauses++;
		break;
	}
}

/* IN data: parse whole packets, carry a partial one to the next URB. */
static void on_in(void *ctx, const uint8_t *buf, size_t len)
{
	struct hlink *l = ctx;
	size_t off = 0;

	l->last_in_ms = uf_now_ms();
	if (!len) {
		l->in_zlps++;
		return;
	}
	memcpy(l->carry + l->carry_len, buf, len);
	l->carry_len += len;
	while (l->carry_len - off >= HDR) {
		const uint8_t *p = l->carry + off;
		uint32_t plen = get32(p + 20);

		if (memcmp(p, USB_VSOCK_MAGIC, USB_VSOCK_MAGIC_LEN) ||
		    !strchr("SEeCARFDX", p[3]) || !p[3] ||
		    plen > MTU - HDR) {
			uf_log("PARSE ERROR in the IN stream at %zu\n", off);
			l->parse_errors++;
			l->carry_len = 0;
			return;
		}
		if (l->carry_len - off < HDR + plen)
			break;
		handle_pkt(l, p, plen);
		off += HDR + plen;
	}
	if (off < l->carry_len)
		l->straddles++;
	memmove(l->carry, l->carry + off, l->carry_len - off);
	l->carry_len -= off;
}

/* Pump once; false once the deadline passed or the link failed. */
bool pump_until(struct hlink *l, long long deadline)
{
	if (l->io.error || l->parse_errors || uf_now_ms() >= deadline)
		return false;
	uf_pump(&l->io, 10);
	return true;
}

void pump_for(struct hlink *l, int ms)
{
	long long deadline = uf_now_ms() + ms;

	while (pump_until(l, deadline))
		;
}

static void reset_conns(struct hlink *l)
{
	int i;

	for (i = 0; i < MAXC; i++)
		free_conn(&l->c[i]);
}

/* A host Sync to device_cid dcid with this payload. */
void send_sync(struct hlink *l, uint32_t dcid, const void *payload,
	       size_t len)
{
	struct hq q = { .dcid = dcid, .hcid = USB_VSOCK_CID_HOST };

	send_pkt(l, USB_VSOCK_SYNC, &q, payload, len);
}

/* Pump for ms at most; true once a device Sync has arrived. */
bool dev_sync_within(struct hlink *l, int ms)
{
	long long deadline = uf_now_ms() + ms;

	while (!l->dev_sync && pump_until(l, deadline))
		;
	return l->dev_sync;
}

/*
 * Our Sync (device_cid any) with this payload, the Echo probes answered;
 * 0 once the device's Sync came back, in l->dev_sync_*.
 */
int sync_exchange(struct hlink *l, const void *payload, size_t len)
{
	l->dev_sync = false;
	l->synced = false;
	l->dev_echoes = 0;
	send_sync(l, USB_VSOCK_CID_ANY, payload, len);
	if (dev_sync_within(l, UF_WAIT_MS))
		return 0;
	uf_log("no Sync from the device to \"%.*s\" in %d s\n", (int)len,
	       (const char *)payload, UF_WAIT_MS / 1000);
	return -1;
}

/*
 * The host side of the sync handshake, first half: send our Sync, answer
 * the Echo probes, wait for the device's Sync.
 */
int handshake_begin(struct hlink *l, int version)
{
	char magic[] = USB_VSOCK_VERSION1;
	int v;

	magic[6] = '0' + version;
	reset_conns(l);
	if (sync_exchange(l, magic, USB_VSOCK_VERSION_LEN))
		return -1;
	if (l->dev_sync_len != USB_VSOCK_VERSION_LEN ||
	    memcmp(l->dev_sync_payload, "vsock:", 6)) {
		uf_log("bad device Sync payload\n");
		return -1;
	}
	v = l->dev_sync_payload[6] - '0';
	if (v < 0 || v > version) {
		uf_log("device answered version %d to %d\n", v, version);
		return -1;
	}
	return 0;
}

/* Second half: assign the CID in the final Sync, with this payload. */
int handshake_finish(struct hlink *l, const char *payload)
{
	uint32_t cid = l->dev_sync_q.dcid;

	if (cid <= 2 || cid == USB_VSOCK_CID_ANY)
		cid = 3;
	send_sync(l, cid, payload, strlen(payload));
	if (uf_flush(&l->io, UF_WAIT_MS))
		return -1;
	l->cid = cid;
	l->version = payload[6] - '0';
	l->synced = true;
	uf_log("synced: device asked for cid %#x, got %u, version %d, %u Echo probes\n",
	       l->dev_sync_q.dcid, cid, l->version, l->dev_echoes);
	return 0;
}

int handshake(struct hlink *l, int version)
{
	char payload[USB_VSOCK_VERSION_LEN + 1];

	if (handshake_begin(l, version))
		return -1;
	memcpy(payload, l->dev_sync_payload, USB_VSOCK_VERSION_LEN);
	payload[USB_VSOCK_VERSION_LEN] = 0;
	return handshake_finish(l, payload);
}

struct hconn *hconnect_ms(struct hlink *l, uint32_t port, int ms)
{
	long long deadline = uf_now_ms() + ms;
	struct hq q = { l->cid, USB_VSOCK_CID_HOST, port, l->next_port++ };
	struct hconn *c = new_conn(l, &q);

	if (!c)
		return NULL;
	send_pkt(l, USB_VSOCK_CONNECT, &q, NULL, 0);
	while (c->state == HC_CONNECTING && pump_until(l, deadline))
		;
	return c;
}

struct hconn *hconnect(struct hlink *l, uint32_t port)
{
	return hconnect_ms(l, port, UF_WAIT_MS);
}

/* Send Data, one packet per transfer, obeying Pause. */
int send_data(struct hlink *l, struct hconn *c, const void *buf, size_t len)
{
	long long deadline = uf_now_ms() + DATA_MS;
	const uint8_t *p = buf;
	size_t n;

	while (len) {
		while ((c->dev_paused ||
			uf_out_pending(&l->io) >= l->io.nout) &&
		       c->state == HC_OPEN && pump_until(l, deadline))
			;
		if (c->state != HC_OPEN || l->io.error ||
		    uf_now_ms() >= deadline)
			return -1;
		n = len < MTU - HDR ? len : MTU - HDR;
		if ((HDR + n) % l->dev.maxp == 0 && HDR + n < MTU)
			n--;
		if (send_pkt(l, USB_VSOCK_DATA, &c->q, p, n))
			return -1;
		p += n;
		len -= n;
		uf_pump(&l->io, 0);
	}
	return 0;
}

int send_count(struct hlink *l, struct hconn *c, uint64_t count)
{
	uint8_t b[8];

	vt_put_le64(b, count);
	return send_data(l, c, b, 8);
}

int wait_rx(struct hlink *l, struct hconn *c, size_t len, bool finish)
{
	long long deadline = uf_now_ms() + DATA_MS;

	while ((c->rx_len < len || (finish && !c->got_finish)) &&
	       pump_until(l, deadline))
		;
	if (c->rx_len < len || (finish && !c->got_finish)) {
		uf_log("got %zu of %zu bytes%s\n", c->rx_len, len,
		       finish && !c->got_finish ? ", no Finish" : "");
		return -1;
	}
	return 0;
}

void fill_random(uint8_t *buf, size_t len, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		buf[i] = seed;
	}
}

int close_conn(struct hlink *l, struct hconn *c)
{
	long long deadline = uf_now_ms() + UF_WAIT_MS;

	if (c->state != HC_OPEN)
		return 0;
	send_pkt(l, USB_VSOCK_FINISH, &c->q, NULL, 0);
	while (!c->got_reset && pump_until(l, deadline))
		;
	if (!c->got_reset) {
		uf_log("no Reset after our Finish\n");
		return -1;
	}
	return 0;
}

/* Echo len bytes through an echo connection c. */
int echo_check(struct hlink *l, struct hconn *c, size_t len, uint32_t seed)
{
	uint8_t *buf = malloc(len);
	size_t base = c->rx_len;
	int ret = -1;

	if (!buf)
		return -1;
	fill_random(buf, len, seed);
	if (send_data(l, c, buf, len) || wait_rx(l, c, base + len, false))
		goto out;
	if (memcmp(c->rx + base, buf, len)) {
		uf_log("echoed data differs\n");
		goto out;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

int check_source(struct hconn *c, uint64_t count)
{
	size_t bad = vt_pattern_check(c->rx, c->rx_len, 0);

	if (c->rx_len != count || bad != count) {
		uf_log("source: %zu bytes (want %llu), first bad byte %zu\n",
		       c->rx_len, (unsigned long long)count, bad);
		return -1;
	}
	return 0;
}

/* Send count bytes of pseudo-random data to a sink, check the checksum. */
int sink_check(struct hlink *l, struct hconn *c, size_t count)
{
	uint8_t *buf = malloc(count);
	uint64_t want;
	int ret = -1;

	if (!buf)
		return -1;
	fill_random(buf, count, 7);
	want = vt_fnv1a(VT_FNV_INIT, buf, count);
	if (send_count(l, c, count) || send_data(l, c, buf, count) ||
	    wait_rx(l, c, 8, true))
		goto out;
	if (c->rx_len != 8 || vt_get_le64(c->rx) != want) {
		uf_log("sink: checksum %016llx, want %016llx (%zu bytes back)\n",
		       (unsigned long long)vt_get_le64(c->rx),
		       (unsigned long long)want, c->rx_len);
		goto out;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

long long ctl_get(struct hlink *l, const char *key)
{
	long long v = -1;

	if (uf_ctl_get(&l->io, l->o->ctl, key, &v))
		uf_log("cannot get %s from the emulator\n", key);
	return v;
}

/* uf_ctl_wait() on the link's emulator, moving the link meanwhile. */
long long ctl_wait(struct hlink *l, const char *key, long long want)
{
	return uf_ctl_wait(&l->io, l->o->ctl, key, want);
}

/*
 * Wait until the device has handled every packet sent so far, and every
 * transfer it sent before has arrived: it takes packets in order, so its
 * answer to an Echo sent now comes after all of that.
 */
int link_barrier(struct hlink *l)
{
	static const char tag[] = "barrier";
	long long deadline = uf_now_ms() + UF_WAIT_MS;
	struct hq q = { 1, 2, 3, 4 };

	l->got_echo_reply = false;
	if (send_pkt(l, USB_VSOCK_ECHO, &q, tag, sizeof(tag)))
		return -1;
	while (!l->got_echo_reply && pump_until(l, deadline))
		;
	if (!l->got_echo_reply) {
		uf_log("no EchoReply to the barrier\n");
		return -1;
	}
	return 0;
}

int link_open(struct hlink *l, const struct uf_opts *o)
{
	size_t in_size;

	memset(l, 0, sizeof(*l));
	l->o = o;
	l->next_port = 40000;
	if (uf_find(&l->dev, &o->match, o->wait_s)) {
		uf_log("no device %04x:%04x with an ff/43/00 interface\n",
		       o->match.vid, o->match.pid & 0xffff);
		return -1;
	}
	uf_log("device %s: bus %d dev %d, interface %u, eps %02x/%02x, maxp %u\n",
	       l->dev.sysname, l->dev.bus, l->dev.devnum, l->dev.iface,
	       l->dev.ep_in, l->dev.ep_out, l->dev.maxp);
	if (uf_open(&l->dev, o->detach))
		return -1;
	in_size = o->in_size ? o->in_size : l->dev.maxp;
	l->carry = malloc(MTU + in_size);
	if (!l->carry ||
	    uf_io_init(&l->io, &l->dev, o->in_urbs, in_size, o->out_urbs,
		       2 * MTU))
		return -1;
	l->io.zero_packet = o->zero_packet;
	l->io.on_in = on_in;
	l->io.ctx = l;
	return uf_io_start(&l->io);
}

/*
 * SET_INTERFACE (alternate setting 0) on the bridge interface: the
 * device's function is re-created. The URBs are discarded first (usbcore
 * flushes the endpoints anyway) and queued anew after.
 */
int link_set_interface(struct hlink *l)
{
	struct usbdevfs_setinterface si = { .interface = l->dev.iface };
	size_t in_size = l->o->in_size ? l->o->in_size : l->dev.maxp;

	uf_io_free(&l->io);
	l->carry_len = 0;
	if (ioctl(l->dev.fd, USBDEVFS_SETINTERFACE, &si)) {
		uf_log("USBDEVFS_SETINTERFACE: %s\n", strerror(errno));
		return -1;
	}
	if (uf_io_init(&l->io, &l->dev, l->o->in_urbs, in_size,
		       l->o->out_urbs, 2 * MTU))
		return -1;
	l->io.zero_packet = l->o->zero_packet;
	l->io.on_in = on_in;
	l->io.ctx = l;
	return uf_io_start(&l->io);
}

void link_close(struct hlink *l)
{
	uf_io_free(&l->io);
	uf_close(&l->dev);
	reset_conns(l);
	free(l->carry);
}

/* Whether name is an item of the comma-separated list. */
bool listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	while (list && (p = strstr(p, name))) {
		if ((p == list || p[-1] == ',') && (!p[n] || p[n] == ','))
			return true;
		p += n;
	}
	return false;
}

/*
 * Test number n, fn, with its line printed; 0 if it passed: fn said so
 * and the link saw no failed transfer and no parse error.
 */
int run_test(struct hlink *l, int n, const char *name,
	     int (*fn)(struct hlink *l))
{
	long long start = uf_now_ms();
	int err = l->io.error ? -1 : fn(l);

	if (l->parse_errors || l->io.error)
		err = -1;
	printf("%s %d - %s (%lld ms)\n", err ? "not ok" : "ok", n, name,
	       uf_now_ms() - start);
	return err;
}
