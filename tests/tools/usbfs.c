// SPDX-License-Identifier: GPL-2.0
/*
 * usbfs_host: finding the bridge interface in sysfs, an asynchronous bulk
 * URB engine on /dev/bus/usb/BBB/DDD (USBDEVFS_SUBMITURB/REAPURBNDELAY),
 * and a client of the emulator's control socket.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/usb_vsock.h>

#include "usbfs.h"

#define SYS_USB	"/sys/bus/usb/devices"

static long long t0;

long long uf_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void uf_log(const char *fmt, ...)
{
	long long t;
	va_list ap;

	if (!t0)
		t0 = uf_now_ms();
	t = uf_now_ms() - t0;
	printf("usbfs_host %lld.%03lld: ", t / 1000, t % 1000);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static int read_attr(const char *dir, const char *name, char *buf,
		     size_t size)
{
	char path[2048];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = 0;
	return 0;
}

static long attr_num(const char *dir, const char *name, int base)
{
	char buf[64];

	if (read_attr(dir, name, buf, sizeof(buf)))
		return -1;
	return strtol(buf, NULL, base);
}

/* The bulk endpoints of interface directory idir. */
static int find_eps(struct uf_dev *d, const char *idir)
{
	char path[1536], buf[32];
	struct dirent *e;
	DIR *dir;

	dir = opendir(idir);
	if (!dir)
		return -1;
	d->ep_in = 0;
	d->ep_out = 0;
	while ((e = readdir(dir))) {
		if (strncmp(e->d_name, "ep_", 3))
			continue;
		snprintf(path, sizeof(path), "%s/%s", idir, e->d_name);
		if (read_attr(path, "type", buf, sizeof(buf)) ||
		    strcmp(buf, "Bulk"))
			continue;
		if (attr_num(path, "bEndpointAddress", 16) & 0x80)
			d->ep_in = attr_num(path, "bEndpointAddress", 16);
		else
			d->ep_out = attr_num(path, "bEndpointAddress", 16);
		d->maxp = attr_num(path, "wMaxPacketSize", 16);
	}
	closedir(dir);
	return d->ep_in && d->ep_out ? 0 : -1;
}

/* The ff/43/00 interface of device directory ddir. */
static int find_iface(struct uf_dev *d, const char *ddir)
{
	char path[1024];
	struct dirent *e;
	int ret = -1;
	DIR *dir;

	dir = opendir(ddir);
	if (!dir)
		return -1;
	while (ret && (e = readdir(dir))) {
		if (!strchr(e->d_name, ':'))
			continue;
		snprintf(path, sizeof(path), "%s/%s", ddir, e->d_name);
		if (attr_num(path, "bInterfaceClass", 16) != USB_VSOCK_IF_CLASS ||
		    attr_num(path, "bInterfaceSubClass", 16) !=
		    USB_VSOCK_IF_SUBCLASS ||
		    attr_num(path, "bInterfaceProtocol", 16) !=
		    USB_VSOCK_IF_PROTOCOL)
			continue;
		d->iface = attr_num(path, "bInterfaceNumber", 16);
		ret = find_eps(d, path);
	}
	closedir(dir);
	return ret;
}

static bool dev_matches(const char *ddir, const struct uf_match *m)
{
	char buf[128];

	if (attr_num(ddir, "idVendor", 16) != (long)m->vid)
		return false;
	if (m->pid >= 0 && attr_num(ddir, "idProduct", 16) != m->pid)
		return false;
	if (m->bus >= 0 && attr_num(ddir, "busnum", 10) != m->bus)
		return false;
	if (m->serial && (read_attr(ddir, "serial", buf, sizeof(buf)) ||
			  strcmp(buf, m->serial)))
		return false;
	return true;
}

