// SPDX-License-Identifier: GPL-2.0
/*
 * usb_vsock_emu: the hostile device. "hostile MODE COUNT [PORT]" (ctl.c)
 * makes the writer send COUNT IN transfers built here instead of, or
 * interleaved with (every other transfer while the handshake or replies
 * wait), the well-behaved ones of build_transfer(). Modes:
 *   random   1..1024 random bytes
 *   mutate   a valid stream of packets with 1..4 bytes changed
 *   magic    valid packets with a bad magic
 *   length   a header whose payload_len runs past the transfer
 *   type     a header with an unknown type
 *   sync     a Sync storm: Syncs with random CIDs and versions
 *   connect  Connects, half to host port PORT (a listener), half to
 *            closed ports
 *   data     Data for connections that do not exist
 *   pause    Pause(1) for every connection and for random ones, never
 *            lifted
 *   echo     transfers full of Echo requests
 *   lengths  transfers of every length 0..2048 in turn, of packed Echo
 *            headers (the last one cut)
 *   mix      each transfer of a random mode above
 * Each transfer counts in hostile_transfers; "get hostile_left" shows what
 * is left; the device answers the host's resyncs as usual meanwhile. The
 * host cannot tell a forged Sync from the device's answer, so it may
 * confirm a version the device did not agree on, up to FORGED_SYNC_MS
 * after the forged Sync went out: then the device restarts the link
 * (forged_sync_restarts) rather than wait for a Sync, since its real
 * answer may never reach the host (link.c, final_sync()).
 *
 * Each Connect of connect mode has a device port of its own, so that the
 * host must answer every one (a duplicate of a live connection's quad
 * would be ignored). hostile_invalid and hostile_pkts say what the host
 * must have made of the transfers (see host_view below).
 */
#define _GNU_SOURCE
#include <endian.h>
#include <string.h>

#include "emu.h"

#define HDR		USB_VSOCK_HDR_LEN
#define MTU		USB_VSOCK_MTU

/*
 * What the host must make of the hostile transfers, independently of how
 * it is written: it reads IN in pieces of wMaxPacketSize (its URBs,
 * Documentation/usb_vsock.rst), carries a packet that crosses pieces over,
 * and rejects a header with a bad magic, an unknown type or a payload_len
 * over USB_VSOCK_MAX_PAYLOAD ("Wire protocol" there); then it drops the
 * rest of the piece and starts afresh. A payload on C, A, R or F and a bad
 * Pause are well formed: the host ignores or drops that packet alone, as
 * Fuchsia does. A Sync ends its piece.
 * host_view follows such a parser over the hostile transfers and counts
 * each piece it must reject in hostile_invalid and each well-formed packet
 * it must take in hostile_pkts. A packet still pending where the host sees
 * the transfer end (in_transfer_ends()) was cut short: one more piece the
 * host must reject. It starts clean with each hostile run (the host has
 * served the device since the last one) and stops counting, until the next
 * run, once a well-behaved transfer goes out while a hostile one left part
 * of a packet pending: what the host holds is then unknown.
 */
static struct {
	__u8 pkt[HDR];		/* the pending packet's header */
	size_t have;		/* bytes of the pending packet seen */
	size_t need;		/* its size, once its header is in */
	bool lost;
} host_view;

static const char *const mode_names[HM_COUNT] = {
	[HM_NONE] = "none",
	[HM_RANDOM] = "random",
	[HM_MUTATE] = "mutate",
	[HM_MAGIC] = "magic",
	[HM_LENGTH] = "length",
	[HM_TYPE] = "type",
	[HM_SYNC] = "sync",
	[HM_CONNECT] = "connect",
	[HM_DATA] = "data",
	[HM_PAUSE] = "pause",
	[HM_ECHO] = "echo",
	[HM_LENGTHS] = "lengths",
	[HM_MIX] = "mix",
};

const char *hostile_mode_name(enum hostile_mode m)
{
	return m < HM_COUNT ? mode_names[m] : "?";
}

