// SPDX-License-Identifier: GPL-2.0
/*
 * usbfs_host: the protocol tests run against the device emulator
 * (tests/emu), and the ZLP probe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/usbdevice_fs.h>

#include "hostlink.h"
#include "vsock_testdata.h"

static int npass, nfail;

/* proto's exit status when the device went away (see proto_main()). */
#define UF_EXIT_GONE	3

/* The tests. */

static int t_sync(struct hlink *l)
{
	char reply[512], want[64];

	if (handshake(l, l->o->version))
		return -1;
	if (l->version != l->o->expect_version) {
		uf_log("agreed on version %d, expected %d\n", l->version,
		       l->o->expect_version);
		return -1;
	}
	if (!l->o->ctl)
		return 0;
	if (uf_ctl(&l->io, l->o->ctl, "wait-sync 5", reply, sizeof(reply)))
		return -1;
	snprintf(want, sizeof(want), "state=synced cid=%u version=%d ",
		 l->cid, l->version);
	if (strncmp(reply, want, strlen(want))) {
		uf_log("emulator status: %s\n", reply);
		return -1;
	}
	return 0;
}

static int t_echo_ping(struct hlink *l)
{
	static const char ping[] = "ping 1234";
	long long deadline = uf_now_ms() + UF_WAIT_MS;
	struct hq q = { 1, 2, 3, 4 };

	l->got_echo_reply = false;
	send_pkt(l, USB_VSOCK_ECHO, &q, ping, sizeof(ping));
	while (!l->got_echo_reply && pump_until(l, deadline))
		;
	if (!l->got_echo_reply || l->echo_reply_len != sizeof(ping) ||
	    memcmp(l->echo_reply, ping, sizeof(ping))) {
		uf_log("no matching EchoReply\n");
		return -1;
	}
	return 0;
}

static int t_echo(struct hlink *l)
{
	struct hconn *c = hconnect(l, VT_PORT_ECHO);

	if (!c || c->state != HC_OPEN)
		return -1;
	if (echo_check(l, c, 1, 1) || echo_check(l, c, 1000, 2) ||
	    echo_check(l, c, l->o->size, 3))
		return -1;
	return close_conn(l, c);
}

static int t_sink(struct hlink *l)
{
	struct hconn *c = hconnect(l, VT_PORT_SINK);

	if (!c || c->state != HC_OPEN)
		return -1;
	return sink_check(l, c, l->o->size);
}

static int t_source(struct hlink *l)
{
	struct hconn *c = hconnect(l, VT_PORT_SOURCE);

	if (!c || c->state != HC_OPEN || send_count(l, c, l->o->size) ||
	    wait_rx(l, c, l->o->size, true))
		return -1;
	return check_source(c, l->o->size);
}

static int t_refuse(struct hlink *l)
{
	struct hconn *c = hconnect(l, VT_PORT_REFUSE);

	if (!c || !c->got_reset) {
		uf_log("no Reset from the refusing port\n");
		return -1;
	}
	c = hconnect(l, 5999);
	if (!c || !c->got_reset) {
		uf_log("no Reset from a port without service\n");
		return -1;
	}
	return 0;
}

static int t_unknown(struct hlink *l)
{
	struct hq q = { l->cid, 2, VT_PORT_ECHO, 77777 };
	long long before = ctl_get(l, "unknown_data");

	send_pkt(l, USB_VSOCK_DATA, &q, "lost", 4);
	if (ctl_wait(l, "unknown_data", before + 1) != before + 1) {
		uf_log("unknown_data did not count the packet\n");
		return -1;
	}
	return 0;
}

static int t_host_reset(struct hlink *l)
{
	struct hconn *c = hconnect(l, VT_PORT_ECHO);
	char reply[256];

	if (!c || c->state != HC_OPEN || echo_check(l, c, 500, 4))
		return -1;
	send_pkt(l, USB_VSOCK_RESET, &c->q, NULL, 0);
	c->state = HC_CLOSED;
	if (uf_ctl(&l->io, l->o->ctl, "wait-idle 5", reply, sizeof(reply))) {
		uf_log("the emulator kept the connection: %s\n", reply);
		return -1;
	}
	return 0;
}

