/* SPDX-License-Identifier: GPL-2.0 */
/*
 * usbfs_host: finding the bridge interface in sysfs, and an asynchronous
 * bulk URB engine on /dev/bus/usb/BBB/DDD.
 */
#ifndef USBFS_H
#define USBFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/usbdevice_fs.h>

#define UF_ATTR __attribute__
#define __printf(a, b) UF_ATTR((__format__(__printf__, a, b)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* How long a test waits for what must happen, as a guard against hangs. */
#define UF_WAIT_MS	30000

struct uf_match {
	unsigned int vid;
	int pid;		/* -1: any */
	const char *serial;	/* NULL: any */
	int bus;		/* -1: any */
};

struct uf_dev {
	int fd;
	int bus;
	int devnum;
	unsigned int iface;
	unsigned int ep_in;
	unsigned int ep_out;
	unsigned int maxp;
	char sysname[64];
};

struct uf_urb {
	struct usbdevfs_urb urb;
	uint8_t *buf;
	size_t size;
	bool in;
	bool busy;
};

struct uf_outq {
	struct uf_outq *next;
	size_t len;
	uint8_t data[];
};

/* The URB engine: nin IN URBs always queued, up to nout OUT URBs. */
struct uf_io {
	struct uf_dev *d;
	struct uf_urb *in;
	int nin;
	int next_in;		/* the IN URB that completes next */
	struct uf_urb *out;
	int nout;
	int next_out;		/* the OUT slot to use next, round robin */
	bool zero_packet;	/* USBDEVFS_URB_ZERO_PACKET on OUT URBs */
	bool resubmit_in;	/* keep the IN URBs queued */
	struct uf_outq *q_head;
	struct uf_outq *q_tail;
	void (*on_in)(void *ctx, const uint8_t *buf, size_t len);
	void *ctx;
	int error;		/* first fatal error, -errno */
	uint64_t in_urbs;
	uint64_t in_bytes;
	uint64_t out_urbs;
	uint64_t out_bytes;
};

__printf(1, 2) void uf_log(const char *fmt, ...);
long long uf_now_ms(void);

int uf_find(struct uf_dev *d, const struct uf_match *m, int wait_s);
int uf_open(struct uf_dev *d, bool detach);
void uf_close(struct uf_dev *d);

int uf_io_init(struct uf_io *io, struct uf_dev *d, int nin, size_t in_size,
	       int nout, size_t out_size);
void uf_io_free(struct uf_io *io);
int uf_io_start(struct uf_io *io);
int uf_pump(struct uf_io *io, int timeout_ms);
int uf_send(struct uf_io *io, const void *buf, size_t len);
int uf_out_pending(struct uf_io *io);
bool uf_out_idle(struct uf_io *io);
int uf_flush(struct uf_io *io, int timeout_ms);

/* Options of usbfs_host, shared by its modes. */
struct uf_opts {
	struct uf_match match;
	int wait_s;		/* wait for the device to enumerate */
	bool detach;		/* detach a kernel driver from the interface */
	const char *ctl;	/* the emulator's control socket, or NULL */
	int version;		/* protocol version the host offers */
	int expect_version;	/* agreed version expected */
	int in_urbs;
	int out_urbs;
	size_t in_size;		/* IN URB size; 0: wMaxPacketSize */
	size_t size;		/* data per test / raw transfer size */
	double seconds;		/* raw benchmark duration */
	const char *tests;	/* comma-separated test names, or NULL: all */
	int expect_zlp;		/* zlp-probe: 1 ZLPs expected, 0 not */
	bool zero_packet;	/* USBDEVFS_URB_ZERO_PACKET on OUT */
	bool verify;		/* raw-in: check the source pattern */
	int expect_errors;	/* protocol errors the emulator may count */
	const char *generation;	/* gen: the emulator's --generation */
};

int proto_main(const struct uf_opts *o);
int zlp_probe(const struct uf_opts *o);
int gen_main(const struct uf_opts *o);

int uf_ctl(struct uf_io *io, const char *sock, const char *cmd, char *reply,
	   size_t size);
int uf_ctl_get(struct uf_io *io, const char *sock, const char *key,
	       long long *val);
long long uf_ctl_wait(struct uf_io *io, const char *sock, const char *key,
		      long long want);

#endif /* USBFS_H */
