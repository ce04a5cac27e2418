// SPDX-License-Identifier: GPL-2.0
/*
 * usb_vsock_emu: a userspace emulator of a Fuchsia "usb vsock bridge"
 * device, for testing the usb_vsock host driver. It makes a configfs
 * gadget with one FunctionFS function (idVendor 0x18d1, interface ff/43/00,
 * one bulk IN and one bulk OUT endpoint; see gadget.c), binds it to a UDC
 * (dummy_udc.N in the test VM) and behaves as Fuchsia's device side does
 * (the overnet-usb function driver, usb-vsock-service and the usb_vsock
 * library), independently of the host driver's code:
 *
 * - OUT: --out-reqs (8) reads of 1024 bytes stay queued, as overnet-usb
 *   does; every completed read is parsed on its own. One that does not
 *   hold whole packets (a packet cut by the end of the transfer, or by
 *   the 1024-byte read of a longer transfer), bad magic or an unknown type
 *   is a protocol error: logged, counted (proto_errors and err_*), the rest
 *   of the read dropped, the link's connections dropped, and the device
 *   waits for a new Sync (protocol.md; the Fuchsia code read drops only the
 *   rest of the transfer). So does a packet after a Sync in one transfer.
 *   Garbage while waiting for a Sync only counts in garbage_waiting. An
 *   empty read (a ZLP from the host) is ignored and counted in rx_zlp, as
 *   overnet-usb ignores empty completions.
 * - IN: transfers of whole packets, at most 1024 bytes, --in-reqs (8) of
 *   them queued; one whose length is a multiple of wMaxPacketSize is
 *   followed by a zero-length write (FunctionFS never sets req->zero; a
 *   zero-length write sends a ZLP) unless --no-zlp.
 * - Handshake: on the host's Sync it sends Echo probes (payload: the host's
 *   Sync payload) until the EchoReply, 10 x 100 ms at most, then its Sync
 *   (host_cid 2, device_cid: --cid the first time, then the CID last
 *   assigned; payload: the lower of the host's and its own --version) and
 *   takes the host's final Sync: its device_cid is the assigned CID (shown
 *   by "status"), its payload must be the agreed version. Echo is answered
 *   with EchoReply at any time. A Sync on a synced link resets every
 *   connection and runs the handshake again; so does a link down (the
 *   function disabled: unplug, bus reset, reconfiguration).
 * - Connections: Connect to a service port is accepted, to the silent
 *   port never answered, to any other port (or for another CID pair)
 *   reset; Finish is answered with Reset; Reset
 *   drops the connection; Data for an unknown quad is dropped and counted
 *   (unknown_data); Pause (v1) stops our Data on that connection until
 *   Pause(0). Services and ports: see ../tools/vsock_testdata.h; flow
 *   control (Pause on v1, a stalled reader on v0): see conn.c.
 * - --generation v0|v2-echo|v2: instead of the above, the device side of
 *   one Fuchsia generation as its code does it (link.c, gen_rx()): v0
 *   replies vsock:0 to anything (with the host payload's length), v2-echo
 *   probes with Echo and then negotiates, v2 replies at once, sends reset
 *   Syncs and a ZLP only after a transfer shorter than 1024 bytes. All
 *   three take the first Sync after their reply as the final one, adopt
 *   its CID whatever it is, and give up (answer nothing) until the
 *   function is re-created if its payload is not their reply; a malformed
 *   read loses its rest only. Every generation asks for CID 3 first.
 * - --slow-start S: the service starts S seconds late; the OUT reads
 *   complete meanwhile but are held, and a function re-creation drops them.
 * - --remote-wakeup: the configuration says the device can wake the host
 *   (it never does), which lets the host autosuspend it.
 *
 * usage: usb_vsock_emu [OPTION...]        run a device (print_usage())
 *        usb_vsock_emu ctl SOCKET CMD...  send a command to a running one
 *
 * Control interface and commands: see ctl.c; the hostile device (ctl
 * "hostile MODE COUNT"): hostile.c; counters: emu.h. On SIGTERM,
 * SIGINT or the quit command the gadget is unbound and removed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "emu.h"
#include "../tools/vsock_testdata.h"

struct emu emu = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.ep0 = -1,
	.ep_in = -1,
	.ep_out = -1,
	.maxp = 512,
};

const char *const emu_stat_names[ST_COUNT] = {
	[ST_rx_transfers] = "rx_transfers",
	[ST_rx_bytes] = "rx_bytes",
	[ST_rx_zlp] = "rx_zlp",
	[ST_rx_errors] = "rx_errors",
	[ST_tx_transfers] = "tx_transfers",
	[ST_tx_bytes] = "tx_bytes",
	[ST_tx_zlp] = "tx_zlp",
	[ST_tx_errors] = "tx_errors",
	[ST_rx_sync] = "rx_sync",
	[ST_rx_echo] = "rx_echo",
	[ST_rx_echo_reply] = "rx_echo_reply",
	[ST_rx_connect] = "rx_connect",
	[ST_rx_accept] = "rx_accept",
	[ST_rx_reset] = "rx_reset",
	[ST_rx_finish] = "rx_finish",
	[ST_rx_data] = "rx_data",
	[ST_rx_pause] = "rx_pause",
	[ST_tx_sync] = "tx_sync",
	[ST_tx_echo] = "tx_echo",
	[ST_tx_echo_reply] = "tx_echo_reply",
	[ST_tx_connect] = "tx_connect",
	[ST_tx_accept] = "tx_accept",
	[ST_tx_reset] = "tx_reset",
	[ST_tx_finish] = "tx_finish",
	[ST_tx_data] = "tx_data",
	[ST_tx_pause] = "tx_pause",
	[ST_rx_data_bytes] = "rx_data_bytes",
	[ST_tx_data_bytes] = "tx_data_bytes",
	[ST_proto_errors] = "proto_errors",
	[ST_err_split] = "err_split",
	[ST_err_magic] = "err_magic",
	[ST_err_type] = "err_type",
	[ST_err_version] = "err_version",
	[ST_err_sync_not_last] = "err_sync_not_last",
	[ST_garbage_waiting] = "garbage_waiting",
	[ST_ignored_pkts] = "ignored_pkts",
	[ST_syncs] = "syncs",
	[ST_resyncs] = "resyncs",
	[ST_handshake_restarts] = "handshake_restarts",
	[ST_echo_timeouts] = "echo_timeouts",
	[ST_link_downs] = "link_downs",
	[ST_conns_opened] = "conns_opened",
	[ST_conns_closed] = "conns_closed",
	[ST_refused] = "refused",
	[ST_conn_failed] = "conn_failed",
	[ST_unanswered] = "unanswered",
	[ST_bad_addr_connect] = "bad_addr_connect",
	[ST_dup_connect] = "dup_connect",
	[ST_unknown_data] = "unknown_data",
	[ST_unknown_data_bytes] = "unknown_data_bytes",
	[ST_control_data_bytes] = "control_data_bytes",
	[ST_data_after_finish] = "data_after_finish",
	[ST_stray_pkts] = "stray_pkts",
	[ST_host_finishes] = "host_finishes",
	[ST_host_resets] = "host_resets",
	[ST_connect_out] = "connect_out",
	[ST_connect_out_accepted] = "connect_out_accepted",
	[ST_connect_out_refused] = "connect_out_refused",
	[ST_pause_sent] = "pause_sent",
	[ST_unpause_sent] = "unpause_sent",
	[ST_paused_by_host] = "paused_by_host",
	[ST_unpaused_by_host] = "unpaused_by_host",
	[ST_bad_pause] = "bad_pause",
	[ST_v0_stalls] = "v0_stalls",
	[ST_overflow_resets] = "overflow_resets",
	[ST_rx_buf_max] = "rx_buf_max",
	[ST_in_stalls] = "in_stalls",
	[ST_in_stall_max_ms] = "in_stall_max_ms",
	[ST_svc_done] = "svc_done",
	[ST_raw_pattern_errors] = "raw_pattern_errors",
	[ST_hostile_transfers] = "hostile_transfers",
	[ST_hostile_connects] = "hostile_connects",
	[ST_forged_sync_restarts] = "forged_sync_restarts",
	[ST_hostile_invalid] = "hostile_invalid",
	[ST_hostile_pkts] = "hostile_pkts",
	[ST_fn_enables] = "fn_enables",
	[ST_host_syncs] = "host_syncs",
	[ST_reset_syncs] = "reset_syncs",
	[ST_gave_up] = "gave_up",
	[ST_bad_final_cid] = "bad_final_cid",
	[ST_long_sync] = "long_sync",
	[ST_dropped_syncs] = "dropped_syncs",
	[ST_slow_dropped] = "slow_dropped",
};

static long long start_ms;
static char mount_buf[256];
static char ctl_buf[256];

long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Wait on cond (with emu.lock held) for at most ms milliseconds. */
void cond_wait_ms(pthread_cond_t *cond, long long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(cond, &emu.lock, &ts);
}