/* Three connections at once: source, sink and echo interleaved. */
static int t_concurrent(struct hlink *l)
{
	size_t n = l->o->size, chunk = 4000, off;
	struct hconn *src, *snk, *ech;
	uint8_t *a = malloc(n), *b = malloc(n);
	int ret = -1;

	src = hconnect(l, VT_PORT_SOURCE);
	snk = hconnect(l, VT_PORT_SINK);
	ech = hconnect(l, VT_PORT_ECHO);
	if (!a || !b || !src || !snk || !ech || src->state != HC_OPEN ||
	    snk->state != HC_OPEN || ech->state != HC_OPEN)
		goto out;
	fill_random(a, n, 11);
	fill_random(b, n, 12);
	if (send_count(l, src, n) || send_count(l, snk, n))
		goto out;
	for (off = 0; off < n; off += chunk) {
		size_t k = n - off < chunk ? n - off : chunk;

		if (send_data(l, snk, a + off, k) ||
		    send_data(l, ech, b + off, k))
			goto out;
	}
	if (wait_rx(l, src, n, true) || check_source(src, n) ||
	    wait_rx(l, ech, n, false) || memcmp(ech->rx, b, n) ||
	    wait_rx(l, snk, 8, true) ||
	    vt_get_le64(snk->rx) != vt_fnv1a(VT_FNV_INIT, a, n)) {
		uf_log("concurrent transfers went wrong\n");
		goto out;
	}
	ret = close_conn(l, ech);
out:
	free(a);
	free(b);
	return ret;
}

/* v1: the device stops sending on a connection we paused. */
static int t_pause(struct hlink *l)
{
	size_t count = 4 * l->o->size, mark;
	struct hconn *c = hconnect(l, VT_PORT_SOURCE);
	long long deadline = uf_now_ms() + DATA_MS;
	uint8_t p;

	if (!c || c->state != HC_OPEN || send_count(l, c, count))
		return -1;
	while (c->rx_len < 8192 && pump_until(l, deadline))
		;
	p = USB_VSOCK_PAUSE;
	send_pkt(l, USB_VSOCK_PAUSE_PKT, &c->q, &p, 1);
	if (link_barrier(l))	/* what was in flight is in */
		return -1;
	mark = c->rx_len;
	pump_for(l, 700);
	if (c->rx_len != mark || mark >= count) {
		uf_log("paused at %zu bytes, got %zu in 700 ms (of %zu)\n",
		       mark, c->rx_len - mark, count);
		return -1;
	}
	uf_log("pause held at %zu of %zu bytes\n", mark, count);
	p = USB_VSOCK_UNPAUSE;
	send_pkt(l, USB_VSOCK_PAUSE_PKT, &c->q, &p, 1);
	if (wait_rx(l, c, count, true))
		return -1;
	return check_source(c, count);
}

/* A slow service: Pause(1)/Pause(0) on v1, a stalled reader on v0. */
static int t_slow_sink(struct hlink *l)
{
	struct hconn *c = hconnect(l, VT_PORT_SLOW_SINK);
	long long stalls0 = 0, stalls;

	if (!c || c->state != HC_OPEN)
		return -1;
	if (l->o->ctl)
		stalls0 = ctl_get(l, "v0_stalls");
	if (sink_check(l, c, l->o->size))
		return -1;
	uf_log("slow sink: %u Pause(1), %u Pause(0)\n", c->pauses,
	       c->unpauses);
	if (l->version >= 1 && (!c->pauses || c->pauses != c->unpauses)) {
		uf_log("expected matching Pause(1) and Pause(0)\n");
		return -1;
	}
	if (l->version == 0 && c->pauses + c->unpauses) {
		uf_log("Pause on a v0 link\n");
		return -1;
	}
	if (l->o->ctl && l->version == 0) {
		stalls = ctl_get(l, "v0_stalls");
		uf_log("slow sink: %lld v0 reader stalls\n", stalls - stalls0);
		if (stalls <= stalls0)
			return -1;
	}
	return 0;
}