/* Find a matching device with a bridge interface, waiting wait_s. */
int uf_find(struct uf_dev *d, const struct uf_match *m, int wait_s)
{
	long long deadline = uf_now_ms() + wait_s * 1000LL;
	char ddir[512];
	struct dirent *e;
	DIR *dir;

	for (;;) {
		dir = opendir(SYS_USB);
		while (dir && (e = readdir(dir))) {
			if (e->d_name[0] == '.' || strchr(e->d_name, ':'))
				continue;
			snprintf(ddir, sizeof(ddir), "%s/%s", SYS_USB,
				 e->d_name);
			if (!dev_matches(ddir, m) || find_iface(d, ddir))
				continue;
			d->bus = attr_num(ddir, "busnum", 10);
			d->devnum = attr_num(ddir, "devnum", 10);
			snprintf(d->sysname, sizeof(d->sysname), "%.63s",
				 e->d_name);
			closedir(dir);
			return 0;
		}
		if (dir)
			closedir(dir);
		if (uf_now_ms() >= deadline)
			return -ENODEV;
		usleep(100000);
	}
}

int uf_open(struct uf_dev *d, bool detach)
{
	struct usbdevfs_ioctl cmd = { 0 };
	char path[64];
	int i;

	snprintf(path, sizeof(path), "/dev/bus/usb/%03d/%03d", d->bus,
		 d->devnum);
	for (i = 0; i < 50; i++) {	/* devtmpfs may lag behind sysfs */
		d->fd = open(path, O_RDWR | O_CLOEXEC);
		if (d->fd >= 0 || errno != ENOENT)
			break;
		usleep(100000);
	}
	if (d->fd < 0) {
		uf_log("open %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (detach) {
		cmd.ifno = d->iface;
		cmd.ioctl_code = USBDEVFS_DISCONNECT;
		if (ioctl(d->fd, USBDEVFS_IOCTL, &cmd) && errno != ENODATA)
			uf_log("detaching the kernel driver: %s\n",
			       strerror(errno));
	}
	if (ioctl(d->fd, USBDEVFS_CLAIMINTERFACE, &d->iface)) {
		uf_log("claiming interface %u of %s: %s\n", d->iface, path,
		       strerror(errno));
		close(d->fd);
		d->fd = -1;
		return -EBUSY;
	}
	return 0;
}

void uf_close(struct uf_dev *d)
{
	if (d->fd < 0)
		return;
	ioctl(d->fd, USBDEVFS_RELEASEINTERFACE, &d->iface);
	close(d->fd);
	d->fd = -1;
}

static int alloc_urbs(struct uf_urb **urbs, int n, size_t size, bool in)
{
	int i;

	*urbs = NULL;
	if (!n)
		return 0;
	*urbs = calloc(n, sizeof(**urbs));
	if (!*urbs)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		(*urbs)[i].buf = malloc(size);
		if (!(*urbs)[i].buf)
			return -ENOMEM;
		(*urbs)[i].size = size;
		(*urbs)[i].in = in;
	}
	return 0;
}

int uf_io_init(struct uf_io *io, struct uf_dev *d, int nin, size_t in_size,
	       int nout, size_t out_size)
{
	memset(io, 0, sizeof(*io));
	io->d = d;
	io->nin = nin;
	io->nout = nout;
	io->resubmit_in = true;
	if (alloc_urbs(&io->in, nin, in_size, true) ||
	    alloc_urbs(&io->out, nout, out_size, false))
		return -ENOMEM;
	return 0;
}

static void discard_all(struct uf_io *io)
{
	int i, busy = 0;
	void *p;

	for (i = 0; i < io->nin + io->nout; i++) {
		struct uf_urb *u = i < io->nin ? &io->in[i] :
						 &io->out[i - io->nin];

		if (!u->busy)
			continue;
		busy++;
		ioctl(io->d->fd, USBDEVFS_DISCARDURB, &u->urb);
	}
	while (busy && !ioctl(io->d->fd, USBDEVFS_REAPURB, &p)) {
		((struct uf_urb *)((struct usbdevfs_urb *)p)->usercontext)->busy =
			false;
		busy--;
	}
}

