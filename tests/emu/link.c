// SPDX-License-Identifier: GPL-2.0
/*
 * usb_vsock_emu: the protocol. link_rx() parses each OUT transfer on its
 * own, as a Fuchsia device does, runs the sync handshake and dispatches
 * packets; build_transfer() packs queued packets and connection data into
 * IN transfers of at most 1024 bytes of whole packets. The AIO threads
 * that move the transfers are in aio.c.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "emu.h"
#include "../tools/vsock_testdata.h"

#define HDR		USB_VSOCK_HDR_LEN
#define MTU		USB_VSOCK_MTU
#define PROBE_MS	100

const char *link_state_name(enum link_state ls)
{
	static const char *const names[] = {
		[LS_WAIT_SYNC] = "wait-sync",
		[LS_ECHO] = "echo",
		[LS_WAIT_FINAL] = "wait-final",
		[LS_SYNCED] = "synced",
	};

	return names[ls];
}

void emu_kick(void)
{
	eventfd_write(emu.work_efd, 1);
}

static int type_index(int type)
{
	static const char types[] = "SEeCARFDX";
	const char *p = type ? strchr(types, type) : NULL;

	return p ? p - types : -1;
}

static void count_pkt(int type, bool rx)
{
	int i = type_index(type);

	if (i >= 0)
		stat_inc((rx ? ST_rx_sync : ST_tx_sync) + i);
}

/* Queue a non-data packet for the writer; the caller holds emu.lock. */
void queue_pkt(int type, const struct emu_quad *q, const void *payload,
	       __u32 plen, bool own_transfer)
{
	struct emu_pkt *p = malloc(sizeof(*p) + HDR + plen);
	struct usb_vsock_hdr h;

	if (!p) {
		emu_log("out of memory, packet '%c' dropped\n", type);
		return;
	}
	memcpy(h.magic, USB_VSOCK_MAGIC, USB_VSOCK_MAGIC_LEN);
	h.type = type;
	h.device_cid = htole32(q ? q->dev_cid : 0);
	h.host_cid = htole32(q ? q->host_cid : 0);
	h.device_port = htole32(q ? q->dev_port : 0);
	h.host_port = htole32(q ? q->host_port : 0);
	h.payload_len = htole32(plen);
	memcpy(p->data, &h, HDR);
	if (plen)
		memcpy(p->data + HDR, payload, plen);
	p->len = HDR + plen;
	p->own_transfer = own_transfer;
	p->next = NULL;
	if (emu.ctl_tail)
		emu.ctl_tail->next = p;
	else
		emu.ctl_head = p;
	emu.ctl_tail = p;
	emu_kick();
}

static void drop_queued(void)
{
	struct emu_pkt *p;

	while ((p = emu.ctl_head)) {
		emu.ctl_head = p->next;
		free(p);
	}
	emu.ctl_tail = NULL;
}

/* Forget the link's connections and queued output; holds emu.lock. */
static void link_reset(void)
{
	conns_kill_all();
	drop_queued();
	emu.link_gen++;
	pthread_cond_broadcast(&emu.cond);
}

void link_down(const char *why)
{
	pthread_mutex_lock(&emu.lock);
	emu_log("link down (%s), waiting for a Sync\n", why);
	stat_inc(ST_link_downs);
	link_reset();
	emu.ls = LS_WAIT_SYNC;
	pthread_mutex_unlock(&emu.lock);
}

/*
 * The device restarts the link on its own, as a rebooted device would: its
 * connections are gone, it sends a Sync asking for the CID it had, and
 * waits for the host to run the handshake again. Holds emu.lock.
 */
static void restart_locked(void)
{
	struct emu_quad q = { .host_cid = USB_VSOCK_CID_HOST };

	link_reset();
	if (emu.cid)
		emu.want_cid = emu.cid;
	q.dev_cid = emu.want_cid;
	queue_pkt(USB_VSOCK_SYNC, &q,
		  emu.agreed ? USB_VSOCK_VERSION1 : USB_VSOCK_VERSION0,
		  USB_VSOCK_VERSION_LEN, true);
	emu.ls = LS_WAIT_SYNC;
}