/* Connections the device opens, with the control socket's connect. */
static int t_device_connect(struct hlink *l)
{
	struct hq q = { l->cid, USB_VSOCK_CID_HOST, 0, 0 };
	char cmd[128], reply[256];
	size_t n = l->o->size;
	struct hconn *c;
	int i;

	snprintf(cmd, sizeof(cmd), "connect %d source %zu", LISTEN_SOURCE,
		 n);
	if (uf_ctl(&l->io, l->o->ctl, cmd, reply, sizeof(reply)) ||
	    sscanf(reply, "accepted id=%*u device_port=%u", &q.dport) != 1) {
		uf_log("%s: %s\n", cmd, reply);
		return -1;
	}
	q.hport = LISTEN_SOURCE;
	c = find_conn(l, &q);
	if (!c || wait_rx(l, c, n, true) || check_source(c, n))
		return -1;

	snprintf(cmd, sizeof(cmd), "connect %d sink", LISTEN_SINK);
	if (uf_ctl(&l->io, l->o->ctl, cmd, reply, sizeof(reply)) ||
	    sscanf(reply, "accepted id=%*u device_port=%u", &q.dport) != 1)
		return -1;
	q.hport = LISTEN_SINK;
	c = find_conn(l, &q);
	if (!c || sink_check(l, c, n))
		return -1;

	snprintf(cmd, sizeof(cmd), "connect %d echo", LISTEN_ECHO);
	if (uf_ctl(&l->io, l->o->ctl, cmd, reply, sizeof(reply)) ||
	    sscanf(reply, "accepted id=%*u device_port=%u", &q.dport) != 1)
		return -1;
	q.hport = LISTEN_ECHO;
	c = find_conn(l, &q);
	if (!c || echo_check(l, c, 3000, 5) || close_conn(l, c))
		return -1;

	/* Nobody listens on 6999: the host resets, the command fails. */
	if (!uf_ctl(&l->io, l->o->ctl, "connect 6999 echo", reply,
		    sizeof(reply)) || !strstr(reply, "refused")) {
		uf_log("connect to a closed port: %s\n", reply);
		return -1;
	}
	for (i = 0; i < MAXC; i++)
		if (l->c[i].incoming && l->c[i].state == HC_OPEN)
			return -1;
	return 0;
}

/* A second Sync resets the connections and runs the handshake again. */
static int t_resync(struct hlink *l)
{
	struct hconn *c = hconnect(l, VT_PORT_ECHO), old;
	long long unknown0 = 0;
	uint32_t cid = l->cid;

	if (!c || c->state != HC_OPEN || echo_check(l, c, 100, 6))
		return -1;
	old = *c;
	old.rx = NULL;
	if (handshake(l, l->o->version))
		return -1;
	if (l->dev_sync_q.dcid != cid) {
		uf_log("device asked for cid %u, had %u\n",
		       l->dev_sync_q.dcid, cid);
		return -1;
	}
	if (l->o->ctl) {
		unknown0 = ctl_get(l, "unknown_data");
		send_pkt(l, USB_VSOCK_DATA, &old.q, "old", 3);
		if (ctl_wait(l, "unknown_data", unknown0 + 1) != unknown0 + 1) {
			uf_log("the old connection survived the Sync\n");
			return -1;
		}
	}
	c = hconnect(l, VT_PORT_ECHO);
	if (!c || c->state != HC_OPEN || echo_check(l, c, 2000, 7))
		return -1;
	return close_conn(l, c);
}

