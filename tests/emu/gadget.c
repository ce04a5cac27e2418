// SPDX-License-Identifier: GPL-2.0
/*
 * usb_vsock_emu: the configfs gadget, its FunctionFS function and the ep0
 * event thread.
 *
 * Layout made under /sys/kernel/config/usb_gadget/NAME:
 *   idVendor 0x18d1, idProduct --pid, strings/0x409/{manufacturer,product,
 *   serialnumber}, configs/c.1 with functions/ffs.NAME linked in.
 * functionfs instance NAME is mounted on --mount; its ep0 gets v2
 * descriptors (full and high speed): interface ff/43/00 with a bulk IN
 * (ep1) and a bulk OUT (ep2) endpoint, 64/512-byte wMaxPacketSize.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/usb/ch9.h>
#include <linux/usb/functionfs.h>

#include "emu.h"

#define GADGET_ROOT	"/sys/kernel/config/usb_gadget"

/* Interface ff/43/00 with a bulk IN and a bulk OUT endpoint, as bytes. */
struct emu_ffs_func {
	__u8 intf[USB_DT_INTERFACE_SIZE];
	__u8 in[USB_DT_ENDPOINT_SIZE];
	__u8 out[USB_DT_ENDPOINT_SIZE];
} __packed;

struct emu_ffs_descs {
	struct usb_functionfs_descs_head_v2 head;
	__le32 fs_count;
	__le32 hs_count;
	struct emu_ffs_func fs;
	struct emu_ffs_func hs;
} __packed;

#define EMU_IFACE_STR	"usb vsock bridge"

struct emu_ffs_strings {
	struct usb_functionfs_strings_head head;
	__le16 lang;
	char str[sizeof(EMU_IFACE_STR)];
} __packed;

static int write_str(const char *path, const char *val)
{
	ssize_t n;
	int fd, err = 0;

	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	if (n < 0)
		err = -errno;
	close(fd);
	return err;
}

static int write_attr(const char *dir, const char *name, const char *val)
{
	char path[PATH_MAX];
	int err;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	err = write_str(path, val);
	if (err)
		emu_log("cannot write \"%s\" to %s: %s\n", val, path,
			strerror(-err));
	return err;
}

static int make_dir(const char *fmt, const char *a, const char *b)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), fmt, a, b);
	if (mkdir(path, 0755) && errno != EEXIST) {
		emu_log("mkdir %s: %s\n", path, strerror(errno));
		return -errno;
	}
	return 0;
}

static void fill_func(struct emu_ffs_func *f, unsigned int maxp)
{
	const __u8 intf[USB_DT_INTERFACE_SIZE] = {
		USB_DT_INTERFACE_SIZE, USB_DT_INTERFACE,
		0,	/* interface number */
		0,	/* alternate setting */
		2,	/* endpoints */
		USB_VSOCK_IF_CLASS, USB_VSOCK_IF_SUBCLASS,
		USB_VSOCK_IF_PROTOCOL,
		1,	/* interface string */
	};
	const __u8 ep[USB_DT_ENDPOINT_SIZE] = {
		USB_DT_ENDPOINT_SIZE, USB_DT_ENDPOINT,
		1 | USB_DIR_IN,	/* ep1, IN */
		USB_ENDPOINT_XFER_BULK,
		maxp & 0xff, maxp >> 8,
		0,		/* interval */
	};

	memcpy(f->intf, intf, sizeof(intf));
	memcpy(f->in, ep, sizeof(ep));
	memcpy(f->out, ep, sizeof(ep));
	f->out[2] = 2 | USB_DIR_OUT;	/* ep2, OUT */
}

