// SPDX-License-Identifier: GPL-2.0
/*
 * usbfs_host gen: the sync handshake of the three Fuchsia device
 * generations, against usb_vsock_emu --generation v0|v2-echo|v2 (see
 * tests/emu/link.c, gen_rx()), with the emulator's control socket (--ctl)
 * to read its counters. Each test leaves the link synced.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostlink.h"
#include "vsock_testdata.h"

#define G_V0		1
#define G_V2_ECHO	2
#define G_V2		4
#define G_ALL		(G_V0 | G_V2_ECHO | G_V2)
#define QUIET_MS	1000	/* how long "no answer" is watched for */

static int gen;			/* G_V0, G_V2_ECHO or G_V2 */

/* A control command; 0 if it succeeded. */
static int g_ctl(struct hlink *l, const char *cmd, char *reply, size_t size)
{
	char dummy[256];

	if (!reply) {
		reply = dummy;
		size = sizeof(dummy);
	}
	return uf_ctl(&l->io, l->o->ctl, cmd, reply, size);
}

/* The emulator's link state is want ("wait-sync", "synced", ...). */
static bool g_state_is(struct hlink *l, const char *want)
{
	char reply[64];

	if (g_ctl(l, "get state", reply, sizeof(reply)))
		return false;
	reply[strcspn(reply, "\n")] = 0;
	if (strcmp(reply, want)) {
		uf_log("emulator state %s, expected %s\n", reply, want);
		return false;
	}
	return true;
}

/* Wait (UF_WAIT_MS at most) until counter key reaches want; true if so. */
static bool g_wait(struct hlink *l, const char *key, long long want)
{
	long long v = ctl_wait(l, key, want);

	if (v != want)
		uf_log("%s = %lld, expected %lld\n", key, v, want);
	return v == want;
}

static bool g_is(struct hlink *l, const char *key, long long want)
{
	long long v = ctl_get(l, key);

	if (v != want)
		uf_log("%s = %lld, expected %lld\n", key, v, want);
	return v == want;
}

/* Our Sync with payload; 0 once the device's Sync came back. */
static int g_sync(struct hlink *l, const char *payload)
{
	if (sync_exchange(l, payload, strlen(payload)))
		return -1;
	uf_log("device Sync to \"%s\": \"%.*s\" (%u bytes), cid %#x, %u Echo probes\n",
	       payload, (int)l->dev_sync_len, l->dev_sync_payload,
	       l->dev_sync_len, l->dev_sync_q.dcid, l->dev_echoes);
	return 0;
}

static bool g_reply_is(struct hlink *l, const char *want)
{
	if (l->dev_sync_len == strlen(want) &&
	    !memcmp(l->dev_sync_payload, want, l->dev_sync_len))
		return true;
	uf_log("device replied \"%.*s\", expected \"%s\"\n",
	       (int)l->dev_sync_len, l->dev_sync_payload, want);
	return false;
}

/* The final Sync: device_cid cid, payload (NULL: the device's reply). */
static void g_final(struct hlink *l, uint32_t cid, const char *payload)
{
	if (payload)
		send_sync(l, cid, payload, strlen(payload));
	else
		send_sync(l, cid, l->dev_sync_payload, l->dev_sync_len);
	l->cid = cid;
	l->synced = true;
}

/*
 * A whole handshake with this payload, final payload fin (NULL: the
 * reply), the CID the device asks for if valid, else 3; then the link
 * carries an echo connection.
 */
static int g_handshake(struct hlink *l, const char *payload, const char *fin)
{
	long long syncs = ctl_get(l, "syncs");
	uint32_t cid;
	struct hconn *c;

	if (g_sync(l, payload))
		return -1;
	cid = l->dev_sync_q.dcid;
	if (cid <= 2 || cid == USB_VSOCK_CID_ANY)
		cid = 3;
	g_final(l, cid, fin);
	if (!g_wait(l, "syncs", syncs + 1) || !g_state_is(l, "synced") ||
	    !g_is(l, "cid", cid))
		return -1;
	c = hconnect(l, VT_PORT_ECHO);
	if (!c || c->state != HC_OPEN || echo_check(l, c, 300, 31))
		return -1;
	return close_conn(l, c);
}

/* A fresh function: SET_INTERFACE, then the device waits for a Sync. */
static int g_recreate(struct hlink *l)
{
	long long en = ctl_get(l, "fn_enables");

	if (link_set_interface(l) || !g_wait(l, "fn_enables", en + 1))
		return -1;
	return g_state_is(l, "wait-sync") ? 0 : -1;
}