/* ctl "resync". */
void link_restart(void)
{
	pthread_mutex_lock(&emu.lock);
	emu_log("restarting the link\n");
	restart_locked();
	pthread_mutex_unlock(&emu.lock);
}

static void send_probe(void)
{
	emu.probes_left--;
	emu.probe_deadline = now_ms() + PROBE_MS;
	queue_pkt(USB_VSOCK_ECHO, NULL, emu.magic, emu.magic_len, true);
}

static void send_sync_reply(void)
{
	struct emu_quad q = {
		.dev_cid = emu.want_cid,
		.host_cid = USB_VSOCK_CID_HOST,
	};

	queue_pkt(USB_VSOCK_SYNC, &q,
		  emu.agreed ? USB_VSOCK_VERSION1 : USB_VSOCK_VERSION0,
		  USB_VSOCK_VERSION_LEN, true);
	emu.ls = LS_WAIT_FINAL;
	emu_dbg("sent Sync: cid %u, version %d\n", emu.want_cid, emu.agreed);
}

/* "vsock:N" -> N, or -1. */
static int parse_version(const __u8 *p, __u32 len)
{
	if (len != USB_VSOCK_VERSION_LEN || memcmp(p, "vsock:", 6) ||
	    p[6] < '0' || p[6] > '9')
		return -1;
	return p[6] - '0';
}

/* A transfer breaks the protocol; the caller holds emu.lock. */
static __printf(2, 3) void proto_error(enum emu_stat kind, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	stat_inc(kind);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (emu.ls == LS_WAIT_SYNC) {
		stat_inc(ST_garbage_waiting);
		emu_dbg("while waiting for a Sync: %s\n", msg);
		return;
	}
	stat_inc(ST_proto_errors);
	emu_log("PROTOCOL ERROR (%s): %s; dropping the link's connections, waiting for a Sync\n",
		link_state_name(emu.ls), msg);
	link_reset();
	emu.ls = LS_WAIT_SYNC;
}

/* The host's (first) Sync: start the handshake. */
static void start_handshake(const __u8 *payload, __u32 plen)
{
	int v = parse_version(payload, plen);

	if (v < 0) {
		proto_error(ST_err_version, "bad Sync payload (%u bytes)", plen);
		return;
	}
	if (emu.ls == LS_SYNCED)
		stat_inc(ST_resyncs);
	link_reset();
	emu.agreed = v < emu.o.version ? v : emu.o.version;
	memcpy(emu.magic, payload, plen);
	emu.magic_len = plen;
	emu.ls = LS_ECHO;
	emu.forged_sync_in_handshake = false;
	emu.probes_left = emu.o.echo_probes;
	emu_dbg("got Sync version %d, agreeing on %d\n", v, emu.agreed);
	if (emu.probes_left > 0)
		send_probe();
	else
		send_sync_reply();
}

void echo_step(bool timed_out)
{
	if (timed_out)
		stat_inc(ST_echo_timeouts);
	if (emu.probes_left > 0) {
		send_probe();
		return;
	}
	emu_log("no EchoReply to %d probes, sending Sync anyway\n",
		emu.o.echo_probes);
	send_sync_reply();
}

