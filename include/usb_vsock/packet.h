/* SPDX-License-Identifier: GPL-2.0 */
/*
 * usb_vsock packet encoding and validation.
 *
 * Pure functions on byte buffers: no USB, no sockets, so that KUnit can
 * exercise them on their own.
 */
#ifndef _USB_VSOCK_PACKET_H
#define _USB_VSOCK_PACKET_H

#include <linux/types.h>
#include <uapi/linux/usb_vsock.h>

/**
 * struct usb_vsock_addr - the address quad of a packet, in CPU order
 * @device_cid: context ID on the device side
 * @host_cid: context ID on the host side
 * @device_port: port on the device side
 * @host_port: port on the host side
 */
struct usb_vsock_addr {
	u32 device_cid;
	u32 host_cid;
	u32 device_port;
	u32 host_port;
};

/**
 * struct usb_vsock_pkt - a decoded packet
 * @type: the packet type
 * @addr: the address quad
 * @len: payload length in bytes
 * @payload: @len bytes of payload; points into the buffer it was decoded
 *	from, never owned by the packet
 */
struct usb_vsock_pkt {
	enum usb_vsock_type type;
	struct usb_vsock_addr addr;
	u32 len;
	const u8 *payload;
};

/**
 * enum usb_vsock_verdict - why a packet was rejected
 * @USB_VSOCK_PKT_OK: the packet is well formed
 * @USB_VSOCK_PKT_BAD_MAGIC: the header does not start with "ffx"
 * @USB_VSOCK_PKT_BAD_TYPE: the type letter is not a known packet type
 * @USB_VSOCK_PKT_TOO_LONG: payload_len is more than any packet may carry
 * @USB_VSOCK_PKT_TRUNCATED: the buffer ends before the packet does
 */
enum usb_vsock_verdict {
	USB_VSOCK_PKT_OK,
	USB_VSOCK_PKT_BAD_MAGIC,
	USB_VSOCK_PKT_BAD_TYPE,
	USB_VSOCK_PKT_TOO_LONG,
	USB_VSOCK_PKT_TRUNCATED,
};

/**
 * usb_vsock_pkt_size() - bytes a packet takes on the wire
 * @len: payload length
 *
 * Return: the header length plus @len.
 */
static inline size_t usb_vsock_pkt_size(u32 len)
{
	return USB_VSOCK_HDR_LEN + (size_t)len;
}

bool usb_vsock_type_valid(u8 type);
const char *usb_vsock_verdict_str(enum usb_vsock_verdict verdict);
void usb_vsock_hdr_init(struct usb_vsock_hdr *hdr, enum usb_vsock_type type,
			const struct usb_vsock_addr *addr, u32 len);
size_t usb_vsock_pkt_encode(void *buf, size_t room,
			    const struct usb_vsock_pkt *pkt);
enum usb_vsock_verdict usb_vsock_hdr_check(const struct usb_vsock_hdr *hdr,
					   size_t max_payload,
					   struct usb_vsock_pkt *pkt);
int usb_vsock_pkt_pause(const struct usb_vsock_pkt *pkt);
enum usb_vsock_verdict usb_vsock_pkt_decode(const void *buf, size_t len,
					    size_t max_payload,
					    struct usb_vsock_pkt *pkt);

#endif /* _USB_VSOCK_PACKET_H */