static void vlog(const char *fmt, va_list ap)
{
	char buf[512];
	long long t = now_ms() - start_ms;
	int n;

	n = snprintf(buf, sizeof(buf), "emu[%s] %lld.%03lld: ",
		     emu.o.name ? emu.o.name : "-", t / 1000, t % 1000);
	vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	fputs(buf, stderr);
}

void emu_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

void emu_dbg(const char *fmt, ...)
{
	va_list ap;

	if (!emu.o.verbose)
		return;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

static const char *const svc_names[SVC_COUNT] = {
	[SVC_NONE] = "none",
	[SVC_ECHO] = "echo",
	[SVC_SINK] = "sink",
	[SVC_SOURCE] = "source",
	[SVC_REFUSE] = "refuse",
	[SVC_SLOW_SINK] = "slow-sink",
	[SVC_SILENT] = "silent",
};

const char *svc_name(enum emu_svc svc)
{
	return svc_names[svc];
}

static void print_usage(FILE *f)
{
	fprintf(f,
		"usage: usb_vsock_emu [OPTION...]\n"
		"       usb_vsock_emu ctl SOCKET COMMAND [ARG...]\n"
		"Emulates a Fuchsia usb vsock bridge device on a UDC (configfs + FunctionFS).\n"
		"  -n, --name NAME       gadget and functionfs instance name [usbvsock0]\n"
		"  -u, --udc UDC         UDC to bind to [dummy_udc.0]\n"
		"  -m, --mount DIR       functionfs mount point [/tmp/ffs-NAME]\n"
		"  -p, --pid ID          idProduct [0xa026] (idVendor is 0x18d1)\n"
		"  -s, --serial STR      serial number [NAME]\n"
		"  -C, --ctl PATH        control socket [/tmp/NAME.sock]\n"
		"  -c, --cid N           CID asked for in the first handshake [0xffffffff]\n"
		"  -V, --version 0|1     newest protocol version spoken [1]\n"
		"  -z, --no-zlp          never send zero-length IN transfers\n"
		"      --echo-port N     echo service port [%u] (0: none)\n"
		"      --sink-port N     sink service port [%u]\n"
		"      --source-port N   source service port [%u]\n"
		"      --refuse-port N   port whose Connects are reset [%u]\n"
		"      --slow-port N     slow sink service port [%u]\n"
		"      --silent-port N   port whose Connects go unanswered [%u]\n"
		"      --slow-rate N     bytes the slow sink takes per 10 ms [2048]\n"
		"      --rx-buf N        per-connection receive buffer [16384]\n"
		"      --tx-buf N        per-connection send buffer [16384]\n"
		"      --echo-probes N   Echo probes before our Sync, 0: none [10]\n"
		"      --out-reqs N      OUT reads kept queued [8]\n"
		"      --in-reqs N       IN writes kept queued [8]\n"
		"      --raw             no protocol: sink OUT, source IN (benchmark)\n"
		"      --raw-size N      transfer size in --raw mode [16384]\n"
		"      --mute            never answer the host's Sync (count it only)\n"
		"      --generation G    model a Fuchsia device generation: v0 (old\n"
		"                        mist-os), v2-echo (misttech/fuchsia), v2 (newest,\n"
		"                        XSLabs/fuchsia) [none: the emulator's own model]\n"
		"      --slow-start S    the service processes nothing for S seconds; up to\n"
		"                        --out-reqs OUT transfers are held meanwhile [0]\n"
		"      --remote-wakeup   declare remote wakeup, so the host may autosuspend\n"
		"  -v, --verbose         log every connection and error\n"
		"Services: echo, sink (8-byte LE count, then data; replies the FNV-1a 64\n"
		"checksum, then Finish), source (8-byte LE count; sends that many pattern\n"
		"bytes, then Finish), refuse, slow-sink, silent; other ports are reset.\n"
		"Control commands: status, stats, get NAME, wait-sync [SEC [N]],\n"
		"connect PORT echo|sink|slow-sink|source N, conns, wait-idle [SEC],\n"
		"unplug, replug, resync, hostile MODE COUNT [PORT], wait-hostile [SEC],\n"
		"hold-out 1|0, halt-out, reset-stats, quit; with --generation: give-up,\n"
		"drop-syncs N; with --generation v2: reset-sync, client-reconnect.\n",
		VT_PORT_ECHO, VT_PORT_SINK, VT_PORT_SOURCE, VT_PORT_REFUSE,
		VT_PORT_SLOW_SINK, VT_PORT_SILENT);
}

static unsigned long long num(const char *s, const char *what)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end) {
		fprintf(stderr, "usb_vsock_emu: bad %s: %s\n", what, s);
		exit(2);
	}
	return v;
}