static void final_sync(const struct emu_quad *q, const __u8 *payload,
		       __u32 plen)
{
	int v = parse_version(payload, plen);

	if (q->dev_cid == USB_VSOCK_CID_ANY || q->dev_cid <= 2) {
		/* Not an assignment: the host started over. */
		stat_inc(ST_handshake_restarts);
		start_handshake(payload, plen);
		return;
	}
	if (v != emu.agreed && emu.forged_sync_in_handshake) {
		/*
		 * The host took a Sync we forged for our answer, and our
		 * real one may still wait in the queue: a protocol error
		 * would drop it and leave both ends waiting for the other.
		 */
		stat_inc(ST_forged_sync_restarts);
		emu_log("host answered a forged Sync (v%d, agreed %d): restarting\n",
			v, emu.agreed);
		restart_locked();
		return;
	}
	if (v != emu.agreed) {
		proto_error(ST_err_version, "final Sync with version %d, agreed %d",
			    v, emu.agreed);
		return;
	}
	emu.cid = q->dev_cid;
	emu.want_cid = q->dev_cid;
	emu.ls = LS_SYNCED;
	emu.sync_count++;
	stat_inc(ST_syncs);
	emu_log("synced: cid %u, version %d\n", emu.cid, emu.agreed);
	pthread_cond_broadcast(&emu.cond);
}

static void host_connect(const struct emu_quad *q)
{
	enum emu_svc svc = svc_for_port(q->dev_port);
	struct emu_conn *c;

	if (conn_find(q)) {
		stat_inc(ST_dup_connect);
		return;
	}
	if (q->dev_cid != emu.cid || q->host_cid != USB_VSOCK_CID_HOST) {
		emu_log("Connect for cids %u/%u, we are %u: refused\n",
			q->dev_cid, q->host_cid, emu.cid);
		stat_inc(ST_bad_addr_connect);
		svc = SVC_NONE;
	}
	if (svc == SVC_SILENT) {
		stat_inc(ST_unanswered);
		return;
	}
	if (svc == SVC_NONE || svc == SVC_REFUSE) {
		stat_inc(ST_refused);
		queue_pkt(USB_VSOCK_RESET, q, NULL, 0, false);
		return;
	}
	c = conn_new(q, svc, false);
	if (!c) {
		queue_pkt(USB_VSOCK_RESET, q, NULL, 0, false);
		return;
	}
	queue_pkt(USB_VSOCK_ACCEPT, q, NULL, 0, false);
	if (conn_start(c)) {
		queue_pkt(USB_VSOCK_RESET, q, NULL, 0, false);
		conn_kill(c);
	}
}

static void host_data(const struct emu_quad *q, const __u8 *p, __u32 plen)
{
	struct emu_conn *c;

	stat_add(ST_rx_data_bytes, plen);
	if (!q->dev_cid && !q->host_cid && !q->dev_port && !q->host_port) {
		stat_add(ST_control_data_bytes, plen);
		return;
	}
	c = conn_find(q);
	if (c && c->state == CS_FIN_SENT) {
		stat_inc(ST_data_after_finish);
		return;
	}
	if (!c || c->state != CS_OPEN) {
		stat_inc(ST_unknown_data);
		stat_add(ST_unknown_data_bytes, plen);
		return;
	}
	conn_get(c);
	conn_deliver(c, p, plen);
	conn_put(c);
}

static void host_pause(struct emu_conn *c, const __u8 *p, __u32 plen)
{
	if (emu.agreed < 1 || plen != 1 || p[0] > 1) {
		emu_log("ignoring a Pause (version %d, %u bytes)\n", emu.agreed,
			plen);
		stat_inc(ST_bad_pause);
		return;
	}
	stat_inc(p[0] ? ST_paused_by_host : ST_unpaused_by_host);
	if (!c || c->state == CS_CONNECTING) {
		stat_inc(ST_stray_pkts);
		return;
	}
	c->host_paused = p[0];
	if (!p[0])
		emu_kick();
}

