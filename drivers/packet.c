// SPDX-License-Identifier: GPL-2.0
/*
 * usb_vsock packet encoding and validation.
 *
 * Everything here treats its input as hostile: a header is only trusted
 * after usb_vsock_hdr_check(), a Pause's payload after usb_vsock_pkt_pause().
 */

#include <linux/build_bug.h>
#include <linux/errno.h>
#include <linux/export.h>
#include <linux/stddef.h>
#include <linux/string.h>
#include <asm/byteorder.h>
#include <kunit/visibility.h>

#include "usb_vsock/packet.h"

static_assert(sizeof(struct usb_vsock_hdr) == USB_VSOCK_HDR_LEN);
static_assert(offsetof(struct usb_vsock_hdr, payload_len) == 20);

/**
 * usb_vsock_type_valid() - is @type a packet type of the protocol?
 * @type: the type byte of a header
 *
 * Return: true for the nine known type letters.
 */
bool usb_vsock_type_valid(u8 type)
{
	switch (type) {
	case USB_VSOCK_SYNC:
	case USB_VSOCK_ECHO:
	case USB_VSOCK_ECHO_REPLY:
	case USB_VSOCK_CONNECT:
	case USB_VSOCK_ACCEPT:
	case USB_VSOCK_RESET:
	case USB_VSOCK_FINISH:
	case USB_VSOCK_DATA:
	case USB_VSOCK_PAUSE_PKT:
		return true;
	}
	return false;
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_type_valid);

/**
 * usb_vsock_verdict_str() - a short text for log lines
 * @verdict: a verdict from the decoding functions
 *
 * Return: a static string describing @verdict.
 */
const char *usb_vsock_verdict_str(enum usb_vsock_verdict verdict)
{
	switch (verdict) {
	case USB_VSOCK_PKT_OK:
		return "ok";
	case USB_VSOCK_PKT_BAD_MAGIC:
		return "bad magic";
	case USB_VSOCK_PKT_BAD_TYPE:
		return "unknown type";
	case USB_VSOCK_PKT_TOO_LONG:
		return "payload too long";
	case USB_VSOCK_PKT_TRUNCATED:
		return "truncated";
	}
	return "?";
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_verdict_str);

/**
 * usb_vsock_hdr_init() - fill in a header
 * @hdr: the header to write; packed, so it may be unaligned
 * @type: packet type
 * @addr: address quad, or NULL for all zeroes
 * @len: payload length
 */
void usb_vsock_hdr_init(struct usb_vsock_hdr *hdr, enum usb_vsock_type type,
			const struct usb_vsock_addr *addr, u32 len)
{
	static const struct usb_vsock_addr none;

	if (!addr)
		addr = &none;
	memcpy(hdr->magic, USB_VSOCK_MAGIC, USB_VSOCK_MAGIC_LEN);
	hdr->type = type;
	hdr->device_cid = cpu_to_le32(addr->device_cid);
	hdr->host_cid = cpu_to_le32(addr->host_cid);
	hdr->device_port = cpu_to_le32(addr->device_port);
	hdr->host_port = cpu_to_le32(addr->host_port);
	hdr->payload_len = cpu_to_le32(len);
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_hdr_init);

/**
 * usb_vsock_pkt_encode() - write a whole packet into a buffer
 * @buf: where the packet goes
 * @room: bytes available at @buf
 * @pkt: the packet; @pkt->payload must hold @pkt->len bytes
 *
 * Return: the number of bytes written, or 0 when the packet does not fit.
 */
size_t usb_vsock_pkt_encode(void *buf, size_t room,
			    const struct usb_vsock_pkt *pkt)
{
	size_t size = usb_vsock_pkt_size(pkt->len);

	if (size > room)
		return 0;
	usb_vsock_hdr_init(buf, pkt->type, &pkt->addr, pkt->len);
	if (pkt->len)
		memcpy(buf + USB_VSOCK_HDR_LEN, pkt->payload, pkt->len);
	return size;
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_pkt_encode);

