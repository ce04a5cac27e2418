// SPDX-License-Identifier: GPL-2.0
/*
 * usb_vsock: AF_VSOCK over USB to devices that speak the Fuchsia
 * "usb vsock bridge" protocol.
 *
 * This file holds the module's identity. The protocol core lives in
 * packet.c (encoding and validation), parser.c (reassembly of received
 * transfers) and builder.c (packing of transmitted transfers).
 */

#include <linux/module.h>

MODULE_AUTHOR("usb_vsock developers");
MODULE_DESCRIPTION("AF_VSOCK transport over the Fuchsia USB vsock bridge");
MODULE_LICENSE("GPL");
