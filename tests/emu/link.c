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
/*
 * How long after a forged Sync the host may still answer it: behind a
 * control queue full of replies to a hostile flood, seconds.
 */
#define FORGED_SYNC_MS	60000

const char *link_state_name(enum link_state ls)
{
	static const char *const names[] = {
		[LS_WAIT_SYNC] = "wait-sync",
		[LS_ECHO] = "echo",
		[LS_WAIT_FINAL] = "wait-final",
		[LS_SYNCED] = "synced",
		[LS_GAVE_UP] = "gave-up",
	};

	return names[ls];
}

const char *gen_name(enum emu_gen g)
{
	static const char *const names[] = {
		[GEN_DEFAULT] = "default",
		[GEN_V0] = "v0",
		[GEN_V2_ECHO] = "v2-echo",
		[GEN_V2] = "v2",
	};

	return names[g];
}

/* --slow-start: the device's service has not started yet. */
bool svc_waiting(void)
{
	return emu.o.slow_start && now_ms() < emu.svc_start_ms;
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

static void put_hdr(__u8 *out, int type, const struct emu_quad *q,
		    __u32 plen);

/* Queue len bytes of packets for the writer; the caller holds emu.lock. */
static void queue_raw(const __u8 *data, size_t len, bool own_transfer)
{
	struct emu_pkt *p = malloc(sizeof(*p) + len);

	if (!p) {
		emu_log("out of memory, packet '%c' dropped\n", data[3]);
		return;
	}
	memcpy(p->data, data, len);
	p->len = len;
	p->own_transfer = own_transfer;
	p->next = NULL;
	if (emu.ctl_tail)
		emu.ctl_tail->next = p;
	else
		emu.ctl_head = p;
	emu.ctl_tail = p;
	emu_kick();
}

/* Queue a non-data packet for the writer; the caller holds emu.lock. */
void queue_pkt(int type, const struct emu_quad *q, const void *payload,
	       __u32 plen, bool own_transfer)
{
	static const struct emu_quad zero;
	__u8 buf[HDR + MTU];

	if (plen > MTU) {
		emu_log("packet '%c' of %u bytes dropped\n", type, plen);
		return;
	}
	put_hdr(buf, type, q ? q : &zero, plen);
	if (plen)
		memcpy(buf + HDR, payload, plen);
	queue_raw(buf, HDR + plen, own_transfer);
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

/*
 * ctl "resync". --generation v2: a reset Sync (link_reset_sync()); the
 * older generations never send a Sync unprompted: -1.
 */
int link_restart(void)
{
	if (emu.o.generation == GEN_V2)
		return link_reset_sync();
	if (emu.o.generation)
		return -1;
	pthread_mutex_lock(&emu.lock);
	emu_log("restarting the link\n");
	restart_locked();
	pthread_mutex_unlock(&emu.lock);
	return 0;
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

	if (emu.o.generation) {
		/* Built by gen_host_sync(). */
		queue_raw(emu.reply, emu.reply_len, true);
		emu.ls = LS_WAIT_FINAL;
		return;
	}
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
	if (v != emu.agreed && emu.forged_sync_ms &&
	    now_ms() - emu.forged_sync_ms < FORGED_SYNC_MS) {
		/*
		 * The host took a Sync we forged for our answer, and our
		 * real one may still wait in the queue: a protocol error
		 * would drop it and leave both ends waiting for the other.
		 * A forged Sync written before the host's Sync reached us
		 * (whose handshake then began) counts too: the host read it
		 * after sending its Sync, and answered it.
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
		stat_inc(ST_conn_failed);
		queue_pkt(USB_VSOCK_RESET, q, NULL, 0, false);
		return;
	}
	queue_pkt(USB_VSOCK_ACCEPT, q, NULL, 0, false);
	if (conn_start(c)) {
		stat_inc(ST_conn_failed);
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
	/* "ignore-pause 1": a device that goes on sending regardless. */
	c->host_paused = p[0] && !emu.ignore_pause;
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
	case LS_GAVE_UP:	/* --generation only */
		break;
	}
	return false;
}

static __u32 get32(const __u8 *p)
{
	__u32 v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

/* The addresses of the packet whose header is at h. */
static void get_quad(const __u8 *h, struct emu_quad *q)
{
	q->dev_cid = get32(h + 4);
	q->host_cid = get32(h + 8);
	q->dev_port = get32(h + 12);
	q->host_port = get32(h + 16);
}

/*
 * --generation: the device sides of Fuchsia, usb-vsock-service's
 * next_socket() and usb_socket_reader() (XSLabs/fuchsia @0640408e, newest;
 * misttech/fuchsia, previous; misttech/mist-os, v0). Every read is parsed on
 * its own; a parse error drops the rest of the read and nothing else (the
 * link and its connections stay). While waiting for the host's Sync the
 * last Sync of a read counts; Echo is not answered then (newest: a reset
 * Sync instead, once per wait), nor during the probes or while waiting for
 * the final Sync: only a synced link answers Echo. The first Sync read
 * after our reply is the final one: its device_cid is adopted whatever it
 * is; a payload other than our reply makes the device give up until the
 * function is re-created.
 */

/* ProtocolVersion::from_magic(): 0, 1, 2 (with *nonce) or -1. */
static int gen_parse_magic(const __u8 *p, __u32 len, __u32 *nonce)
{
	unsigned long long v = 0;
	__u32 i = 8;

	if (len == 7 && !memcmp(p, "vsock:0", 7))
		return 0;
	if (len == 7 && !memcmp(p, "vsock:1", 7))
		return 1;
	if (len < 9 || memcmp(p, "vsock:2:", 8))
		return -1;
	/* u32::from_str_radix(s, 16): an optional '+', then hex digits. */
	if (p[i] == '+')
		i++;
	if (i == len)
		return -1;
	for (; i < len; i++) {
		int d;

		if (p[i] >= '0' && p[i] <= '9')
			d = p[i] - '0';
		else if (p[i] >= 'a' && p[i] <= 'f')
			d = p[i] - 'a' + 10;
		else if (p[i] >= 'A' && p[i] <= 'F')
			d = p[i] - 'A' + 10;
		else
			return -1;
		v = v * 16 + d;
		if (v > 0xffffffffULL)
			return -1;
	}
	*nonce = v;
	return 2;
}

/* newest device: Sync "vsock:2:0" with its current CID, unprompted. */
static void gen_send_reset_sync(void)
{
	struct emu_quad q = {
		.dev_cid = emu.want_cid,
		.host_cid = USB_VSOCK_CID_HOST,
	};

	queue_pkt(USB_VSOCK_SYNC, &q, "vsock:2:0", 9, true);
	stat_inc(ST_reset_syncs);
	emu.reset_sent = true;
	emu_log("sent a reset Sync (cid %u)\n", emu.want_cid);
}

/*
 * The host's Sync (not the final one): drop the connections, build our
 * reply, then probe (v0, v2-echo) or send it. buf/len: the read that
 * held it (a v0 device replies from that buffer).
 */
static void gen_host_sync(const __u8 *payload, __u32 plen, const __u8 *buf,
			  size_t len)
{
	char magic[32];
	__u32 nonce = 0, rlen;
	struct emu_quad q = {
		.dev_cid = emu.want_cid,
		.host_cid = USB_VSOCK_CID_HOST,
	};
	int v;

	if (emu.ls == LS_SYNCED)
		stat_inc(ST_resyncs);
	link_reset();
	if (emu.o.generation == GEN_V0) {
		/*
		 * The v0 device writes the 7 bytes "vsock:0" over the read's
		 * buffer but copies the host's payload length into the
		 * header: the rest of the payload is what the buffer held.
		 */
		if (plen != USB_VSOCK_VERSION_LEN) {
			stat_inc(ST_long_sync);
			emu_log("host Sync payload of %u bytes to a v0 device\n",
				plen);
		}
		rlen = plen;
		put_hdr(emu.reply, USB_VSOCK_SYNC, &q, rlen);
		memset(emu.reply + HDR, 0, rlen);
		if (rlen > USB_VSOCK_VERSION_LEN &&
		    len > HDR + USB_VSOCK_VERSION_LEN)
			memcpy(emu.reply + HDR + USB_VSOCK_VERSION_LEN,
			       buf + HDR + USB_VSOCK_VERSION_LEN,
			       (len < HDR + rlen ? len : HDR + rlen) -
			       HDR - USB_VSOCK_VERSION_LEN);
		memcpy(emu.reply + HDR, USB_VSOCK_VERSION0,
		       rlen < 7 ? rlen : 7);
		emu.reply_len = HDR + rlen;
		memcpy(emu.want_final, USB_VSOCK_VERSION0, 7);
		emu.want_final_len = 7;
		emu.agreed = 0;
	} else {
		/* negotiate(V2(0), host's), V2(0) if unparseable */
		v = gen_parse_magic(payload, plen, &nonce);
		if (v < 0) {
			emu_log("unparseable host Sync payload (%u bytes), answering vsock:2:0\n",
				plen);
			v = 2;
		}
		if (v == 2)
			snprintf(magic, sizeof(magic), "vsock:2:%x", nonce);
		else
			snprintf(magic, sizeof(magic), "vsock:%d", v);
		rlen = strlen(magic);
		put_hdr(emu.reply, USB_VSOCK_SYNC, &q, rlen);
		memcpy(emu.reply + HDR, magic, rlen);
		emu.reply_len = HDR + rlen;
		memcpy(emu.want_final, magic, rlen);
		emu.want_final_len = rlen;
		emu.agreed = v;
	}
	memcpy(emu.magic, payload, plen);
	emu.magic_len = plen;
	emu_dbg("host Sync (%u bytes), answering version %d, cid %u\n", plen,
		emu.agreed, emu.want_cid);
	emu.probes_left = emu.o.generation == GEN_V2 ? 0 : emu.o.echo_probes;
	if (emu.probes_left > 0) {
		emu.ls = LS_ECHO;
		send_probe();
	} else {
		send_sync_reply();
	}
}

/* The first Sync after our reply. */
static void gen_final_sync(const struct emu_quad *q, const __u8 *p,
			   __u32 plen)
{
	if (plen != emu.want_final_len || memcmp(p, emu.want_final, plen)) {
		stat_inc(ST_gave_up);
		emu_log("final Sync \"%.*s\" (%u bytes) is not our reply. Giving up.\n",
			(int)(plen < 40 ? plen : 40), p, plen);
		link_reset();
		emu.ls = LS_GAVE_UP;
		return;
	}
	if (q->dev_cid <= 2 || q->dev_cid == USB_VSOCK_CID_ANY) {
		stat_inc(ST_bad_final_cid);
		emu_log("final Sync assigns cid %#x: adopted anyway\n",
			q->dev_cid);
	}
	emu.cid = q->dev_cid;
	emu.want_cid = q->dev_cid;
	emu.ls = LS_SYNCED;
	emu.sync_count++;
	stat_inc(ST_syncs);
	emu_log("synced: cid %u, version %d\n", emu.cid, emu.agreed);
	pthread_cond_broadcast(&emu.cond);
}

/* A host Sync read; false if "drop-syncs" drops it. */
static bool gen_take_sync(void)
{
	stat_inc(ST_host_syncs);
	if (!emu.drop_syncs)
		return true;
	emu.drop_syncs--;
	stat_inc(ST_dropped_syncs);
	emu_log("dropped a host Sync (drop-syncs, %u more)\n", emu.drop_syncs);
	return false;
}

/* A malformed read: counted, the rest of it dropped, nothing else. */
static void gen_parse_error(enum emu_stat kind, size_t off, size_t len)
{
	stat_inc(kind);
	if (emu.ls != LS_SYNCED) {
		stat_inc(ST_garbage_waiting);
		emu_dbg("%s: malformed read (%zu bytes, at %zu) dropped\n",
			link_state_name(emu.ls), len, off);
		return;
	}
	stat_inc(ST_proto_errors);
	emu_log("PROTOCOL ERROR (%s) at %zu of a %zu-byte read: rest dropped\n",
		emu_stat_names[kind], off, len);
}

/* One OUT read in a --generation mode; holds emu.lock. */
static void gen_rx(const __u8 *buf, size_t len)
{
	enum link_state ls = emu.ls;
	const __u8 *sync_p = NULL;
	bool echo_ok = false;
	__u32 sync_len = 0;
	size_t off = 0;

	if (ls == LS_GAVE_UP) {
		stat_inc(ST_ignored_pkts);
		return;
	}
	while (off < len) {
		const __u8 *h = buf + off, *p = h + HDR;
		size_t left = len - off;
		struct emu_quad q;
		__u32 plen;
		int type;

		if (left < HDR) {
			gen_parse_error(ST_err_split, off, len);
			break;
		}
		type = h[3];
		if (memcmp(h, USB_VSOCK_MAGIC, USB_VSOCK_MAGIC_LEN) ||
		    type_index(type) < 0) {
			gen_parse_error(type_index(type) < 0 ? ST_err_type :
					ST_err_magic, off, len);
			break;
		}
		plen = get32(h + 20);
		if (plen > left - HDR) {
			gen_parse_error(ST_err_split, off, len);
			break;
		}
		count_pkt(type, true);
		get_quad(h, &q);
		off += HDR + plen;
		if (sync_p && ls == LS_WAIT_SYNC)
			stat_inc(ST_err_sync_not_last);
		switch (ls) {
		case LS_WAIT_SYNC:
			if (type == USB_VSOCK_SYNC) {
				if (gen_take_sync()) {
					sync_p = p;
					sync_len = plen;
				}
			} else if (emu.o.generation == GEN_V2 &&
				   !emu.reset_sent) {
				gen_send_reset_sync();
			} else {
				stat_inc(ST_ignored_pkts);
			}
			continue;
		case LS_ECHO:
			if (type == USB_VSOCK_SYNC)
				stat_inc(ST_host_syncs);
			if (type == USB_VSOCK_ECHO_REPLY &&
			    plen == emu.magic_len && !memcmp(p, emu.magic, plen))
				echo_ok = true;
			else
				stat_inc(ST_ignored_pkts);
			continue;
		case LS_WAIT_FINAL:
			if (type != USB_VSOCK_SYNC) {
				stat_inc(ST_ignored_pkts);
				continue;
			}
			if (!gen_take_sync())
				continue;
			if (off < len)
				stat_inc(ST_err_sync_not_last);
			gen_final_sync(&q, p, plen);
			return;
		case LS_SYNCED:
			if (type == USB_VSOCK_SYNC) {
				if (!gen_take_sync())
					continue;
				if (off < len)
					stat_inc(ST_err_sync_not_last);
				emu_log("Sync on a synced link: restarting\n");
				gen_host_sync(p, plen, buf, len);
				return;
			}
			if (type == USB_VSOCK_ECHO)
				queue_pkt(USB_VSOCK_ECHO_REPLY, &q, p, plen,
					  false);
			else
				synced_pkt(type, &q, p, plen);
			continue;
		case LS_GAVE_UP:
			return;
		}
	}
	if (ls == LS_ECHO && emu.ls == LS_ECHO) {
		if (echo_ok)
			send_sync_reply();
		else
			echo_step(false);
	}
	if (sync_p)
		gen_host_sync(sync_p, sync_len, buf, len);
}

/*
 * FUNCTIONFS_ENABLE (SET_CONFIGURATION, SET_INTERFACE, after a reset or a
 * replug): the function hands the service a new link, which waits for
 * the host's Sync; a device that gave up lives again. Holds emu.lock.
 */
void link_recreated_locked(void)
{
	if (!emu.o.generation)
		return;
	if (emu.ls != LS_WAIT_SYNC || emu.ctl_head)
		emu_log("function re-created (was %s): waiting for a Sync\n",
			link_state_name(emu.ls));
	link_reset();
	emu.ls = LS_WAIT_SYNC;
	emu.reset_sent = false;
}

/* ctl "reset-sync" (v2): drop the link, send a reset Sync, wait. */
int link_reset_sync(void)
{
	if (emu.o.generation != GEN_V2)
		return -1;
	pthread_mutex_lock(&emu.lock);
	link_reset();
	emu.ls = LS_WAIT_SYNC;
	gen_send_reset_sync();
	pthread_mutex_unlock(&emu.lock);
	return 0;
}

/*
 * ctl "client-reconnect" (v2): the vsock client reconnected: the service
 * runs its first link with send_initial_sync, a reset Sync at once.
 */
int link_client_reconnect(void)
{
	return link_reset_sync();
}

/* ctl "give-up": dead as after a bad final Sync, until re-created. */
int link_give_up(void)
{
	if (!emu.o.generation)
		return -1;
	pthread_mutex_lock(&emu.lock);
	emu_log("giving up on the link (give-up command)\n");
	link_reset();
	emu.ls = LS_GAVE_UP;
	pthread_mutex_unlock(&emu.lock);
	return 0;
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
	if (emu.o.generation) {
		gen_rx(buf, len);
		pthread_mutex_unlock(&emu.lock);
		return;
	}
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
		get_quad(h, &q);
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