void uf_io_free(struct uf_io *io)
{
	struct uf_outq *q;
	int i;

	if (io->d && io->d->fd >= 0)
		discard_all(io);
	for (i = 0; io->in && i < io->nin; i++)
		free(io->in[i].buf);
	for (i = 0; io->out && i < io->nout; i++)
		free(io->out[i].buf);
	free(io->in);
	free(io->out);
	while ((q = io->q_head)) {
		io->q_head = q->next;
		free(q);
	}
	memset(io, 0, sizeof(*io));
}

static int submit(struct uf_io *io, struct uf_urb *u, size_t len)
{
	memset(&u->urb, 0, sizeof(u->urb));
	u->urb.type = USBDEVFS_URB_TYPE_BULK;
	u->urb.endpoint = u->in ? io->d->ep_in : io->d->ep_out;
	u->urb.buffer = u->buf;
	u->urb.buffer_length = len;
	u->urb.usercontext = u;
	if (!u->in && io->zero_packet)
		u->urb.flags = USBDEVFS_URB_ZERO_PACKET;
	if (ioctl(io->d->fd, USBDEVFS_SUBMITURB, &u->urb)) {
		if (!io->error)
			io->error = -errno;
		uf_log("submitting a bulk %s URB of %zu bytes: %s\n",
		       u->in ? "IN" : "OUT", len, strerror(errno));
		return -errno;
	}
	u->busy = true;
	return 0;
}

int uf_io_start(struct uf_io *io)
{
	int i;

	for (i = 0; i < io->nin; i++)
		if (!io->in[i].busy && submit(io, &io->in[i], io->in[i].size))
			return io->error;
	return 0;
}

/* Move queued OUT transfers into free OUT URBs, in order. */
static void submit_out(struct uf_io *io)
{
	struct uf_outq *q;
	struct uf_urb *u;

	while ((q = io->q_head) && !io->error) {
		u = &io->out[io->next_out];
		if (u->busy)
			return;
		memcpy(u->buf, q->data, q->len);
		if (submit(io, u, q->len))
			return;
		io->next_out = (io->next_out + 1) % io->nout;
		io->q_head = q->next;
		if (!io->q_head)
			io->q_tail = NULL;
		free(q);
	}
}

static void reaped(struct uf_io *io, struct uf_urb *u)
{
	int st = u->urb.status;

	u->busy = false;
	if (st && st != -EREMOTEIO) {
		if (!io->error && st != -ENOENT && st != -ECONNRESET)
			io->error = st;
		uf_log("bulk %s URB failed: %s\n", u->in ? "IN" : "OUT",
		       strerror(-st));
		return;
	}
	if (!u->in) {
		io->out_urbs++;
		io->out_bytes += u->urb.actual_length;
		return;
	}
	io->in_urbs++;
	io->in_bytes += u->urb.actual_length;
	if (io->on_in)
		io->on_in(io->ctx, u->buf, u->urb.actual_length);
	if (io->resubmit_in && !io->error)
		submit(io, u, u->size);
}

/* Wait up to timeout_ms for completions and handle all that are there. */
int uf_pump(struct uf_io *io, int timeout_ms)
{
	struct pollfd p = { .fd = io->d->fd, .events = POLLOUT };
	int n = 2 * (io->nin + io->nout);	/* resubmitted URBs may complete */
	int err = EAGAIN;
	void *urb;

	submit_out(io);
	if (io->error)
		return io->error;
	if (poll(&p, 1, timeout_ms) < 0 && errno != EINTR)
		return -errno;
	while (n--) {
		if (ioctl(io->d->fd, USBDEVFS_REAPURBNDELAY, &urb)) {
			err = errno;
			break;
		}
		reaped(io, ((struct usbdevfs_urb *)urb)->usercontext);
	}
	if (err != EAGAIN && !io->error) {
		io->error = -err;
		uf_log("reaping URBs: %s\n", strerror(err));
	}
	submit_out(io);
	return io->error;
}