/* Only these types may carry a payload. */
/**
 * usb_vsock_hdr_check() - validate a header on its own
 * @hdr: USB_VSOCK_HDR_LEN bytes from the wire; may be unaligned
 * @max_payload: the largest payload_len to accept
 * @pkt: receives type, address and length; @pkt->payload is set to NULL
 *
 * Checks everything that can be known before the payload arrives, so that
 * a streaming parser can reject a packet as soon as its header is in and
 * never buffers more than one packet of @max_payload bytes. Only what
 * breaks the framing is bad here: like Fuchsia, the receiver ignores a
 * payload on a type that needs none, and judges a Pause's payload itself
 * (usb_vsock_pkt_pause()), so that one odd packet costs only itself.
 *
 * Return: %USB_VSOCK_PKT_OK, or why the header is bad.
 */
enum usb_vsock_verdict usb_vsock_hdr_check(const struct usb_vsock_hdr *hdr,
					   size_t max_payload,
					   struct usb_vsock_pkt *pkt)
{
	u32 len;

	if (memcmp(hdr->magic, USB_VSOCK_MAGIC, USB_VSOCK_MAGIC_LEN))
		return USB_VSOCK_PKT_BAD_MAGIC;
	if (!usb_vsock_type_valid(hdr->type))
		return USB_VSOCK_PKT_BAD_TYPE;
	len = le32_to_cpu(hdr->payload_len);
	if (len > max_payload)
		return USB_VSOCK_PKT_TOO_LONG;

	pkt->type = hdr->type;
	pkt->addr.device_cid = le32_to_cpu(hdr->device_cid);
	pkt->addr.host_cid = le32_to_cpu(hdr->host_cid);
	pkt->addr.device_port = le32_to_cpu(hdr->device_port);
	pkt->addr.host_port = le32_to_cpu(hdr->host_port);
	pkt->len = len;
	pkt->payload = NULL;
	return USB_VSOCK_PKT_OK;
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_hdr_check);

/**
 * usb_vsock_pkt_pause() - what a Pause packet asks for
 * @pkt: a well-formed Pause packet, payload in place
 *
 * Return: %USB_VSOCK_PAUSE or %USB_VSOCK_UNPAUSE, or -EINVAL when the
 * payload is not one byte holding one of them.
 */
int usb_vsock_pkt_pause(const struct usb_vsock_pkt *pkt)
{
	if (pkt->len != 1 || (pkt->payload[0] != USB_VSOCK_PAUSE &&
			      pkt->payload[0] != USB_VSOCK_UNPAUSE))
		return -EINVAL;
	return pkt->payload[0];
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_pkt_pause);

/**
 * usb_vsock_pkt_decode() - decode and validate the packet at the start of
 *	a buffer
 * @buf: the buffer
 * @len: bytes available at @buf
 * @max_payload: the largest payload_len to accept
 * @pkt: receives the packet; @pkt->payload points into @buf
 *
 * On success the packet occupies usb_vsock_pkt_size(@pkt->len) bytes of
 * @buf; what follows is the next packet.
 *
 * Return: %USB_VSOCK_PKT_OK, or why the packet is bad. A buffer that ends
 * inside the packet is %USB_VSOCK_PKT_TRUNCATED, unless the part that is
 * there is already bad.
 */
enum usb_vsock_verdict usb_vsock_pkt_decode(const void *buf, size_t len,
					    size_t max_payload,
					    struct usb_vsock_pkt *pkt)
{
	enum usb_vsock_verdict verdict;

	if (len < USB_VSOCK_HDR_LEN)
		return USB_VSOCK_PKT_TRUNCATED;
	verdict = usb_vsock_hdr_check(buf, max_payload, pkt);
	if (verdict != USB_VSOCK_PKT_OK)
		return verdict;
	if (usb_vsock_pkt_size(pkt->len) > len)
		return USB_VSOCK_PKT_TRUNCATED;
	pkt->payload = buf + USB_VSOCK_HDR_LEN;
	return USB_VSOCK_PKT_OK;
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_pkt_decode);