/* A packet on a synced link. */
static void synced_pkt(int type, const struct emu_quad *q, const __u8 *p,
		       __u32 plen)
{
	struct emu_conn *c = NULL;

	if (type != USB_VSOCK_DATA && type != USB_VSOCK_CONNECT)
		c = conn_find(q);
	switch (type) {
	case USB_VSOCK_CONNECT:
		host_connect(q);
		break;
	case USB_VSOCK_ACCEPT:
		if (!c || c->state != CS_CONNECTING) {
			stat_inc(ST_stray_pkts);
			break;
		}
		stat_inc(ST_connect_out_accepted);
		c->connect_result = 1;
		c->state = CS_OPEN;
		pthread_cond_broadcast(&c->cond);
		if (conn_start(c)) {
			queue_pkt(USB_VSOCK_RESET, q, NULL, 0, false);
			conn_kill(c);
		}
		break;
	case USB_VSOCK_RESET:
		stat_inc(ST_host_resets);
		if (!c) {
			stat_inc(ST_stray_pkts);
			break;
		}
		if (c->state == CS_CONNECTING) {
			stat_inc(ST_connect_out_refused);
			c->connect_result = -1;
		}
		conn_kill(c);
		break;
	case USB_VSOCK_FINISH:
		stat_inc(ST_host_finishes);
		if (!c) {
			stat_inc(ST_stray_pkts);
			break;
		}
		if (c->state != CS_CONNECTING)
			queue_pkt(USB_VSOCK_RESET, q, NULL, 0, false);
		conn_kill(c);
		break;
	case USB_VSOCK_DATA:
		host_data(q, p, plen);
		break;
	case USB_VSOCK_PAUSE_PKT:
		host_pause(c, p, plen);
		break;
	case USB_VSOCK_ECHO_REPLY:
		break;
	default:
		stat_inc(ST_ignored_pkts);
	}
}

/* One packet; returns true if the rest of the transfer must be skipped. */
static bool handle_pkt(int type, const struct emu_quad *q, const __u8 *p,
		       __u32 plen, bool *echo_ok)
{
	if (type == USB_VSOCK_ECHO) {
		queue_pkt(USB_VSOCK_ECHO_REPLY, q, p, plen, false);
		return false;
	}
	switch (emu.ls) {
	case LS_WAIT_SYNC:
		if (type != USB_VSOCK_SYNC || emu.o.mute) {
			stat_inc(ST_ignored_pkts);
			return false;
		}
		start_handshake(p, plen);
		return true;
	case LS_ECHO:
		if (type == USB_VSOCK_ECHO_REPLY && plen == emu.magic_len &&
		    !memcmp(p, emu.magic, plen))
			*echo_ok = true;
		else
			stat_inc(ST_ignored_pkts);
		return false;
	case LS_WAIT_FINAL:
		if (type != USB_VSOCK_SYNC) {
			stat_inc(ST_ignored_pkts);
			return false;
		}
		final_sync(q, p, plen);
		return true;
	case LS_SYNCED:
		if (type == USB_VSOCK_SYNC) {
			emu_log("Sync on a synced link: restarting\n");
			start_handshake(p, plen);
			return true;
		}
		synced_pkt(type, q, p, plen);
		return false;
	}
	return false;
}