/* A v1 host: the reply, the CID asked for, the Echo probes. */
static int t_sync_v1(struct hlink *l)
{
	const char *want = gen == G_V0 ? USB_VSOCK_VERSION0 :
			   USB_VSOCK_VERSION1;
	long long syncs = ctl_get(l, "syncs");

	if (g_sync(l, USB_VSOCK_VERSION1) || !g_reply_is(l, want))
		return -1;
	if (l->dev_sync_q.dcid != 3 ||
	    l->dev_sync_q.hcid != USB_VSOCK_CID_HOST) {
		uf_log("device asked for cid %#x (host cid %#x), expected 3\n",
		       l->dev_sync_q.dcid, l->dev_sync_q.hcid);
		return -1;
	}
	if (gen == G_V2 ? l->dev_echoes != 0 : l->dev_echoes < 1) {
		uf_log("%u Echo probes before the reply\n", l->dev_echoes);
		return -1;
	}
	g_final(l, 3, NULL);
	if (!g_wait(l, "syncs", syncs + 1) || !g_state_is(l, "synced") ||
	    !g_is(l, "version", gen == G_V0 ? 0 : 1))
		return -1;
	/* The CID asked for next is the one assigned last. */
	return g_handshake(l, USB_VSOCK_VERSION1, NULL) ||
	       l->dev_sync_q.dcid != 3 ? -1 : 0;
}

/*
 * v0: vsock:0 to a v2 payload, in a Sync whose payload_len is the host's
 * (the rest of the payload is what the device's buffer held: the host's
 * own bytes); long_sync counts it; the final Sync must say vsock:0.
 */
static int t_v0_long_sync(struct hlink *l)
{
	static const char host[] = "vsock:2:1f3a";
	long long ls = ctl_get(l, "long_sync");
	long long syncs = ctl_get(l, "syncs");

	if (g_sync(l, host))
		return -1;
	if (l->dev_sync_len != strlen(host) ||
	    memcmp(l->dev_sync_payload, USB_VSOCK_VERSION0, 7) ||
	    memcmp(l->dev_sync_payload + 7, host + 7, strlen(host) - 7)) {
		uf_log("expected \"vsock:0\" + \"%s\" in %zu bytes\n", host + 7,
		       strlen(host));
		return -1;
	}
	if (!g_wait(l, "long_sync", ls + 1))
		return -1;
	g_final(l, 3, USB_VSOCK_VERSION0);
	if (!g_wait(l, "syncs", syncs + 1) ||
	    !g_state_is(l, "synced"))
		return -1;
	/* A 7-byte payload is no violation. */
	return g_handshake(l, USB_VSOCK_VERSION1, NULL) ||
	       !g_is(l, "long_sync", ls + 1) ? -1 : 0;
}

/* v2 devices echo the host's own vsock:2:<nonce>. */
static int t_nonce(struct hlink *l)
{
	if (g_handshake(l, "vsock:2:1f3a", NULL) ||
	    !g_reply_is(l, "vsock:2:1f3a") || !g_is(l, "version", 2))
		return -1;
	/* parsed in base 16: padding and upper case are the same nonce */
	if (g_handshake(l, "vsock:2:0000BEEF", NULL) ||
	    !g_reply_is(l, "vsock:2:beef"))
		return -1;
	return 0;
}

/* ... and vsock:2:0 to a payload they cannot parse. */
static int t_unparseable(struct hlink *l)
{
	if (g_handshake(l, "hello", NULL) || !g_reply_is(l, "vsock:2:0"))
		return -1;
	if (g_handshake(l, "vsock:2:xyz", NULL) || !g_reply_is(l, "vsock:2:0"))
		return -1;
	return 0;
}

/*
 * While the device waits for the host's Sync, an Echo is not answered.
 * The newest device sends a reset Sync instead, once per wait.
 */
static int t_no_echo_waiting(struct hlink *l)
{
	static const char ping[] = "ping";
	long long rs = ctl_get(l, "reset_syncs");
	struct hq q = { 0 };
	int i;

	if (g_recreate(l))
		return -1;
	for (i = 0; i < 2; i++) {
		l->got_echo_reply = false;
		l->dev_sync = false;
		send_pkt(l, USB_VSOCK_ECHO, &q, ping, sizeof(ping));
		dev_sync_within(l, QUIET_MS);
		if (l->got_echo_reply) {
			uf_log("the device answered an Echo while waiting for a Sync\n");
			return -1;
		}
		if (l->dev_sync != (gen == G_V2 && i == 0)) {
			uf_log("Echo %d while waiting: %sdevice Sync\n", i + 1,
			       l->dev_sync ? "a " : "no ");
			return -1;
		}
		if (l->dev_sync && (!g_reply_is(l, "vsock:2:0") ||
				    l->dev_sync_q.dcid != (l->cid ? l->cid : 3)))
			return -1;
	}
	if (!g_is(l, "reset_syncs", gen == G_V2 ? rs + 1 : rs))
		return -1;
	return g_handshake(l, gen == G_V0 ? USB_VSOCK_VERSION1 : "vsock:2:e1",
			   NULL);
}