static int write_descriptors(void)
{
	struct emu_ffs_descs d;
	struct emu_ffs_strings s;

	memset(&d, 0, sizeof(d));
	d.head.magic = htole32(FUNCTIONFS_DESCRIPTORS_MAGIC_V2);
	d.head.length = htole32(sizeof(d));
	d.head.flags = htole32(FUNCTIONFS_HAS_FS_DESC | FUNCTIONFS_HAS_HS_DESC);
	d.fs_count = htole32(3);
	d.hs_count = htole32(3);
	fill_func(&d.fs, 64);
	fill_func(&d.hs, 512);
	if (write(emu.ep0, &d, sizeof(d)) != sizeof(d)) {
		emu_log("writing descriptors to ep0: %s\n", strerror(errno));
		return -1;
	}

	memset(&s, 0, sizeof(s));
	s.head.magic = htole32(FUNCTIONFS_STRINGS_MAGIC);
	s.head.length = htole32(sizeof(s));
	s.head.str_count = htole32(1);
	s.head.lang_count = htole32(1);
	s.lang = htole16(0x0409);
	memcpy(s.str, EMU_IFACE_STR, sizeof(EMU_IFACE_STR));
	if (write(emu.ep0, &s, sizeof(s)) != sizeof(s)) {
		emu_log("writing strings to ep0: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static void rm_path(const char *fmt, const char *a, const char *b, bool link)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), fmt, a, b);
	if ((link ? unlink(path) : rmdir(path)) && errno != ENOENT)
		emu_log("cannot remove %s: %s\n", path, strerror(errno));
}

/* Remove whatever of the gadget exists; also cleans up after a crash. */
static void gadget_remove(void)
{
	const char *g = emu.gadget_dir, *n = emu.o.name;
	char path[PATH_MAX];

	if (access(g, F_OK))
		goto unmount;
	snprintf(path, sizeof(path), "%s/UDC", g);
	write_str(path, "\n");
	emu.bound = false;
unmount:
	if (emu.ep_in >= 0)
		close(emu.ep_in);
	if (emu.ep_out >= 0)
		close(emu.ep_out);
	if (emu.ep0 >= 0)
		close(emu.ep0);
	emu.ep_in = -1;
	emu.ep_out = -1;
	emu.ep0 = -1;
	if (umount2(emu.mount_dir, 0) && errno != EINVAL && errno != ENOENT)
		emu_log("umount %s: %s\n", emu.mount_dir, strerror(errno));
	emu.mounted = false;
	if (emu.made_mount_dir && rmdir(emu.mount_dir))
		emu_log("rmdir %s: %s\n", emu.mount_dir, strerror(errno));
	emu.made_mount_dir = false;
	if (access(g, F_OK))
		return;
	rm_path("%s/configs/c.1/ffs.%s", g, n, true);
	rm_path("%s/configs/c.1/strings/0x409%s", g, "", false);
	rm_path("%s/configs/c.1%s", g, "", false);
	rm_path("%s/functions/ffs.%s", g, n, false);
	rm_path("%s/strings/0x409%s", g, "", false);
	rm_path("%s%s", g, "", false);
}

int gadget_setup(void)
{
	const char *g = emu.gadget_dir, *n = emu.o.name;
	char buf[PATH_MAX];

	if (access(GADGET_ROOT, F_OK)) {
		emu_log("no %s: is configfs mounted and libcomposite loaded?\n",
			GADGET_ROOT);
		return -1;
	}
	snprintf(emu.gadget_dir, sizeof(emu.gadget_dir), "%s/%s",
		 GADGET_ROOT, n);
	snprintf(emu.func_dir, sizeof(emu.func_dir), "%s/functions/ffs.%s",
		 g, n);
	snprintf(emu.link_path, sizeof(emu.link_path),
		 "%s/configs/c.1/ffs.%s", g, n);
	snprintf(emu.mount_dir, sizeof(emu.mount_dir), "%s", emu.o.mount);
	if (!access(g, F_OK)) {
		emu_log("removing a stale gadget %s\n", g);
		gadget_remove();
	}

	if (make_dir("%s%s", g, "") || make_dir("%s/strings/0x409%s", g, ""))
		goto fail;
	snprintf(buf, sizeof(buf), "0x%04x", USB_VSOCK_VENDOR_GOOGLE);
	if (write_attr(g, "idVendor", buf))
		goto fail;
	snprintf(buf, sizeof(buf), "0x%04x", emu.o.pid);
	if (write_attr(g, "idProduct", buf) ||
	    write_attr(g, "bcdDevice", "0x0100") ||
	    write_attr(g, "bcdUSB", "0x0200") ||
	    write_attr(g, "strings/0x409/manufacturer", "usb_vsock") ||
	    write_attr(g, "strings/0x409/product", "usb vsock emulator") ||
	    write_attr(g, "strings/0x409/serialnumber", emu.o.serial))
		goto fail;
	if (make_dir("%s/configs/c.1%s", g, "") ||
	    make_dir("%s/configs/c.1/strings/0x409%s", g, "") ||
	    write_attr(g, "configs/c.1/strings/0x409/configuration", "vsock") ||
	    write_attr(g, "configs/c.1/MaxPower", "100") ||
	    (emu.o.remote_wakeup &&
	     write_attr(g, "configs/c.1/bmAttributes", "0xa0")))
		goto fail;
	if (make_dir("%s/functions/ffs.%s", g, n))
		goto fail;
	if (symlink(emu.func_dir, emu.link_path)) {
		emu_log("symlink %s: %s\n", emu.link_path, strerror(errno));
		goto fail;
	}

	if (mkdir(emu.mount_dir, 0755) == 0)
		emu.made_mount_dir = true;
	else if (errno != EEXIST)
		emu_log("mkdir %s: %s\n", emu.mount_dir, strerror(errno));
	if (mount(n, emu.mount_dir, "functionfs", 0, NULL)) {
		emu_log("mount functionfs %s on %s: %s\n", n, emu.mount_dir,
			strerror(errno));
		goto fail;
	}
	emu.mounted = true;

	snprintf(buf, sizeof(buf), "%s/ep0", emu.mount_dir);
	emu.ep0 = open(buf, O_RDWR);
	if (emu.ep0 < 0) {
		emu_log("open %s: %s\n", buf, strerror(errno));
		goto fail;
	}
	if (write_descriptors())
		goto fail;
	fcntl(emu.ep0, F_SETFL, fcntl(emu.ep0, F_GETFL) | O_NONBLOCK);

	/*
	 * Non-blocking: I/O on a disabled endpoint fails with EAGAIN instead
	 * of sleeping, so that the threads can notice a stop.
	 */
	snprintf(buf, sizeof(buf), "%s/ep1", emu.mount_dir);
	emu.ep_in = open(buf, O_RDWR | O_NONBLOCK);
	snprintf(buf, sizeof(buf), "%s/ep2", emu.mount_dir);
	emu.ep_out = open(buf, O_RDWR | O_NONBLOCK);
	if (emu.ep_in < 0 || emu.ep_out < 0) {
		emu_log("open endpoint files in %s: %s\n", emu.mount_dir,
			strerror(errno));
		goto fail;
	}
	return 0;
fail:
	gadget_remove();
	return -1;
}

void gadget_teardown(void)
{
	gadget_remove();
}

int gadget_bind(void)
{
	int err;

	err = write_attr(emu.gadget_dir, "UDC", emu.o.udc);
	if (err)
		return err;
	pthread_mutex_lock(&emu.lock);
	emu.bound = true;
	pthread_mutex_unlock(&emu.lock);
	emu_log("bound to %s\n", emu.o.udc);
	return 0;
}

int gadget_unbind(void)
{
	int err;

	err = write_attr(emu.gadget_dir, "UDC", "\n");
	if (err)
		return err;
	pthread_mutex_lock(&emu.lock);
	emu.bound = false;
	pthread_mutex_unlock(&emu.lock);
	emu_log("unbound from %s\n", emu.o.udc);
	return 0;
}

/*
 * Halt the endpoint the host writes to: FunctionFS halts an endpoint that
 * is written against its direction, and the write fails with EBADMSG.
 * The host's next transfer then fails with EPIPE until it clears the halt.
 */
int gadget_halt_out(void)
{
	char c = 0;
	int tries;

	/* O_NONBLOCK: EAGAIN while the AIO thread holds the file's mutex. */
	for (tries = 0; tries < 100; tries++) {
		if (write(emu.ep_out, &c, 1) >= 0)
			break;
		if (errno == EBADMSG) {
			emu_log("OUT endpoint halted\n");
			return 0;
		}
		if (errno != EAGAIN)
			break;
		usleep(10000);
	}
	return -1;
}

static void ep0_enable(void)
{
	/* struct usb_endpoint_descriptor; wMaxPacketSize at offset 4 */
	__u8 desc[USB_DT_ENDPOINT_AUDIO_SIZE];
	unsigned int maxp = 512;

	if (ioctl(emu.ep_in, FUNCTIONFS_ENDPOINT_DESC, desc) == 0)
		maxp = (desc[4] | desc[5] << 8) & 0x7ff;
	pthread_mutex_lock(&emu.lock);
	link_recreated_locked();
	emu.fn_gen++;
	emu.enabled = true;
	emu.maxp = maxp;
	emu.raw_rx_off = 0;
	emu.raw_tx_off = 0;
	pthread_cond_broadcast(&emu.cond);
	pthread_mutex_unlock(&emu.lock);
	/* after the link's reset: a host that saw it move finds it fresh */
	stat_inc(ST_fn_enables);
	emu_log("enabled, bulk wMaxPacketSize %u\n", maxp);
	emu_kick();
}

static void ep0_disable(const char *why)
{
	bool was;

	pthread_mutex_lock(&emu.lock);
	was = emu.enabled;
	emu.enabled = false;
	emu.fn_gen++;
	pthread_cond_broadcast(&emu.cond);
	pthread_mutex_unlock(&emu.lock);
	if (was)
		link_down(why);
}

/* A control request for the function: we have none, stall it. */
static void ep0_setup(const void *req)
{
	const __u8 *setup = req;	/* struct usb_ctrlrequest */
	__u8 dummy;
	ssize_t n;

	emu_dbg("ep0: setup %02x %02x, stalling\n", setup[0], setup[1]);
	if (setup[0] & USB_DIR_IN)
		n = read(emu.ep0, &dummy, 0);
	else
		n = write(emu.ep0, &dummy, 0);
	(void)n;
}

void *ep0_thread(void *arg)
{
	struct usb_functionfs_event ev[4];
	struct pollfd p;
	ssize_t n;
	int i;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&emu.lock);
		if (emu.stop) {
			pthread_mutex_unlock(&emu.lock);
			break;
		}
		pthread_mutex_unlock(&emu.lock);
		p.fd = emu.ep0;
		p.events = POLLIN;
		if (poll(&p, 1, 200) <= 0)
			continue;
		n = read(emu.ep0, ev, sizeof(ev));
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR) {
				emu_log("ep0 read: %s\n", strerror(errno));
				usleep(100000);
			}
			continue;
		}
		for (i = 0; i < (int)(n / sizeof(ev[0])); i++) {
			switch (ev[i].type) {
			case FUNCTIONFS_BIND:
				emu_dbg("ep0: bind\n");
				break;
			case FUNCTIONFS_UNBIND:
				emu_dbg("ep0: unbind\n");
				ep0_disable("unbind");
				break;
			case FUNCTIONFS_ENABLE:
				ep0_enable();
				break;
			case FUNCTIONFS_DISABLE:
				emu_log("disabled\n");
				ep0_disable("disable");
				break;
			case FUNCTIONFS_SETUP:
				ep0_setup(&ev[i].u.setup);
				break;
			case FUNCTIONFS_SUSPEND:
				emu_dbg("ep0: suspend\n");
				break;
			case FUNCTIONFS_RESUME:
				emu_dbg("ep0: resume\n");
				break;
			default:
				emu_log("ep0: event %d\n", ev[i].type);
			}
		}
	}
	return NULL;
}
