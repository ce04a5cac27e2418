// SPDX-License-Identifier: GPL-2.0
/*
 * usbfs_host: drives a usb vsock bridge device from userspace through
 * usbfs (/dev/bus/usb/BBB/DDD), with no kernel driver bound to it. It finds
 * the device in sysfs (idVendor 0x18d1 by default, interface ff/43/00),
 * claims the interface and does asynchronous bulk transfers.
 *
 * usage: usbfs_host [OPTION...] MODE   (see usage())
 *
 * Modes:
 *   proto      the protocol tests against tests/emu/usb_vsock_emu (see
 *              usbfs_tests.c; those that check the emulator's counters need
 *              --ctl); prints "ok N - NAME" / "not ok N - NAME" lines
 *   zlp-probe  whether 512- and 1024-byte IN transfers reach the host
 *              while nothing follows them (use --in-size 4096)
 *   raw-in     benchmark: read the bulk IN endpoint for --seconds with
 *              --in-urbs URBs of --size bytes in flight (emulator --raw)
 *   raw-out    benchmark: write the bulk OUT endpoint likewise
 *   out-probe  how OUT transfers end on the device: whether a 512-byte
 *              transfer (with and without USBDEVFS_URB_ZERO_PACKET)
 *              completes a 1024-byte device read (emulator --raw
 *              --raw-size 1024)
 *   gen        the handshake tests of the Fuchsia device generations
 *              against an emulator run with --generation (usbfs_gen.c;
 *              needs --ctl and --generation)
 * Every mode prints a "usbfs_host: N passed, N failed" line. Exit status:
 * 0 if all passed, 2 for bad usage, 3 (proto) if every failure came from
 * the device going away in the middle (transfers failed with ENODEV,
 * ESHUTDOWN or EPROTO, and usbfs answers ENODEV for the device), also
 * printed as "usbfs_host: the device is gone", 1 for any other failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/usb_vsock.h>

#include "usbfs.h"
#include "vsock_testdata.h"

static void print_usage(FILE *f)
{
	fprintf(f,
		"usage: usbfs_host [OPTION...] proto|zlp-probe|raw-in|raw-out|out-probe|gen\n"
		"  --vid ID            idVendor [0x18d1]\n"
		"  --pid ID            idProduct [any]\n"
		"  --serial STR        serial number [any]\n"
		"  --bus N             bus number [any]\n"
		"  --wait SEC          wait for the device to enumerate [10]\n"
		"  --detach            detach a kernel driver from the interface\n"
		"  --ctl SOCK          the emulator's control socket\n"
		"  --version V         protocol version to offer [1]\n"
		"  --expect-version V  version the device should agree on [min(V, 1)]\n"
		"  --in-urbs N         IN URBs in flight [4]\n"
		"  --out-urbs N        OUT URBs in flight [4]\n"
		"  --in-size N         IN URB size [wMaxPacketSize; raw: --size]\n"
		"  --size N            data per test [100000] / raw URB size [16384]\n"
		"  --seconds S         raw benchmark duration [5]\n"
		"  --tests LIST        comma-separated proto tests [all]\n"
		"  --expect-zlp 0|1    zlp-probe: the device sends ZLPs [1]\n"
		"  --zero-packet       set USBDEVFS_URB_ZERO_PACKET on OUT URBs\n"
		"  --verify            raw-in: check the source pattern\n"
		"  --expect-errors N   protocol errors the emulator may count besides\n"
		"                      those the tests provoke [0]\n"
		"  --generation G      gen: the emulator's --generation (v0, v2-echo, v2)\n");
}

static int open_dev(struct uf_dev *d, const struct uf_opts *o)
{
	if (uf_find(d, &o->match, o->wait_s)) {
		uf_log("no device with an ff/43/00 interface\n");
		return -1;
	}
	return uf_open(d, o->detach);
}

struct raw_in {
	uint64_t off;
	uint64_t bad;
	uint64_t short_urbs;
	size_t size;
	bool verify;
};

static void raw_on_in(void *ctx, const uint8_t *buf, size_t len)
{
	struct raw_in *r = ctx;

	if (r->verify && vt_pattern_check(buf, len, r->off) != len)
		r->bad++;
	if (len < r->size)
		r->short_urbs++;
	r->off += len;
}

static int raw_in(const struct uf_opts *o)
{
	size_t size = o->in_size ? o->in_size : o->size;
	struct raw_in r = { .size = size, .verify = o->verify };
	struct uf_dev d;
	struct uf_io io;
	long long t0, t;
	double mb;
	int bad = 0;

	if (open_dev(&d, o) ||
	    uf_io_init(&io, &d, o->in_urbs, size, 1, 64))
		goto fail;
	io.on_in = raw_on_in;
	io.ctx = &r;
	t0 = uf_now_ms();
	if (uf_io_start(&io))
		goto fail;
	while ((t = uf_now_ms()) - t0 < o->seconds * 1000 && !io.error)
		uf_pump(&io, 10);
	mb = r.off / 1e6 / ((t - t0) / 1e3);
	printf("raw-in: %llu bytes in %.2f s = %.2f MB/s; ",
	       (unsigned long long)r.off, (t - t0) / 1e3, mb);
	printf("%d URBs of %zu bytes in flight, %llu URBs, %llu short\n",
	       o->in_urbs, size, (unsigned long long)io.in_urbs,
	       (unsigned long long)r.short_urbs);
	if (o->verify)
		printf("raw-in: %llu URBs with bytes off the pattern\n",
		       (unsigned long long)r.bad);
	bad = io.error || r.bad || !r.off;
	uf_io_free(&io);
	uf_close(&d);
	printf("usbfs_host: %d passed, %d failed\n", !bad, bad);
	return bad;
fail:
	printf("usbfs_host: 0 passed, 1 failed\n");
	return 1;
}

static int raw_out(const struct uf_opts *o)
{
	uint8_t *buf = malloc(o->size);
	uint64_t off = 0;
	struct uf_dev d;
	struct uf_io io;
	long long t0, t, errs = 0, got = 0;
	int bad;

	if (!buf || open_dev(&d, o) ||
	    uf_io_init(&io, &d, 0, 64, o->out_urbs, o->size))
		goto fail;
	io.zero_packet = o->zero_packet;
	t0 = uf_now_ms();
	while ((t = uf_now_ms()) - t0 < o->seconds * 1000 && !io.error) {
		while (uf_out_pending(&io) < io.nout) {
			vt_pattern_fill(buf, o->size, off);
			uf_send(&io, buf, o->size);
			off += o->size;
		}
		uf_pump(&io, 10);
	}
	uf_flush(&io, 5000);
	t = uf_now_ms();
	printf("raw-out: %llu bytes in %.2f s = %.2f MB/s; %d URBs of %zu bytes in flight\n",
	       (unsigned long long)io.out_bytes, (t - t0) / 1e3,
	       io.out_bytes / 1e6 / ((t - t0) / 1e3), o->out_urbs, o->size);
	bad = io.error || !io.out_bytes;
	if (o->ctl) {
		got = uf_ctl_wait(NULL, o->ctl, "rx_bytes", io.out_bytes);
		uf_ctl_get(NULL, o->ctl, "raw_pattern_errors", &errs);
		printf("raw-out: the device got %lld bytes, %lld transfers off the pattern\n",
		       got, errs);
		bad |= errs || got != (long long)io.out_bytes;
	}
	uf_io_free(&io);
	uf_close(&d);
	free(buf);
	printf("usbfs_host: %d passed, %d failed\n", !bad, bad);
	return bad;
fail:
	printf("usbfs_host: 0 passed, 1 failed\n");
	return 1;
}

/*
 * Device reads completed (and their bytes) since the last call, once at
 * least want more have (or after UF_WAIT_MS), and 300 ms later, so that a
 * read too many shows.
 */