/* xorshift64*: fast, and reproducible for a given seed. */
static __u64 rnd(void)
{
	__u64 x = emu.hostile_rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	emu.hostile_rng = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static void fill_random(__u8 *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = rnd();
}

static void hdr(__u8 *out, int type, __u32 dc, __u32 hc, __u32 dp, __u32 hp,
		__u32 plen)
{
	struct usb_vsock_hdr h;

	memcpy(h.magic, USB_VSOCK_MAGIC, USB_VSOCK_MAGIC_LEN);
	h.type = type;
	h.device_cid = htole32(dc);
	h.host_cid = htole32(hc);
	h.device_port = htole32(dp);
	h.host_port = htole32(hp);
	h.payload_len = htole32(plen);
	memcpy(out, &h, HDR);
}

/* A port no connection of ours uses. */
static __u32 stray_port(void)
{
	return 0x40000000u + (rnd() % 0x10000000u);
}

/* Packets of a valid stream, up to len bytes; returns the bytes used. */
static size_t valid_stream(__u8 *out, size_t len)
{
	static const char types[] = "EeDRFX";
	size_t off = 0;

	while (off + HDR <= len) {
		int type = types[rnd() % (sizeof(types) - 1)];
		__u32 plen = rnd() % 64;

		if (type == USB_VSOCK_PAUSE_PKT)
			plen = 1;
		if (off + HDR + plen > len)
			plen = len - off - HDR;
		hdr(out + off, type, emu.cid, USB_VSOCK_CID_HOST, stray_port(),
		    stray_port(), plen);
		fill_random(out + off + HDR, plen);
		if (type == USB_VSOCK_PAUSE_PKT && plen)
			out[off + HDR] = 1;
		off += HDR + plen;
	}
	return off;
}

static size_t pack_headers(__u8 *out, size_t len, int type, __u32 plen)
{
	size_t off = 0;

	while (off + HDR + plen <= len) {
		hdr(out + off, type, emu.cid, USB_VSOCK_CID_HOST, stray_port(),
		    stray_port(), plen);
		fill_random(out + off + HDR, plen);
		off += HDR + plen;
	}
	return off;
}

static size_t build(enum hostile_mode m, __u8 *out)
{
	static const char bad_types[] = "\0\x01GHZsabcx\xff";
	static __u64 connect_port;
	struct emu_conn *c;
	size_t len, off = 0, i;
	__u32 plen;

	switch (m) {
	case HM_RANDOM:
		len = 1 + rnd() % MTU;
		fill_random(out, len);
		return len;
	case HM_MUTATE:
		len = valid_stream(out, HDR + rnd() % (MTU - HDR + 1));
		for (i = 1 + rnd() % 4; i && len; i--)
			out[rnd() % len] ^= 1 + rnd() % 255;
		return len;
	case HM_MAGIC:
		len = valid_stream(out, HDR + rnd() % (MTU - HDR + 1));
		out[rnd() % USB_VSOCK_MAGIC_LEN] ^= 1 + rnd() % 255;
		return len;
	case HM_LENGTH:
		len = HDR + rnd() % (MTU - HDR + 1);
		plen = len - HDR + 1 + rnd() % 4096;
		if (!(rnd() % 8))
			plen = 0xffffffffu - rnd() % 16;
		hdr(out, rnd() % 2 ? USB_VSOCK_DATA : USB_VSOCK_ECHO, emu.cid,
		    USB_VSOCK_CID_HOST, stray_port(), stray_port(), plen);
		fill_random(out + HDR, len - HDR);
		return len;
	case HM_TYPE:
		hdr(out, bad_types[rnd() % (sizeof(bad_types) - 1)], emu.cid,
		    USB_VSOCK_CID_HOST, stray_port(), stray_port(), 0);
		return HDR;
	case HM_SYNC:
		plen = USB_VSOCK_VERSION_LEN;
		hdr(out, USB_VSOCK_SYNC, rnd() % 4 ? (__u32)rnd() : emu.cid,
		    USB_VSOCK_CID_HOST, 0, 0, plen);
		memcpy(out + HDR, rnd() % 2 ? USB_VSOCK_VERSION1 :
		       USB_VSOCK_VERSION0, plen);
		if (!(rnd() % 4))
			out[HDR + rnd() % plen] = rnd();
		return HDR + plen;
	case HM_CONNECT:
		while (off + HDR <= MTU) {
			__u32 hp = emu.hostile_port && rnd() % 2 ?
				emu.hostile_port : 40000 + rnd() % 1000;

			hdr(out + off, USB_VSOCK_CONNECT, emu.cid,
			    USB_VSOCK_CID_HOST,
			    0x40000000u + (__u32)(connect_port++ & 0x0fffffff),
			    hp, 0);
			off += HDR;
			stat_inc(ST_hostile_connects);
		}
		return off;
	case HM_DATA:
		return pack_headers(out, MTU, USB_VSOCK_DATA, rnd() % 200);
	case HM_PAUSE:
		for (c = emu.conns->next; c != emu.conns && off + HDR < MTU;
		     c = c->next) {
			hdr(out + off, USB_VSOCK_PAUSE_PKT, c->q.dev_cid,
			    c->q.host_cid, c->q.dev_port, c->q.host_port, 1);
			out[off + HDR] = USB_VSOCK_PAUSE;
			off += HDR + 1;
		}
		while (off + HDR + 1 <= MTU) {
			hdr(out + off, USB_VSOCK_PAUSE_PKT, emu.cid,
			    USB_VSOCK_CID_HOST, stray_port(), stray_port(), 1);
			out[off + HDR] = USB_VSOCK_PAUSE;
			off += HDR + 1;
		}
		return off;
	case HM_ECHO:
		return pack_headers(out, MTU, USB_VSOCK_ECHO, rnd() % 32);
	case HM_LENGTHS:
		len = emu.hostile_seq % (HOSTILE_MAX + 1);
		off = pack_headers(out, len, USB_VSOCK_ECHO, 0);
		if (off < len) {	/* the tail: a cut header */
			__u8 h[HDR];

			hdr(h, USB_VSOCK_ECHO, 0, 0, 0, 0, 0);
			memcpy(out + off, h, len - off);
		}
		return len;
	default:
		return 0;
	}
}

/* The header in host_view.pkt is one the host must take. */
static bool hv_header_ok(void)
{
	const __u8 *h = host_view.pkt;
	__u32 plen;
	__u8 type = h[3];

	memcpy(&plen, h + 20, sizeof(plen));
	plen = le32toh(plen);
	if (memcmp(h, USB_VSOCK_MAGIC, USB_VSOCK_MAGIC_LEN))
		return false;
	if (!type || !strchr("SEeCARFDX", type))
		return false;
	if (plen > USB_VSOCK_MAX_PAYLOAD)
		return false;
	host_view.need = HDR + plen;
	return true;
}

/* One piece of an IN transfer, as the host must parse it. */
static void hv_piece(const __u8 *p, size_t len)
{
	__u8 *pkt = host_view.pkt;
	size_t n;

	while (len) {
		if (host_view.have < HDR) {
			n = HDR - host_view.have;
			n = n < len ? n : len;
			memcpy(pkt + host_view.have, p, n);
			host_view.have += n;
			p += n;
			len -= n;
			if (host_view.have < HDR)
				return;
			if (!hv_header_ok())
				goto reject;
		}
		if (host_view.have < host_view.need) {
			n = host_view.need - host_view.have;
			n = n < len ? n : len;
			host_view.have += n;
			p += n;
			len -= n;
			if (host_view.have < host_view.need)
				return;
		}
		stat_inc(ST_hostile_pkts);
		host_view.have = 0;
		if (pkt[3] == USB_VSOCK_SYNC)
			return;		/* the rest of the piece goes */
	}
	return;
reject:
	stat_inc(ST_hostile_invalid);
	host_view.have = 0;
}

static void host_view_transfer(const __u8 *out, size_t len)
{
	size_t piece = emu.maxp ? emu.maxp : 512, n;

	if (host_view.lost)
		return;
	for (n = 0; n < len; n += piece)
		hv_piece(out + n, len - n < piece ? len - n : piece);
	/* The host refuses a packet that its transfer's end cut short. */
	if (host_view.have && in_transfer_ends(len)) {
		stat_inc(ST_hostile_invalid);
		host_view.have = 0;
	}
}

int hostile_start(const char *mode, __u64 count, __u32 port)
{
	enum hostile_mode m;

	for (m = HM_NONE; m < HM_COUNT; m++)
		if (!strcmp(mode, mode_names[m]))
			break;
	if (m == HM_COUNT)
		return -1;
	pthread_mutex_lock(&emu.lock);
	emu.hostile = count ? m : HM_NONE;
	emu.hostile_left = m == HM_NONE ? 0 : count;
	emu.hostile_port = port;
	emu.hostile_seq = 0;
	memset(&host_view, 0, sizeof(host_view));
	if (!emu.hostile_rng)
		emu.hostile_rng = 0x9e3779b97f4a7c15ULL ^ now_ms();
	pthread_cond_broadcast(&emu.cond);
	pthread_mutex_unlock(&emu.lock);
	emu_kick();
	return 0;
}

/*
 * The next hostile transfer into out (HOSTILE_MAX bytes), if one is due:
 * returns true with its length (maybe 0) in *len. Holds emu.lock.
 */
bool hostile_transfer(__u8 *out, size_t *len)
{
	enum hostile_mode m = emu.hostile;

	if (m == HM_NONE || !emu.hostile_left)
		return false;
	/* Let the handshake and the replies through every other transfer. */
	emu.hostile_yield = !emu.hostile_yield;
	if (emu.ctl_head && emu.hostile_yield) {
		if (host_view.have)
			host_view.lost = true;
		return false;
	}
	if (m == HM_MIX)
		m = HM_RANDOM + rnd() % (HM_LENGTHS - HM_RANDOM + 1);
	memset(out, 0, HOSTILE_MAX);
	*len = build(m, out);
	host_view_transfer(out, *len);
	emu.hostile_seq++;
	/* Only these hold Syncs the host may take (link.c, final_sync()). */
	if (m == HM_SYNC)
		emu.forged_sync_ms = now_ms();
	stat_inc(ST_hostile_transfers);
	if (!--emu.hostile_left) {
		emu_log("hostile %s: %llu transfers sent\n",
			hostile_mode_name(emu.hostile),
			(unsigned long long)emu.hostile_seq);
		emu.hostile = HM_NONE;
		pthread_cond_broadcast(&emu.cond);
	}
	return true;
}