enum {
	OPT_ECHO_PORT = 256,
	OPT_SINK_PORT,
	OPT_SOURCE_PORT,
	OPT_REFUSE_PORT,
	OPT_SLOW_PORT,
	OPT_SILENT_PORT,
	OPT_SLOW_RATE,
	OPT_RX_BUF,
	OPT_TX_BUF,
	OPT_ECHO_PROBES,
	OPT_OUT_REQS,
	OPT_IN_REQS,
	OPT_RAW,
	OPT_RAW_SIZE,
	OPT_MUTE,
	OPT_GENERATION,
	OPT_SLOW_START,
	OPT_REMOTE_WAKEUP,
};

static const struct option long_opts[] = {
	{ "name", required_argument, NULL, 'n' },
	{ "udc", required_argument, NULL, 'u' },
	{ "mount", required_argument, NULL, 'm' },
	{ "pid", required_argument, NULL, 'p' },
	{ "serial", required_argument, NULL, 's' },
	{ "ctl", required_argument, NULL, 'C' },
	{ "cid", required_argument, NULL, 'c' },
	{ "version", required_argument, NULL, 'V' },
	{ "no-zlp", no_argument, NULL, 'z' },
	{ "echo-port", required_argument, NULL, OPT_ECHO_PORT },
	{ "sink-port", required_argument, NULL, OPT_SINK_PORT },
	{ "source-port", required_argument, NULL, OPT_SOURCE_PORT },
	{ "refuse-port", required_argument, NULL, OPT_REFUSE_PORT },
	{ "slow-port", required_argument, NULL, OPT_SLOW_PORT },
	{ "silent-port", required_argument, NULL, OPT_SILENT_PORT },
	{ "slow-rate", required_argument, NULL, OPT_SLOW_RATE },
	{ "rx-buf", required_argument, NULL, OPT_RX_BUF },
	{ "tx-buf", required_argument, NULL, OPT_TX_BUF },
	{ "echo-probes", required_argument, NULL, OPT_ECHO_PROBES },
	{ "out-reqs", required_argument, NULL, OPT_OUT_REQS },
	{ "in-reqs", required_argument, NULL, OPT_IN_REQS },
	{ "raw", no_argument, NULL, OPT_RAW },
	{ "raw-size", required_argument, NULL, OPT_RAW_SIZE },
	{ "mute", no_argument, NULL, OPT_MUTE },
	{ "generation", required_argument, NULL, OPT_GENERATION },
	{ "slow-start", required_argument, NULL, OPT_SLOW_START },
	{ "remote-wakeup", no_argument, NULL, OPT_REMOTE_WAKEUP },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void parse_opts(int argc, char **argv)
{
	struct emu_opts *o = &emu.o;
	int c;

	o->name = "usbvsock0";
	o->udc = "dummy_udc.0";
	o->pid = 0xa026;
	o->cid = USB_VSOCK_CID_ANY;
	o->version = 1;
	o->port[SVC_ECHO] = VT_PORT_ECHO;
	o->port[SVC_SINK] = VT_PORT_SINK;
	o->port[SVC_SOURCE] = VT_PORT_SOURCE;
	o->port[SVC_REFUSE] = VT_PORT_REFUSE;
	o->port[SVC_SLOW_SINK] = VT_PORT_SLOW_SINK;
	o->port[SVC_SILENT] = VT_PORT_SILENT;
	o->slow_rate = 2048;
	o->rx_buf = 16384;
	o->tx_buf = 16384;
	o->echo_probes = 10;
	o->out_reqs = 8;
	o->in_reqs = 8;
	o->raw_size = 16384;

	while ((c = getopt_long(argc, argv, "n:u:m:p:s:C:c:V:zvh", long_opts,
				NULL)) != -1) {
		switch (c) {
		case 'n':
			o->name = optarg;
			break;
		case 'u':
			o->udc = optarg;
			break;
		case 'm':
			o->mount = optarg;
			break;
		case 'p':
			o->pid = num(optarg, "idProduct") & 0xffff;
			break;
		case 's':
			o->serial = optarg;
			break;
		case 'C':
			o->ctl_path = optarg;
			break;
		case 'c':
			o->cid = num(optarg, "cid");
			o->cid_set = true;
			break;
		case 'V':
			o->version = num(optarg, "version");
			if (o->version > 1) {
				fprintf(stderr, "usb_vsock_emu: version 0 or 1\n");
				exit(2);
			}
			break;
		case 'z':
			o->no_zlp = true;
			break;
		case OPT_ECHO_PORT:
		case OPT_SINK_PORT:
		case OPT_SOURCE_PORT:
		case OPT_REFUSE_PORT:
		case OPT_SLOW_PORT:
		case OPT_SILENT_PORT:
			o->port[SVC_ECHO + c - OPT_ECHO_PORT] = num(optarg, "port");
			break;
		case OPT_SLOW_RATE:
			o->slow_rate = num(optarg, "rate");
			break;
		case OPT_RX_BUF:
			o->rx_buf = num(optarg, "size");
			break;
		case OPT_TX_BUF:
			o->tx_buf = num(optarg, "size");
			break;
		case OPT_ECHO_PROBES:
			o->echo_probes = num(optarg, "count");
			break;
		case OPT_OUT_REQS:
			o->out_reqs = num(optarg, "count");
			break;
		case OPT_IN_REQS:
			o->in_reqs = num(optarg, "count");
			break;
		case OPT_RAW:
			o->raw = true;
			break;
		case OPT_RAW_SIZE:
			o->raw_size = num(optarg, "size");
			break;
		case OPT_MUTE:
			o->mute = true;
			break;
		case OPT_GENERATION:
			for (o->generation = GEN_V0; o->generation < GEN_COUNT;
			     o->generation++)
				if (!strcmp(optarg, gen_name(o->generation)))
					break;
			if (o->generation == GEN_COUNT) {
				fprintf(stderr, "usb_vsock_emu: generation v0, v2-echo or v2\n");
				exit(2);
			}
			break;
		case OPT_SLOW_START:
			o->slow_start = num(optarg, "seconds");
			break;
		case OPT_REMOTE_WAKEUP:
			o->remote_wakeup = true;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'h':
			print_usage(stdout);
			exit(0);
		default:
			print_usage(stderr);
			exit(2);
		}
	}
	if (optind != argc) {
		print_usage(stderr);
		exit(2);
	}
	if (o->out_reqs < 1 || o->in_reqs < 1 || !o->slow_rate ||
	    !o->rx_buf || !o->tx_buf || !o->raw_size ||
	    o->raw_size > 1024 * 1024) {
		fprintf(stderr, "usb_vsock_emu: bad sizes or counts\n");
		exit(2);
	}
	if (o->generation && (o->raw || o->mute)) {
		fprintf(stderr, "usb_vsock_emu: --generation with --raw or --mute\n");
		exit(2);
	}
	/* Every Fuchsia generation asks for CID 3 on its first link. */
	if (o->generation && !o->cid_set)
		o->cid = 3;
	if (!o->serial)
		o->serial = o->name;
	if (!o->mount) {
		snprintf(mount_buf, sizeof(mount_buf), "/tmp/ffs-%s", o->name);
		o->mount = mount_buf;
	}
	if (!o->ctl_path) {
		snprintf(ctl_buf, sizeof(ctl_buf), "/tmp/%s.sock", o->name);
		o->ctl_path = ctl_buf;
	}
}

static void stop_all(void)
{
	struct emu_conn *c;

	pthread_mutex_lock(&emu.lock);
	emu.stop = true;
	for (c = emu.conns->next; c != emu.conns; c = c->next)
		pthread_cond_broadcast(&c->cond);
	pthread_cond_broadcast(&emu.cond);
	pthread_mutex_unlock(&emu.lock);
	emu_kick();
}

int main(int argc, char **argv)
{
	pthread_t t_ep0, t_rd, t_wr, t_ctl;
	struct timespec ts = { 0, 200 * 1000000L };
	pthread_condattr_t ca;
	sigset_t set;
	int sfd, sig;

	start_ms = now_ms();
	if (argc >= 2 && !strcmp(argv[1], "ctl"))
		return ctl_client(argc - 2, argv + 2);
	parse_opts(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&emu.cond, &ca);
	conns_init();
	emu.want_cid = emu.o.cid;
	emu.svc_start_ms = start_ms + 1000LL * emu.o.slow_start;
	emu.next_local_port = 49152;
	emu.work_efd = eventfd(0, EFD_NONBLOCK);
	sfd = ctl_listen();
	if (emu.work_efd < 0 || sfd < 0)
		return 1;
	if (gadget_setup())
		return 1;
	if (pthread_create(&t_ep0, NULL, ep0_thread, NULL) ||
	    pthread_create(&t_rd, NULL, reader_thread, NULL) ||
	    pthread_create(&t_wr, NULL, writer_thread, NULL) ||
	    pthread_create(&t_ctl, NULL, ctl_thread, (void *)(long)sfd)) {
		emu_log("cannot start threads\n");
		gadget_teardown();
		return 1;
	}
	if (gadget_bind()) {
		stop_all();
		gadget_teardown();
		return 1;
	}
	if (emu.o.generation)
		printf("usb_vsock_emu: %s ready on %s, generation %s%s, slow start %u s, ctl %s\n",
		       emu.o.name, emu.o.udc, gen_name(emu.o.generation),
		       emu.o.no_zlp ? ", no ZLP" : "", emu.o.slow_start,
		       emu.o.ctl_path);
	else
		printf("usb_vsock_emu: %s ready on %s, version %d%s%s, control socket %s\n",
		       emu.o.name, emu.o.udc, emu.o.version,
		       emu.o.no_zlp ? ", no ZLP" : "", emu.o.raw ? ", raw" : "",
		       emu.o.ctl_path);

	for (;;) {
		bool quit;

		sig = sigtimedwait(&set, NULL, &ts);
		pthread_mutex_lock(&emu.lock);
		quit = emu.quit;
		pthread_mutex_unlock(&emu.lock);
		if (sig > 0 || quit)
			break;
	}
	emu_log("exiting: proto_errors=%llu\n",
		(unsigned long long)emu.stats[ST_proto_errors]);
	if (emu.bound)
		gadget_unbind();
	stop_all();
	pthread_join(t_ctl, NULL);
	pthread_join(t_rd, NULL);
	pthread_join(t_wr, NULL);
	pthread_join(t_ep0, NULL);
	pthread_mutex_lock(&emu.lock);
	conns_kill_all();
	pthread_mutex_unlock(&emu.lock);
	gadget_teardown();
	close(sfd);
	unlink(emu.o.ctl_path);
	return 0;
}
