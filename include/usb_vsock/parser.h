/* SPDX-License-Identifier: GPL-2.0 */
/*
 * usb_vsock streaming parser: turns received bulk buffers back into packets.
 */
#ifndef _USB_VSOCK_PARSER_H
#define _USB_VSOCK_PARSER_H

#include <linux/gfp.h>
#include <linux/types.h>

#include "usb_vsock/packet.h"

/**
 * struct usb_vsock_parser - reassembly state of one receive stream
 * @buf: holds a packet that crosses a buffer boundary; one maximal packet
 * @max_payload: the largest payload_len accepted
 * @have: bytes of the held packet in @buf
 * @need: bytes the held packet has in all, once its header is in @buf
 * @error: why the stream went bad; sticky until usb_vsock_parser_reset()
 * @dropped: bytes thrown away, after a bad packet or behind a Sync
 *
 * Not locked: one receive path owns it.
 */
struct usb_vsock_parser {
	u8 *buf;
	size_t max_payload;
	size_t have;
	size_t need;
	enum usb_vsock_verdict error;
	u64 dropped;
};

int usb_vsock_parser_init(struct usb_vsock_parser *p, size_t max_payload,
			  gfp_t gfp);
void usb_vsock_parser_destroy(struct usb_vsock_parser *p);
void usb_vsock_parser_reset(struct usb_vsock_parser *p);
int usb_vsock_parser_next(struct usb_vsock_parser *p, const u8 **data,
			  size_t *len, struct usb_vsock_pkt *pkt);
int usb_vsock_parser_end(struct usb_vsock_parser *p);

/**
 * usb_vsock_parser_pending() - bytes of an incomplete packet held over
 * @p: the parser
 *
 * Return: how many bytes of a packet wait for the rest of it.
 */
static inline size_t usb_vsock_parser_pending(const struct usb_vsock_parser *p)
{
	return p->have;
}

#endif /* _USB_VSOCK_PARSER_H */