/* Transfers that split a packet: the device must count an error each. */
static int t_split(struct hlink *l)
{
	uint8_t buf[2 * MTU], data[600];
	long long errs0 = ctl_get(l, "proto_errors");
	struct hconn *c = hconnect(l, VT_PORT_ECHO);
	char reply[256];
	size_t len;

	if (!c || c->state != HC_OPEN || echo_check(l, c, 100, 8))
		return -1;
	/* A 200-byte Data packet cut after 100 bytes of payload. */
	put_hdr(buf, USB_VSOCK_DATA, &c->q, 200);
	memset(buf + HDR, 'x', 200);
	uf_send(&l->io, buf, HDR + 100);
	uf_send(&l->io, buf + HDR + 100, 100);
	if (ctl_wait(l, "proto_errors", errs0 + 1) != errs0 + 1 ||
	    uf_ctl(&l->io, l->o->ctl, "status", reply, sizeof(reply)) ||
	    strncmp(reply, "state=wait-sync", 15)) {
		uf_log("no protocol error for a split packet: %s\n", reply);
		return -1;
	}
	l->deliberate_errors++;
	/* Until a Sync the device ignores everything. */
	c = hconnect_ms(l, VT_PORT_ECHO, 500);
	if (!c || c->state != HC_CONNECTING) {
		uf_log("the device answered a Connect before a Sync\n");
		return -1;
	}
	c->state = HC_CLOSED;
	if (handshake(l, l->o->version))
		return -1;

	/* Two 600-byte packets in one 1200-byte transfer. */
	c = hconnect(l, VT_PORT_ECHO);
	if (!c || c->state != HC_OPEN)
		return -1;
	memset(data, 'y', sizeof(data));
	for (len = 0; len < 2 * (HDR + 576); len += HDR + 576) {
		put_hdr(buf + len, USB_VSOCK_DATA, &c->q, 576);
		memcpy(buf + len + HDR, data, 576);
	}
	uf_send(&l->io, buf, len);
	if (ctl_wait(l, "proto_errors", errs0 + 2) != errs0 + 2) {
		uf_log("no protocol error for a %zu-byte transfer\n", len);
		return -1;
	}
	l->deliberate_errors++;
	if (handshake(l, l->o->version))
		return -1;
	c = hconnect(l, VT_PORT_ECHO);
	if (!c || c->state != HC_OPEN || echo_check(l, c, 1000, 9))
		return -1;
	return close_conn(l, c);
}

/* A host that leaves the Echo probes unanswered: Sync after 10 x 100 ms. */
static int t_echo_timeout(struct hlink *l)
{
	long long t0 = ctl_get(l, "echo_timeouts"), start = uf_now_ms();
	int err;

	l->ignore_echo = true;
	err = handshake(l, l->o->version);
	l->ignore_echo = false;
	if (err)
		return -1;
	uf_log("handshake without EchoReply took %lld ms\n",
	       uf_now_ms() - start);
	if (ctl_get(l, "echo_timeouts") != t0 + 10 ||
	    uf_now_ms() - start < 900) {
		uf_log("expected 10 unanswered probes of 100 ms\n");
		return -1;
	}
	return 0;
}

/* A final Sync with another version; a packet after a Sync. */
static int t_bad_sync(struct hlink *l)
{
	long long errs0 = ctl_get(l, "proto_errors");
	uint8_t buf[2 * HDR + 16];
	struct hq q = { .dcid = USB_VSOCK_CID_ANY,
			.hcid = USB_VSOCK_CID_HOST };
	char reply[256];
	struct hconn *c;

	if (handshake_begin(l, l->o->version) ||
	    handshake_finish(l, "vsock:7"))
		return -1;
	if (ctl_wait(l, "proto_errors", errs0 + 1) != errs0 + 1 ||
	    uf_ctl(&l->io, l->o->ctl, "status", reply, sizeof(reply)) ||
	    strncmp(reply, "state=wait-sync", 15)) {
		uf_log("a final Sync of version 7 was taken: %s\n", reply);
		return -1;
	}
	l->deliberate_errors++;
	if (handshake(l, l->o->version))
		return -1;

	/* A Sync must end its transfer. */
	put_hdr(buf, USB_VSOCK_SYNC, &q, USB_VSOCK_VERSION_LEN);
	memcpy(buf + HDR, USB_VSOCK_VERSION1, USB_VSOCK_VERSION_LEN);
	buf[HDR + 6] = '0' + l->o->version;
	put_hdr(buf + HDR + USB_VSOCK_VERSION_LEN, USB_VSOCK_ECHO, NULL, 0);
	uf_send(&l->io, buf, 2 * HDR + USB_VSOCK_VERSION_LEN);
	if (ctl_wait(l, "proto_errors", errs0 + 2) != errs0 + 2 ||
	    ctl_get(l, "err_sync_not_last") < 1) {
		uf_log("no protocol error for a packet after a Sync\n");
		return -1;
	}
	l->deliberate_errors++;
	if (handshake(l, l->o->version))
		return -1;
	c = hconnect(l, VT_PORT_ECHO);
	if (!c || c->state != HC_OPEN || echo_check(l, c, 300, 10))
		return -1;
	return close_conn(l, c);
}

