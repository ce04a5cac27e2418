// SPDX-License-Identifier: GPL-2.0
/*
 * usb_vsock: AF_VSOCK over USB to devices that speak the Fuchsia
 * "usb vsock bridge" protocol.
 *
 * The module registers the vsock transport first, so that a device bound
 * right after can be reached at once, and fails to load when another
 * module holds the host-to-guest transport slot.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/moduleparam.h>

#include "usb_vsock/link.h"

unsigned int usb_vsock_tx_size = USB_VSOCK_MTU;
unsigned int usb_vsock_tx_urbs = 4;
unsigned int usb_vsock_rx_urbs = 16;
unsigned int usb_vsock_rcvbuf_max = 1 << 20;
unsigned int usb_vsock_rx_link_max = 16 << 20;
unsigned int usb_vsock_rx_stall_ms = 5000;
unsigned int usb_vsock_max_orphans = 1024;

static int usb_vsock_set_uint(const char *val, const struct kernel_param *kp,
			      unsigned int min, unsigned int max)
{
	unsigned int n;
	int ret = kstrtouint(val, 0, &n);

	if (ret)
		return ret;
	if (n < min || n > max)
		return -EINVAL;
	*(unsigned int *)kp->arg = n;
	return 0;
}

static int usb_vsock_set_tx_size(const char *val,
				 const struct kernel_param *kp)
{
	unsigned int n;
	int ret = kstrtouint(val, 0, &n);

	if (ret)
		return ret;
	/* Every control packet, a Sync included, must fit. */
	if (n < 64)
		return -EINVAL;
	/*
	 * Every Fuchsia device reads 1024-byte requests and parses each on
	 * its own: a packet across a 1024-byte boundary would be lost.
	 */
	if (n > USB_VSOCK_MTU) {
		pr_warn("tx_size %u is more than devices read, using %u\n",
			n, USB_VSOCK_MTU);
		n = USB_VSOCK_MTU;
	}
	*(unsigned int *)kp->arg = n;
	return 0;
}

/* The set and get operations of an unsigned int parameter in [min, max]. */
#define USB_VSOCK_UINT_PARAM_OPS(name, min, max)			\
static int usb_vsock_set_##name(const char *val,			\
				const struct kernel_param *kp)		\
{									\
	return usb_vsock_set_uint(val, kp, (min), (max));		\
}									\
static const struct kernel_param_ops usb_vsock_##name##_ops = {		\
	.set = usb_vsock_set_##name,					\
	.get = param_get_uint,						\
}

USB_VSOCK_UINT_PARAM_OPS(urbs, 1, 256);
USB_VSOCK_UINT_PARAM_OPS(rcvbuf_max, USB_VSOCK_RCVBUF_MIN, 64 << 20);
USB_VSOCK_UINT_PARAM_OPS(rx_link_max, 1 << 20, 1 << 30);
USB_VSOCK_UINT_PARAM_OPS(rx_stall_ms, 100, 600000);
USB_VSOCK_UINT_PARAM_OPS(max_orphans, 0, 65536);

static const struct kernel_param_ops usb_vsock_tx_size_ops = {
	.set = usb_vsock_set_tx_size,
	.get = param_get_uint,
};

module_param_cb(tx_size, &usb_vsock_tx_size_ops, &usb_vsock_tx_size, 0444);
MODULE_PARM_DESC(tx_size,
		 "Largest OUT transfer in bytes, 64 to 1024 (default 1024, what Fuchsia devices read)");
module_param_cb(tx_urbs, &usb_vsock_urbs_ops, &usb_vsock_tx_urbs, 0444);
MODULE_PARM_DESC(tx_urbs, "OUT transfers in flight per device (default 4)");
module_param_cb(rx_urbs, &usb_vsock_urbs_ops, &usb_vsock_rx_urbs, 0444);
MODULE_PARM_DESC(rx_urbs,
		 "IN transfers of wMaxPacketSize in flight per device (default 16)");
module_param_cb(rcvbuf_max, &usb_vsock_rcvbuf_max_ops, &usb_vsock_rcvbuf_max,
		0644);
MODULE_PARM_DESC(rcvbuf_max,
		 "Most bytes a connection holds unread, whatever its socket's buffer size (default 1 MiB)");
module_param_cb(rx_link_max, &usb_vsock_rx_link_max_ops,
		&usb_vsock_rx_link_max, 0644);
MODULE_PARM_DESC(rx_link_max,
		 "Unread bytes per device above which every connection is paused at 16 KiB (default 16 MiB)");
module_param_cb(rx_stall_ms, &usb_vsock_rx_stall_ms_ops,
		&usb_vsock_rx_stall_ms, 0644);
MODULE_PARM_DESC(rx_stall_ms,
		 "How long a connection may stop a version 0 link before it is reset (default 5000 ms)");
module_param_cb(max_orphans, &usb_vsock_max_orphans_ops,
		&usb_vsock_max_orphans, 0644);
MODULE_PARM_DESC(max_orphans,
		 "Closed sockets per device that wait for the device to end their connection; more are reset at once (default 1024)");

static int __init usb_vsock_init_module(void)
{
	int ret;

	ret = usb_vsock_transport_register();
	if (ret)
		return ret;
	ret = usb_vsock_usb_register();
	if (ret)
		goto err_transport;
	return 0;

err_transport:
	usb_vsock_transport_unregister();
	return ret;
}
module_init(usb_vsock_init_module);

static void __exit usb_vsock_exit_module(void)
{
	usb_vsock_usb_deregister();
	usb_vsock_transport_unregister();
}
module_exit(usb_vsock_exit_module);

MODULE_AUTHOR("usb_vsock developers");
MODULE_DESCRIPTION("AF_VSOCK transport over the Fuchsia USB vsock bridge");
MODULE_LICENSE("GPL");