static __u32 get32(const __u8 *p)
{
	__u32 v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

/* Parse one OUT transfer on its own, as Fuchsia does. */
void link_rx(const __u8 *buf, size_t len)
{
	bool echo_ok = false, was_echo;
	size_t off = 0;

	stat_inc(ST_rx_transfers);
	stat_add(ST_rx_bytes, len);
	if (!len) {
		stat_inc(ST_rx_zlp);
		return;
	}
	pthread_mutex_lock(&emu.lock);
	was_echo = emu.ls == LS_ECHO;
	while (off < len) {
		const __u8 *h = buf + off;
		size_t left = len - off;
		struct emu_quad q;
		__u32 plen;
		int type;

		if (left < HDR) {
			proto_error(ST_err_split,
				    "transfer of %zu bytes ends inside a header at %zu",
				    len, off);
			break;
		}
		if (memcmp(h, USB_VSOCK_MAGIC, USB_VSOCK_MAGIC_LEN)) {
			proto_error(ST_err_magic,
				    "bad magic at offset %zu of %zu", off, len);
			break;
		}
		type = h[3];
		if (type_index(type) < 0) {
			proto_error(ST_err_type, "unknown type 0x%02x at %zu",
				    type, off);
			break;
		}
		plen = get32(h + 20);
		if (plen > left - HDR) {
			proto_error(ST_err_split,
				    "payload crosses the end of a transfer of %zu bytes (packet at %zu)",
				    len, off);
			break;
		}
		count_pkt(type, true);
		q.dev_cid = get32(h + 4);
		q.host_cid = get32(h + 8);
		q.dev_port = get32(h + 12);
		q.host_port = get32(h + 16);
		off += HDR + plen;
		if (handle_pkt(type, &q, h + HDR, plen, &echo_ok)) {
			if (off < len)
				proto_error(ST_err_sync_not_last,
					    "%zu bytes after a Sync at %zu",
					    len - off, off - HDR - plen);
			break;
		}
	}
	if (was_echo && emu.ls == LS_ECHO) {
		if (echo_ok)
			send_sync_reply();
		else
			echo_step(false);
	}
	pthread_mutex_unlock(&emu.lock);
}

/* Raw mode: count and check the bytes. */
void raw_rx(const __u8 *buf, size_t len)
{
	size_t bad;

	stat_inc(ST_rx_transfers);
	stat_add(ST_rx_bytes, len);
	if (!len)
		stat_inc(ST_rx_zlp);
	pthread_mutex_lock(&emu.lock);
	bad = vt_pattern_check(buf, len, emu.raw_rx_off);
	if (bad < len)
		stat_inc(ST_raw_pattern_errors);
	emu.raw_rx_off += len;
	pthread_mutex_unlock(&emu.lock);
}

static void put_hdr(__u8 *out, int type, const struct emu_quad *q,
		    __u32 plen)
{
	struct usb_vsock_hdr h;

	memcpy(h.magic, USB_VSOCK_MAGIC, USB_VSOCK_MAGIC_LEN);
	h.type = type;
	h.device_cid = htole32(q->dev_cid);
	h.host_cid = htole32(q->host_cid);
	h.device_port = htole32(q->dev_port);
	h.host_port = htole32(q->host_port);
	h.payload_len = htole32(plen);
	memcpy(out, &h, HDR);
}

/*
 * Build the next IN transfer into out (MTU bytes): queued packets first,
 * then Data and Finish of the connections, round robin. Holds emu.lock.
 */
size_t build_transfer(__u8 *out)
{
	struct emu_pkt *p;
	unsigned int i, n;
	size_t len = 0;

	while ((p = emu.ctl_head)) {
		if ((p->own_transfer && len) || len + p->len > MTU)
			return len;
		memcpy(out + len, p->data, p->len);
		len += p->len;
		count_pkt(p->data[3], false);
		emu.ctl_head = p->next;
		if (!emu.ctl_head)
			emu.ctl_tail = NULL;
		if (p->own_transfer) {
			free(p);
			return len;
		}
		free(p);
	}
	if (emu.ls != LS_SYNCED)
		return len;
	n = emu.nconns;
	for (i = 0; i < n && len + HDR < MTU; i++) {
		struct emu_conn *c = emu.conns->next;
		size_t d;

		/* Rotate: the next transfer starts with the next one. */
		c->prev->next = c->next;
		c->next->prev = c->prev;
		c->prev = emu.conns->prev;
		c->next = emu.conns;
		emu.conns->prev->next = c;
		emu.conns->prev = c;

		d = conn_fill_data(c, out + len + HDR, MTU - len - HDR);
		if (d) {
			put_hdr(out + len, USB_VSOCK_DATA, &c->q, d);
			len += HDR + d;
			count_pkt(USB_VSOCK_DATA, false);
			stat_add(ST_tx_data_bytes, d);
		}
		if (c->state == CS_OPEN && c->finish_req && !c->tx.len &&
		    !c->host_paused && len + HDR <= MTU) {
			put_hdr(out + len, USB_VSOCK_FINISH, &c->q, 0);
			len += HDR;
			count_pkt(USB_VSOCK_FINISH, false);
			c->state = CS_FIN_SENT;
		}
	}
	return len;
}