/* The emulator's counters of protocol violations by the host. */
static const char *const violations[] = { "proto_errors", "dup_connect",
	"bad_pause", "stray_pkts", "data_after_finish", "overflow_resets" };
#define NVIOL ARRAY_SIZE(violations)

static void viol_get(struct hlink *l, long long *v)
{
	unsigned int i;

	for (i = 0; i < NVIOL; i++)
		v[i] = ctl_get(l, violations[i]);
}

/*
 * After one violation fed on purpose: the counter which (and no other)
 * moves by exactly one, within UF_WAIT_MS; v holds the counts from before
 * and gets the new ones.
 */
static int viol_counted(struct hlink *l, long long *v, const char *which)
{
	long long now[NVIOL];
	unsigned int i;
	int bad = 0;

	for (i = 0; i < NVIOL; i++)
		if (!strcmp(violations[i], which))
			ctl_wait(l, which, v[i] + 1);
	viol_get(l, now);
	for (i = 0; i < NVIOL; i++) {
		long long want = v[i] + !strcmp(violations[i], which);

		if (now[i] != want) {
			uf_log("after a violation for %s: %s = %lld, want %lld\n",
			       which, violations[i], now[i], want);
			bad = -1;
		}
		v[i] = now[i];
	}
	return bad;
}

/*
 * The violation counters the integration tests assert (emu_clean) are
 * live: feed the emulator one violation of each kind (proto_errors: see
 * split and bad-sync) and it counts it, in that counter alone.
 */
static int t_violations(struct hlink *l)
{
	static const uint8_t bad_pause = 2;
	struct hq q, stray;
	long long v[NVIOL], fins;
	struct hconn *c;
	size_t sent = 0;
	uint8_t buf[MTU - HDR];

	viol_get(l, v);
	/* A Connect for a connection that is open. */
	c = hconnect(l, VT_PORT_ECHO);
	if (!c || c->state != HC_OPEN)
		return -1;
	send_pkt(l, USB_VSOCK_CONNECT, &c->q, NULL, 0);
	if (viol_counted(l, v, "dup_connect"))
		return -1;
	/* A Pause whose payload is neither 0 nor 1. */
	send_pkt(l, USB_VSOCK_PAUSE_PKT, &c->q, &bad_pause, 1);
	if (viol_counted(l, v, "bad_pause") || echo_check(l, c, 100, 21) ||
	    close_conn(l, c))
		return -1;
	/* A Reset for no connection. */
	stray = c->q;
	stray.hport = 1;
	send_pkt(l, USB_VSOCK_RESET, &stray, NULL, 0);
	if (viol_counted(l, v, "stray_pkts"))
		return -1;
	/*
	 * Data after the device's Finish: a source of one byte, whose
	 * Finish we leave unanswered (the quad is forgotten here first, so
	 * that no Reset answers it), then Data, then our Reset.
	 */
	c = hconnect(l, VT_PORT_SOURCE);
	if (!c || c->state != HC_OPEN)
		return -1;
	q = c->q;
	c->state = HC_CLOSED;
	fins = ctl_get(l, "tx_finish");
	send_pkt(l, USB_VSOCK_DATA, &q, "\1\0\0\0\0\0\0\0", 8);
	if (ctl_wait(l, "tx_finish", fins + 1) != fins + 1) {
		uf_log("no Finish from a source of one byte\n");
		return -1;
	}
	send_pkt(l, USB_VSOCK_DATA, &q, "late", 4);
	if (viol_counted(l, v, "data_after_finish"))
		return -1;
	send_pkt(l, USB_VSOCK_RESET, &q, NULL, 0);
	if (l->version < 1)
		return link_barrier(l);
	/*
	 * v1: Data that ignores the slow sink's Pause, until the device
	 * gives up on the connection (past 64 times its --rx-buf).
	 */
	c = hconnect(l, VT_PORT_SLOW_SINK);
	if (!c || c->state != HC_OPEN || send_count(l, c, 1ULL << 40))
		return -1;
	memset(buf, 'o', sizeof(buf));
	while (!c->got_reset && !l->io.error && sent < (64 << 20)) {
		if (uf_out_pending(&l->io) >= l->io.nout) {
			uf_pump(&l->io, 10);
			continue;
		}
		send_pkt(l, USB_VSOCK_DATA, &c->q, buf, sizeof(buf));
		sent += sizeof(buf);
	}
	uf_log("ignored Pause: %zu bytes sent, %sReset\n", sent,
	       c->got_reset ? "" : "no ");
	return viol_counted(l, v, "overflow_resets");
}