static void reads_since(const struct uf_opts *o, long long want,
			long long *n, long long *b)
{
	static long long n0, b0;
	long long n1 = 0, b1 = 0;

	uf_ctl_wait(NULL, o->ctl, "rx_transfers", n0 + want);
	usleep(300000);
	uf_ctl_get(NULL, o->ctl, "rx_transfers", &n1);
	uf_ctl_get(NULL, o->ctl, "rx_bytes", &b1);
	*n = n1 - n0;
	*b = b1 - b0;
	n0 = n1;
	b0 = b1;
}

struct probe_case {
	size_t len;
	bool zp;		/* USBDEVFS_URB_ZERO_PACKET */
	long long reads;	/* the device reads we expect to complete */
};

static const struct probe_case probes[] = {
	{ 700, false, 1 },
	{ 1024, false, 1 },
	{ 512, false, 0 },
	{ 512, true, 1 },
	{ 1500, false, 2 },
	{ 2048, false, 2 },
	{ 2048, true, 3 },	/* 1024, 1024 and an empty read */
};

static int out_probe(const struct uf_opts *o)
{
	uint8_t buf[4096];
	struct uf_dev d;
	struct uf_io io;
	const char *zp, *note;
	long long n, b;
	int i, bad = 0;

	if (!o->ctl || open_dev(&d, o) ||
	    uf_io_init(&io, &d, 0, 64, 1, sizeof(buf)))
		goto fail;
	memset(buf, 0x5a, sizeof(buf));
	reads_since(o, 0, &n, &b);
	for (i = 0; i < (int)ARRAY_SIZE(probes); i++) {
		io.zero_packet = probes[i].zp;
		uf_send(&io, buf, probes[i].len);
		uf_flush(&io, 3000);
		reads_since(o, probes[i].reads, &n, &b);
		zp = probes[i].zp ? " with ZERO_PACKET" : "";
		note = n == probes[i].reads ? "" : " UNEXPECTED";
		printf("out-probe: a %zu-byte OUT transfer%s, ", probes[i].len,
		       zp);
		printf("%lld device reads of 1024 completed (%lld bytes)%s\n",
		       n, b, note);
		bad += n != probes[i].reads;
		if (b == (long long)probes[i].len)
			continue;
		/* Flush what is left in the device's read. */
		io.zero_packet = false;
		uf_send(&io, buf, 100);
		uf_flush(&io, 3000);
		reads_since(o, 1, &n, &b);
		printf("out-probe:   then a 100-byte transfer: %lld reads, %lld bytes\n",
		       n, b);
	}
	bad += !!io.error;
	uf_io_free(&io);
	uf_close(&d);
	printf("usbfs_host: %d passed, %d failed\n",
	       (int)(ARRAY_SIZE(probes)) - bad, bad);
	return !!bad;
fail:
	printf("usbfs_host: 0 passed, 1 failed\n");
	return 1;
}