/*
 * The stale-Sync hazard: two host Syncs in a row; the device answers the
 * first and takes the second as the final one, adopting its device_cid
 * 0xffffffff (bad_final_cid). It then asks for that CID.
 */
static int t_stale_sync(struct hlink *l)
{
	static const char pl[] = "vsock:2:5a5a";
	long long bad = ctl_get(l, "bad_final_cid");
	long long syncs = ctl_get(l, "syncs");
	long long hs = ctl_get(l, "host_syncs");

	l->dev_sync = false;
	send_sync(l, USB_VSOCK_CID_ANY, pl, strlen(pl));
	send_sync(l, USB_VSOCK_CID_ANY, pl, strlen(pl));
	if (!dev_sync_within(l, UF_WAIT_MS) || !g_reply_is(l, pl))
		return -1;
	if (!g_wait(l, "syncs", syncs + 1) || !g_state_is(l, "synced") ||
	    !g_is(l, "cid", USB_VSOCK_CID_ANY) ||
	    !g_is(l, "bad_final_cid", bad + 1) ||
	    !g_is(l, "host_syncs", hs + 2))
		return -1;
	if (g_handshake(l, "vsock:2:77", NULL))
		return -1;
	if (l->dev_sync_q.dcid != USB_VSOCK_CID_ANY) {
		uf_log("then the device asked for cid %#x\n", l->dev_sync_q.dcid);
		return -1;
	}
	return g_is(l, "bad_final_cid", bad + 1) ? 0 : -1;
}

/* Dead: a Sync and an Echo get nothing, and are not even processed. */
static int g_dead(struct hlink *l, const char *payload)
{
	long long hs = ctl_get(l, "host_syncs");
	struct hq q = { 0 };

	if (!g_state_is(l, "gave-up"))
		return -1;
	l->dev_sync = false;
	l->got_echo_reply = false;
	send_sync(l, USB_VSOCK_CID_ANY, payload, strlen(payload));
	send_pkt(l, USB_VSOCK_ECHO, &q, "x", 1);
	if (dev_sync_within(l, QUIET_MS) || l->got_echo_reply) {
		uf_log("a device that gave up answered\n");
		return -1;
	}
	return g_is(l, "host_syncs", hs) ? 0 : -1;
}

/*
 * A final Sync whose payload is not the reply: the device gives up
 * (gave_up) until SET_INTERFACE re-creates its function (fn_enables).
 */
static int t_give_up(struct hlink *l)
{
	const char *pl = gen == G_V0 ? USB_VSOCK_VERSION1 : "vsock:2:abc";
	const char *bad = gen == G_V0 ? USB_VSOCK_VERSION1 : "vsock:2:abd";
	long long gu = ctl_get(l, "gave_up");

	if (g_sync(l, pl))
		return -1;
	g_final(l, 3, bad);
	if (!g_wait(l, "gave_up", gu + 1) || g_dead(l, pl) || g_recreate(l))
		return -1;
	return g_handshake(l, pl, gen == G_V0 ? USB_VSOCK_VERSION0 : NULL);
}

/* ctl give-up: the same at once; gave_up does not count it. */
static int t_ctl_give_up(struct hlink *l)
{
	long long gu = ctl_get(l, "gave_up");

	if (g_ctl(l, "give-up", NULL, 0) || g_dead(l, USB_VSOCK_VERSION1) ||
	    g_recreate(l) || g_handshake(l, USB_VSOCK_VERSION1, NULL))
		return -1;
	return g_is(l, "gave_up", gu) ? 0 : -1;
}

/* ctl reset-sync and client-reconnect: a reset Sync each, with our CID. */
static int t_reset_sync(struct hlink *l)
{
	static const char *const cmds[] = { "reset-sync", "client-reconnect" };
	long long rs = ctl_get(l, "reset_syncs");
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		l->dev_sync = false;
		if (g_ctl(l, cmds[i], NULL, 0) ||
		    !dev_sync_within(l, UF_WAIT_MS)) {
			uf_log("no reset Sync after %s\n", cmds[i]);
			return -1;
		}
		if (!g_reply_is(l, "vsock:2:0") || l->dev_sync_q.dcid != l->cid ||
		    l->dev_sync_q.hcid != USB_VSOCK_CID_HOST ||
		    l->dev_sync_q.dport || l->dev_sync_q.hport ||
		    !g_is(l, "reset_syncs", rs + i + 1) ||
		    !g_state_is(l, "wait-sync"))
			return -1;
		if (g_handshake(l, "vsock:2:5eed", NULL))
			return -1;
	}
	return 0;
}