/* Queue one OUT transfer. */
int uf_send(struct uf_io *io, const void *buf, size_t len)
{
	struct uf_outq *q = malloc(sizeof(*q) + len);

	if (!q)
		return -ENOMEM;
	if (!io->nout || len > io->out[0].size) {
		free(q);
		return -EMSGSIZE;
	}
	memcpy(q->data, buf, len);
	q->len = len;
	q->next = NULL;
	if (io->q_tail)
		io->q_tail->next = q;
	else
		io->q_head = q;
	io->q_tail = q;
	submit_out(io);
	return io->error;
}

/* OUT transfers queued or in flight. */
int uf_out_pending(struct uf_io *io)
{
	struct uf_outq *q;
	int i, n = 0;

	for (q = io->q_head; q; q = q->next)
		n++;
	for (i = 0; i < io->nout; i++)
		n += io->out[i].busy;
	return n;
}

bool uf_out_idle(struct uf_io *io)
{
	return !uf_out_pending(io);
}

int uf_flush(struct uf_io *io, int timeout_ms)
{
	long long deadline = uf_now_ms() + timeout_ms;

	while (!uf_out_idle(io) && !io->error) {
		if (uf_now_ms() >= deadline)
			return -ETIMEDOUT;
		uf_pump(io, 10);
	}
	return io->error;
}

/*
 * Send one command to the emulator's control socket and read the reply,
 * pumping io (if any) meanwhile. 0 if the reply ends with "ok".
 */
int uf_ctl(struct uf_io *io, const char *sock, const char *cmd, char *reply,
	   size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t got = 0;
	char line[512];
	ssize_t n;
	int fd, len;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	len = snprintf(line, sizeof(line), "%s\n", cmd);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    write(fd, line, len) != len) {
		uf_log("control socket %s: %s\n", sock, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (io)
			uf_pump(io, 0);
		if (poll(&p, 1, io ? 5 : -1) <= 0)
			continue;
		n = read(fd, reply + got, size - 1 - got);
		if (n <= 0)
			break;
		got += n;
		if (got == size - 1)
			break;
	}
	close(fd);
	reply[got] = 0;
	while (got && reply[got - 1] == '\n')
		reply[--got] = 0;
	if (got >= 2 && !strcmp(reply + got - 2, "ok") &&
	    (got == 2 || reply[got - 3] == '\n')) {
		reply[got - 2] = 0;
		return 0;
	}
	return -1;
}

int uf_ctl_get(struct uf_io *io, const char *sock, const char *key,
	       long long *val)
{
	char cmd[128], reply[256];

	snprintf(cmd, sizeof(cmd), "get %s", key);
	if (uf_ctl(io, sock, cmd, reply, sizeof(reply)))
		return -1;
	*val = strtoll(reply, NULL, 0);
	return 0;
}

/* Let ms pass, moving io's URBs meanwhile if there is an io. */
static void uf_idle(struct uf_io *io, int ms)
{
	long long end = uf_now_ms() + ms;

	if (!io) {
		usleep(ms * 1000);
		return;
	}
	while (!io->error && uf_now_ms() < end)
		uf_pump(io, 10);
}

/*
 * The emulator's counter key once it has reached want, or after UF_WAIT_MS
 * (-1 if the emulator cannot be asked): what the host has sent is not yet
 * what the device has handled. With io, its URBs keep moving meanwhile, so
 * that a device waiting to send is not held up by the wait.
 */
long long uf_ctl_wait(struct uf_io *io, const char *sock, const char *key,
		      long long want)
{
	long long end = uf_now_ms() + UF_WAIT_MS, v;

	for (;;) {
		if (uf_ctl_get(io, sock, key, &v))
			return -1;
		if (v >= want || uf_now_ms() >= end || (io && io->error))
			return v;
		uf_idle(io, 20);
	}
}