static int t_final(struct hlink *l)
{
	static const char *const keys[] = { "proto_errors", "err_split",
		"err_magic", "err_type", "err_version", "err_sync_not_last",
		"garbage_waiting", "overflow_resets", "bad_pause",
		"bad_addr_connect", "data_after_finish" };
	long long v, errs;
	unsigned int i;

	if (l->parse_errors || l->io.error)
		return -1;
	uf_log("host: %llu IN URBs, %llu bytes, %u ZLPs, %u packets across URBs, %u unknown\n",
	       (unsigned long long)l->io.in_urbs,
	       (unsigned long long)l->io.in_bytes, l->in_zlps, l->straddles,
	       l->unknown);
	if (!l->o->ctl)
		return 0;
	for (i = 0; i < ARRAY_SIZE(keys); i++) {
		v = ctl_get(l, keys[i]);
		uf_log("emulator %s = %lld\n", keys[i], v);
	}
	errs = ctl_get(l, "proto_errors");
	if (errs != l->o->expect_errors + l->deliberate_errors) {
		uf_log("emulator counted %lld protocol errors, expected %d + %d provoked\n",
		       errs, l->o->expect_errors, l->deliberate_errors);
		return -1;
	}
	return 0;
}

struct ptest {
	const char *name;
	int (*fn)(struct hlink *l);
	bool needs_ctl;
	bool v1;
};

static const struct ptest tests[] = {
	{ "sync", t_sync, false, false },
	{ "echo-ping", t_echo_ping, false, false },
	{ "echo", t_echo, false, false },
	{ "sink", t_sink, false, false },
	{ "source", t_source, false, false },
	{ "refuse", t_refuse, false, false },
	{ "unknown-data", t_unknown, true, false },
	{ "host-reset", t_host_reset, true, false },
	{ "concurrent", t_concurrent, false, false },
	{ "pause", t_pause, false, true },
	{ "slow-sink", t_slow_sink, false, false },
	{ "device-connect", t_device_connect, true, false },
	{ "resync", t_resync, false, false },
	{ "split", t_split, true, false },
	{ "echo-timeout", t_echo_timeout, true, false },
	{ "bad-sync", t_bad_sync, true, false },
	{ "violations", t_violations, true, false },
	{ "final", t_final, false, false },
};

/* sync and final run always: every other test needs them. */
static bool selected(const char *list, const char *name)
{
	return !list || !strcmp(name, "sync") || !strcmp(name, "final") ||
	       listed(list, name);
}

/*
 * A test failed because the device went away: the transfers failed as
 * they do on a disconnect, and usbfs now refuses the device's file.
 */
static bool io_error_gone(struct hlink *l)
{
	int e = -l->io.error;

	return e == ENODEV || e == ESHUTDOWN || e == EPROTO;
}

/*
 * usbfs refuses the file only once the hub has seen the device go, which
 * may follow the failed transfers by a while: wait for it, 5 s at most,
 * so that a device that stays fails.
 */
static bool device_gone(struct hlink *l)
{
	__u32 caps;
	int i;

	for (i = 0; i < 100; i++) {
		if (ioctl(l->dev.fd, USBDEVFS_GET_CAPABILITIES, &caps) &&
		    errno == ENODEV)
			return true;
		usleep(50000);
	}
	return false;
}

/*
 * The tests; prints a line per test and a summary. Returns 0 if all
 * passed; UF_EXIT_GONE if every failure came from the device going away
 * (an unplug) and it is gone (prints "usbfs_host: the device is gone"),
 * 1 for any other failure.
 */
