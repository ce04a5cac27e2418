// SPDX-License-Identifier: GPL-2.0
/*
 * usb_vsock streaming parser.
 *
 * A device transfer holds whole packets, but a transfer whose length is a
 * multiple of wMaxPacketSize does not end the host's URB, so one URB may
 * hold several transfers and a URB boundary may fall inside a packet. The
 * parser hands out packets straight from the caller's buffer where it can
 * and copies only a packet that crosses a boundary, into a buffer of one
 * maximal packet: a hostile length can never make it allocate or read more.
 */

#include <linux/errno.h>
#include <linux/export.h>
#include <linux/minmax.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <kunit/visibility.h>

#include "usb_vsock/parser.h"

/**
 * usb_vsock_parser_init() - set up a parser
 * @p: the parser
 * @max_payload: the largest payload_len to accept
 * @gfp: allocation flags for the reassembly buffer
 *
 * Return: 0, or -ENOMEM.
 */
int usb_vsock_parser_init(struct usb_vsock_parser *p, size_t max_payload,
			  gfp_t gfp)
{
	memset(p, 0, sizeof(*p));
	p->buf = kmalloc(usb_vsock_pkt_size(max_payload), gfp);
	if (!p->buf)
		return -ENOMEM;
	p->max_payload = max_payload;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_parser_init);

/**
 * usb_vsock_parser_destroy() - release a parser's memory
 * @p: the parser
 */
void usb_vsock_parser_destroy(struct usb_vsock_parser *p)
{
	kfree(p->buf);
	p->buf = NULL;
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_parser_destroy);

/**
 * usb_vsock_parser_reset() - forget a held packet and a past error
 * @p: the parser
 *
 * For a link that resynchronizes: what comes next starts a new packet.
 */
void usb_vsock_parser_reset(struct usb_vsock_parser *p)
{
	p->have = 0;
	p->need = 0;
	p->error = USB_VSOCK_PKT_OK;
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_parser_reset);

static void parser_drop(struct usb_vsock_parser *p, const u8 **data,
			size_t *len)
{
	p->dropped += *len;
	*data += *len;
	*len = 0;
}

static int parser_fail(struct usb_vsock_parser *p, const u8 **data,
		       size_t *len, enum usb_vsock_verdict verdict)
{
	p->error = verdict;
	p->dropped += p->have;
	p->have = 0;
	parser_drop(p, data, len);
	return -EPROTO;
}

/* Move up to @want - p->have bytes of input into the reassembly buffer. */
static bool parser_fill(struct usb_vsock_parser *p, const u8 **data,
			size_t *len, size_t want)
{
	size_t n = min(want - p->have, *len);

	memcpy(p->buf + p->have, *data, n);
	p->have += n;
	*data += n;
	*len -= n;
	return p->have == want;
}

/*
 * A packet is complete and its header passed the check; the payload is in
 * place. A Sync must be the last packet of its transfer: the peer
 * restarted the link, so what follows it in this buffer belongs to the old
 * link and is discarded.
 */
static int parser_complete(struct usb_vsock_parser *p, const u8 **data,
			   size_t *len, struct usb_vsock_pkt *pkt,
			   const u8 *payload)
{
	pkt->payload = payload;
	if (pkt->type == USB_VSOCK_SYNC)
		parser_drop(p, data, len);
	return 1;
}

/**
 * usb_vsock_parser_next() - take the next packet from a received buffer
 * @p: the parser
 * @data: in: the unread part of the buffer; out: advanced past what was used
 * @len: in: bytes at *@data; out: bytes left
 * @pkt: receives the packet when 1 is returned
 *
 * Call it until it returns 0 or an error, then hand it the next buffer.
 * A packet split across buffers is held over and returned once complete.
 * @pkt->payload points into the caller's buffer or into the parser, and
 * stays valid until the next call or usb_vsock_parser_reset().
 *
 * A Sync discards the rest of its buffer (see parser_complete()). A bad
 * packet discards the rest of the buffer and every later one until
 * usb_vsock_parser_reset(); @p->error says why.
 *
 * Return: 1 when @pkt holds a packet, 0 when the buffer is used up,
 * -EPROTO when the stream is bad.
 */
int usb_vsock_parser_next(struct usb_vsock_parser *p, const u8 **data,
			  size_t *len, struct usb_vsock_pkt *pkt)
{
	enum usb_vsock_verdict verdict;

	if (p->error != USB_VSOCK_PKT_OK)
		return parser_fail(p, data, len, p->error);
	if (!*len)
		return 0;

	/* Fast path: a whole packet in the caller's buffer, no copy. */
	if (!p->have && *len >= USB_VSOCK_HDR_LEN) {
		verdict = usb_vsock_hdr_check((const void *)*data,
					      p->max_payload, pkt);
		if (verdict != USB_VSOCK_PKT_OK)
			return parser_fail(p, data, len, verdict);
		if (usb_vsock_pkt_size(pkt->len) <= *len) {
			const u8 *payload = *data + USB_VSOCK_HDR_LEN;

			*data += usb_vsock_pkt_size(pkt->len);
			*len -= usb_vsock_pkt_size(pkt->len);
			return parser_complete(p, data, len, pkt, payload);
		}
	}

	/* Slow path: gather the header, check it, then gather the payload. */
	if (p->have < USB_VSOCK_HDR_LEN) {
		if (!parser_fill(p, data, len, USB_VSOCK_HDR_LEN))
			return 0;
		verdict = usb_vsock_hdr_check((const void *)p->buf,
					      p->max_payload, pkt);
		if (verdict != USB_VSOCK_PKT_OK)
			return parser_fail(p, data, len, verdict);
		p->need = usb_vsock_pkt_size(pkt->len);
	}
	if (!parser_fill(p, data, len, p->need))
		return 0;

	/* The header in p->buf was checked when it came in. */
	usb_vsock_hdr_check((const void *)p->buf, p->max_payload, pkt);
	p->have = 0;
	return parser_complete(p, data, len, pkt, p->buf + USB_VSOCK_HDR_LEN);
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_parser_next);

/**
 * usb_vsock_parser_end() - the peer's transfer ended
 * @p: the parser
 *
 * Call it when a buffer came in short, which tells that the device's
 * transfer ended there. A transfer holds whole packets, so a packet still
 * held was cut short: taking the next transfer's bytes as its rest would
 * turn a good packet into garbage, so the stream is refused at once, as
 * usb_vsock_parser_next() refuses a bad header.
 *
 * Return: 0, or -EPROTO when a packet was cut short.
 */
int usb_vsock_parser_end(struct usb_vsock_parser *p)
{
	if (p->error != USB_VSOCK_PKT_OK)
		return -EPROTO;
	if (!p->have)
		return 0;
	p->error = USB_VSOCK_PKT_TRUNCATED;
	p->dropped += p->have;
	p->have = 0;
	return -EPROTO;
}
EXPORT_SYMBOL_IF_KUNIT(usb_vsock_parser_end);