enum {
	O_VID = 256, O_PID, O_SERIAL, O_BUS, O_WAIT, O_DETACH, O_CTL,
	O_VERSION, O_EXPECT_VERSION, O_IN_URBS, O_OUT_URBS, O_IN_SIZE,
	O_SIZE, O_SECONDS, O_TESTS, O_EXPECT_ZLP, O_ZERO_PACKET, O_VERIFY,
	O_EXPECT_ERRORS, O_GENERATION, O_HELP,
};

static const struct option long_opts[] = {
	{ "vid", required_argument, NULL, O_VID },
	{ "pid", required_argument, NULL, O_PID },
	{ "serial", required_argument, NULL, O_SERIAL },
	{ "bus", required_argument, NULL, O_BUS },
	{ "wait", required_argument, NULL, O_WAIT },
	{ "detach", no_argument, NULL, O_DETACH },
	{ "ctl", required_argument, NULL, O_CTL },
	{ "version", required_argument, NULL, O_VERSION },
	{ "expect-version", required_argument, NULL, O_EXPECT_VERSION },
	{ "in-urbs", required_argument, NULL, O_IN_URBS },
	{ "out-urbs", required_argument, NULL, O_OUT_URBS },
	{ "in-size", required_argument, NULL, O_IN_SIZE },
	{ "size", required_argument, NULL, O_SIZE },
	{ "seconds", required_argument, NULL, O_SECONDS },
	{ "tests", required_argument, NULL, O_TESTS },
	{ "expect-zlp", required_argument, NULL, O_EXPECT_ZLP },
	{ "zero-packet", no_argument, NULL, O_ZERO_PACKET },
	{ "verify", no_argument, NULL, O_VERIFY },
	{ "expect-errors", required_argument, NULL, O_EXPECT_ERRORS },
	{ "generation", required_argument, NULL, O_GENERATION },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
	struct uf_opts o = {
		.match = { .vid = USB_VSOCK_VENDOR_GOOGLE, .pid = -1,
			   .bus = -1 },
		.wait_s = 10,
		.version = 1,
		.expect_version = -1,
		.in_urbs = 4,
		.out_urbs = 4,
		.seconds = 5,
		.expect_zlp = 1,
	};
	const char *mode;
	int c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		switch (c) {
		case O_VID:
			o.match.vid = strtoul(optarg, NULL, 0);
			break;
		case O_PID:
			o.match.pid = strtol(optarg, NULL, 0);
			break;
		case O_SERIAL:
			o.match.serial = optarg;
			break;
		case O_BUS:
			o.match.bus = strtol(optarg, NULL, 0);
			break;
		case O_WAIT:
			o.wait_s = strtol(optarg, NULL, 0);
			break;
		case O_DETACH:
			o.detach = true;
			break;
		case O_CTL:
			o.ctl = optarg;
			break;
		case O_VERSION:
			o.version = strtol(optarg, NULL, 0);
			break;
		case O_EXPECT_VERSION:
			o.expect_version = strtol(optarg, NULL, 0);
			break;
		case O_IN_URBS:
			o.in_urbs = strtol(optarg, NULL, 0);
			break;
		case O_OUT_URBS:
			o.out_urbs = strtol(optarg, NULL, 0);
			break;
		case O_IN_SIZE:
			o.in_size = strtoul(optarg, NULL, 0);
			break;
		case O_SIZE:
			o.size = strtoul(optarg, NULL, 0);
			break;
		case O_SECONDS:
			o.seconds = strtod(optarg, NULL);
			break;
		case O_TESTS:
			o.tests = optarg;
			break;
		case O_EXPECT_ZLP:
			o.expect_zlp = strtol(optarg, NULL, 0);
			break;
		case O_ZERO_PACKET:
			o.zero_packet = true;
			break;
		case O_VERIFY:
			o.verify = true;
			break;
		case O_EXPECT_ERRORS:
			o.expect_errors = strtol(optarg, NULL, 0);
			break;
		case O_GENERATION:
			o.generation = optarg;
			break;
		case O_HELP:
			print_usage(stdout);
			return 0;
		default:
			print_usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1 || o.in_urbs < 1 || o.out_urbs < 1 ||
	    o.version < 0 || o.version > 9) {
		print_usage(stderr);
		return 2;
	}
	mode = argv[optind];
	if (o.expect_version < 0)
		o.expect_version = o.version < 1 ? o.version : 1;
	if (!strcmp(mode, "proto") || !strcmp(mode, "zlp-probe")) {
		if (!o.size)
			o.size = 100000;
		return !strcmp(mode, "proto") ? proto_main(&o) : zlp_probe(&o);
	}
	if (!o.size)
		o.size = 16384;
	if (!strcmp(mode, "raw-in"))
		return raw_in(&o);
	if (!strcmp(mode, "raw-out"))
		return raw_out(&o);
	if (!strcmp(mode, "out-probe"))
		return out_probe(&o);
	if (!strcmp(mode, "gen"))
		return gen_main(&o);
	print_usage(stderr);
	return 2;
}