int proto_main(const struct uf_opts *o)
{
	struct hlink *l = calloc(1, sizeof(*l));
	bool other_fail = false;
	unsigned int i;
	int n = 0;

	if (!l || link_open(l, o)) {
		printf("usbfs_host: 0 passed, 1 failed\n");
		return 1;
	}
	for (i = 0; i < ARRAY_SIZE(tests); i++) {
		const struct ptest *t = &tests[i];
		int err;

		if (!selected(o->tests, t->name) || (t->needs_ctl && !o->ctl) ||
		    (t->v1 && o->expect_version < 1))
			continue;
		err = run_test(l, ++n, t->name, t->fn);
		if (err)
			nfail++;
		else
			npass++;
		if (err && !io_error_gone(l))
			other_fail = true;
		if (err && !strcmp(t->name, "sync"))
			break;
	}
	printf("usbfs_host: %d passed, %d failed\n", npass, nfail);
	if (nfail && !other_fail && device_gone(l)) {
		printf("usbfs_host: the device is gone (transfers failed: %s)\n",
		       strerror(-l->io.error));
		n = UF_EXIT_GONE;
	} else {
		n = nfail || !npass;
	}
	link_close(l);
	free(l);
	return n;
}

/*
 * Measure whether IN transfers of 512 and 1024 bytes (whole numbers of
 * packets) reach the host while nothing follows them: with ZLPs they must;
 * without, only a transfer that fills the URB up completes it, the others
 * stay in it until the next transfer ends it.
 */
int zlp_probe(const struct uf_opts *o)
{
	static const size_t sizes[] = { 512 - HDR, MTU - HDR };
	struct hlink *l = calloc(1, sizeof(*l));
	int bad = 0, i;
	struct hconn *c;

	if (!l || link_open(l, o) || handshake(l, o->version))
		goto fail;
	c = hconnect(l, VT_PORT_ECHO);
	if (!c || c->state != HC_OPEN)
		goto fail;
	for (i = 0; i < 2; i++) {
		size_t base = c->rx_len, len = sizes[i];
		/* Without a ZLP only a URB that fills up completes. */
		bool expect = o->expect_zlp ||
			      (HDR + len) % l->io.in[0].size == 0;
		/* Long for what must come, 1 s for what must not. */
		long long deadline = uf_now_ms() + (expect ? UF_WAIT_MS : 1000);
		uint8_t buf[2 * MTU];
		struct hq q = c->q;
		bool arrived;

		/*
		 * One transfer: a Data packet the device drops (unknown
		 * quad), then the len bytes for the echo service, so that
		 * the OUT transfer is not a multiple of wMaxPacketSize.
		 */
		q.hport = 1;
		put_hdr(buf, USB_VSOCK_DATA, &q, 8);
		put_hdr(buf + HDR + 8, USB_VSOCK_DATA, &c->q, len);
		memset(buf + 2 * HDR + 8, 'z', len);
		if (HDR + len == MTU)	/* fills the device's read */
			uf_send(&l->io, buf + HDR + 8, MTU);
		else
			uf_send(&l->io, buf, 2 * HDR + 8 + len);
		while (c->rx_len < base + len && pump_until(l, deadline))
			;
		arrived = c->rx_len >= base + len;
		printf("zlp-probe: a %zu-byte IN transfer into %zu-byte URBs %s\n",
		       HDR + len, l->io.in[0].size,
		       arrived ? "arrived" : "did NOT arrive in time");
		if (arrived != expect)
			bad++;
		if (!arrived) {	/* flush it with one more byte */
			send_data(l, c, buf, 1);
			deadline = uf_now_ms() + UF_WAIT_MS;
			while (c->rx_len < base + len + 1 &&
			       pump_until(l, deadline))
				;
			printf("zlp-probe: it arrived with the next transfer: %s\n",
			       c->rx_len >= base + len + 1 ? "yes" : "no");
			if (c->rx_len < base + len + 1)
				bad++;
		}
	}
	printf("zlp-probe: %u ZLPs seen\n", l->in_zlps);
	close_conn(l, c);
	printf("usbfs_host: %d passed, %d failed\n", !bad, !!bad);
	link_close(l);
	free(l);
	return !!bad;
fail:
	printf("usbfs_host: 0 passed, 1 failed\n");
	return 1;
}