/* ctl drop-syncs 1: the next host Sync is lost; the one after answered. */
static int t_drop_syncs(struct hlink *l)
{
	long long ds = ctl_get(l, "dropped_syncs");

	if (g_ctl(l, "drop-syncs 1", NULL, 0))
		return -1;
	l->dev_sync = false;
	send_sync(l, USB_VSOCK_CID_ANY, USB_VSOCK_VERSION1,
		  USB_VSOCK_VERSION_LEN);
	if (!g_wait(l, "dropped_syncs", ds + 1) ||
	    dev_sync_within(l, QUIET_MS)) {
		uf_log("the dropped Sync was answered\n");
		return -1;
	}
	return g_handshake(l, USB_VSOCK_VERSION1, NULL);
}

/*
 * Emulator with --slow-start (long enough for this to begin before the
 * service starts): a host Sync is held, a function re-creation drops it,
 * the next one is held and answered once the service starts. The newest
 * device sends no reset Sync when its service first connects.
 */
static int t_slow_start(struct hlink *l)
{
	char reply[64];

	if (g_ctl(l, "get service", reply, sizeof(reply)) ||
	    strncmp(reply, "starting", 8)) {
		uf_log("the service already runs: --slow-start too short\n");
		return -1;
	}
	l->dev_sync = false;
	send_sync(l, USB_VSOCK_CID_ANY, "vsock:2:51", 10);
	if (dev_sync_within(l, QUIET_MS) || !g_is(l, "host_syncs", 0))
		return -1;
	if (link_set_interface(l) || !g_wait(l, "slow_dropped", 1))
		return -1;
	l->dev_sync = false;
	send_sync(l, USB_VSOCK_CID_ANY, "vsock:2:52", 10);
	if (!dev_sync_within(l, UF_WAIT_MS) || !g_reply_is(l, "vsock:2:52"))
		return -1;
	if (g_ctl(l, "get service", reply, sizeof(reply)) ||
	    strncmp(reply, "running", 7) || !g_is(l, "host_syncs", 1) ||
	    !g_is(l, "reset_syncs", 0))
		return -1;
	g_final(l, 3, NULL);
	if (!g_wait(l, "syncs", 1) || !g_state_is(l, "synced"))
		return -1;
	return g_handshake(l, "vsock:2:53", NULL);
}

struct gtest {
	const char *name;
	int (*fn)(struct hlink *l);
	int gens;
	bool on_request;	/* only if --tests names it */
};

static const struct gtest gtests[] = {
	{ "slow-start", t_slow_start, G_ALL, true },
	{ "sync-v1", t_sync_v1, G_ALL, false },
	{ "v0-long-sync", t_v0_long_sync, G_V0, false },
	{ "nonce", t_nonce, G_V2_ECHO | G_V2, false },
	{ "unparseable", t_unparseable, G_V2_ECHO | G_V2, false },
	{ "no-echo-waiting", t_no_echo_waiting, G_ALL, false },
	{ "stale-sync", t_stale_sync, G_V2, false },
	{ "give-up", t_give_up, G_ALL, false },
	{ "ctl-give-up", t_ctl_give_up, G_ALL, false },
	{ "reset-sync", t_reset_sync, G_V2, false },
	{ "drop-syncs", t_drop_syncs, G_ALL, false },
};

int gen_main(const struct uf_opts *o)
{
	struct hlink *l = calloc(1, sizeof(*l));
	int npass = 0, nfail = 0, n = 0;
	unsigned int i;

	if (!o->generation || !o->ctl)
		gen = 0;
	else if (!strcmp(o->generation, "v0"))
		gen = G_V0;
	else if (!strcmp(o->generation, "v2-echo"))
		gen = G_V2_ECHO;
	else if (!strcmp(o->generation, "v2"))
		gen = G_V2;
	if (!gen || !l || link_open(l, o)) {
		if (!gen)
			uf_log("gen needs --ctl and --generation v0|v2-echo|v2\n");
		printf("usbfs_host: 0 passed, 1 failed\n");
		free(l);
		return 1;
	}
	for (i = 0; i < ARRAY_SIZE(gtests); i++) {
		const struct gtest *t = &gtests[i];

		if (!(t->gens & gen) ||
		    (o->tests ? !listed(o->tests, t->name) : t->on_request))
			continue;
		if (run_test(l, ++n, t->name, t->fn))
			nfail++;
		else
			npass++;
	}
	printf("usbfs_host: %d passed, %d failed\n", npass, nfail);
	link_close(l);
	free(l);
	return nfail || !npass;
}
