// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for usb_vsock packet encoding and validation.
 */

#include <kunit/test.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/stddef.h>
#include <linux/string.h>

#include "usb_vsock/packet.h"

static const struct usb_vsock_addr test_addr = {
	.device_cid = 0x11223344,
	.host_cid = USB_VSOCK_CID_HOST,
	.device_port = 0x55667788,
	.host_port = 0x99aabbcc,
};

static void usb_vsock_test_hdr_layout(struct kunit *test)
{
	struct usb_vsock_hdr hdr;
	u8 *raw = (u8 *)&hdr;

	KUNIT_EXPECT_EQ(test, sizeof(hdr), (size_t)USB_VSOCK_HDR_LEN);
	KUNIT_EXPECT_EQ(test, offsetof(struct usb_vsock_hdr, type), (size_t)3);
	KUNIT_EXPECT_EQ(test, offsetof(struct usb_vsock_hdr, device_cid),
			(size_t)4);
	KUNIT_EXPECT_EQ(test, offsetof(struct usb_vsock_hdr, host_cid),
			(size_t)8);
	KUNIT_EXPECT_EQ(test, offsetof(struct usb_vsock_hdr, device_port),
			(size_t)12);
	KUNIT_EXPECT_EQ(test, offsetof(struct usb_vsock_hdr, host_port),
			(size_t)16);
	KUNIT_EXPECT_EQ(test, offsetof(struct usb_vsock_hdr, payload_len),
			(size_t)20);

	/* Little endian on the wire, whatever the CPU. */
	usb_vsock_hdr_init(&hdr, USB_VSOCK_DATA, &test_addr, 0x01020304);
	KUNIT_EXPECT_EQ(test, raw[0], (u8)'f');
	KUNIT_EXPECT_EQ(test, raw[1], (u8)'f');
	KUNIT_EXPECT_EQ(test, raw[2], (u8)'x');
	KUNIT_EXPECT_EQ(test, raw[3], (u8)'D');
	KUNIT_EXPECT_EQ(test, raw[4], (u8)0x44);
	KUNIT_EXPECT_EQ(test, raw[7], (u8)0x11);
	KUNIT_EXPECT_EQ(test, raw[8], (u8)USB_VSOCK_CID_HOST);
	KUNIT_EXPECT_EQ(test, raw[20], (u8)0x04);
	KUNIT_EXPECT_EQ(test, raw[23], (u8)0x01);
}

/* One good packet of each type, with a payload where the type has one. */
struct good_case {
	const char *name;
	enum usb_vsock_type type;
	u32 len;
	u8 fill;
};

static const struct good_case good_cases[] = {
	{ "sync", USB_VSOCK_SYNC, USB_VSOCK_VERSION_LEN, 's' },
	{ "echo", USB_VSOCK_ECHO, 17, 'e' },
	{ "echo-reply", USB_VSOCK_ECHO_REPLY, 17, 'r' },
	{ "connect", USB_VSOCK_CONNECT, 0, 0 },
	{ "accept", USB_VSOCK_ACCEPT, 0, 0 },
	{ "reset", USB_VSOCK_RESET, 0, 0 },
	{ "finish", USB_VSOCK_FINISH, 0, 0 },
	{ "data", USB_VSOCK_DATA, 100, 'd' },
	{ "data-empty", USB_VSOCK_DATA, 0, 0 },
	{ "data-max", USB_VSOCK_DATA, USB_VSOCK_MAX_PAYLOAD, 'm' },
	{ "echo-empty", USB_VSOCK_ECHO, 0, 0 },
	{ "pause-on", USB_VSOCK_PAUSE_PKT, 1, USB_VSOCK_PAUSE },
	{ "pause-off", USB_VSOCK_PAUSE_PKT, 1, USB_VSOCK_UNPAUSE },
};

static void good_case_desc(const struct good_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(good, good_cases, good_case_desc);

static void usb_vsock_test_roundtrip(struct kunit *test)
{
	const struct good_case *c = test->param_value;
	struct usb_vsock_pkt in = {
		.type = c->type,
		.addr = test_addr,
		.len = c->len,
	}, out;
	size_t size = usb_vsock_pkt_size(c->len);
	u8 *payload, *buf;

	payload = kunit_kmalloc(test, USB_VSOCK_MTU, GFP_KERNEL);
	buf = kunit_kzalloc(test, USB_VSOCK_MTU + 1, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, payload);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	memset(payload, c->fill, USB_VSOCK_MTU);
	in.payload = payload;

	KUNIT_EXPECT_EQ(test, usb_vsock_pkt_encode(buf, size - 1, &in), 0);
	KUNIT_ASSERT_EQ(test, usb_vsock_pkt_encode(buf, USB_VSOCK_MTU + 1, &in),
			size);
	KUNIT_ASSERT_EQ(test, usb_vsock_pkt_decode(buf, size,
						   USB_VSOCK_MAX_PAYLOAD, &out),
			USB_VSOCK_PKT_OK);
	KUNIT_EXPECT_EQ(test, out.type, c->type);
	KUNIT_EXPECT_EQ(test, out.len, c->len);
	KUNIT_EXPECT_EQ(test, out.addr.device_cid, test_addr.device_cid);
	KUNIT_EXPECT_EQ(test, out.addr.host_cid, test_addr.host_cid);
	KUNIT_EXPECT_EQ(test, out.addr.device_port, test_addr.device_port);
	KUNIT_EXPECT_EQ(test, out.addr.host_port, test_addr.host_port);
	KUNIT_EXPECT_PTR_EQ(test, out.payload,
			    (const u8 *)buf + USB_VSOCK_HDR_LEN);
	KUNIT_EXPECT_EQ(test, memcmp(out.payload, payload, c->len), 0);

	/* Trailing bytes belong to the next packet, not to this one. */
	KUNIT_EXPECT_EQ(test, usb_vsock_pkt_decode(buf, size + 1,
						   USB_VSOCK_MAX_PAYLOAD, &out),
			USB_VSOCK_PKT_OK);
	KUNIT_EXPECT_EQ(test, out.len, c->len);
}

/*
 * Bad inputs: a header with the given fields, @have payload bytes of value
 * @fill behind it, the whole cut to @cut bytes when @cut is set.
 */
struct bad_case {
	const char *name;
	const char *magic;
	u8 type;
	u32 len;
	u32 have;
	u8 fill;
	size_t cut;
	enum usb_vsock_verdict expect;
};

static const struct bad_case bad_cases[] = {
	{ "magic-last-byte", "ffy", 'D', 0, 0, 0, 0, USB_VSOCK_PKT_BAD_MAGIC },
	{ "magic-first-byte", "gfx", 'D', 0, 0, 0, 0, USB_VSOCK_PKT_BAD_MAGIC },
	{ "magic-zero", "\0\0\0", 'D', 0, 0, 0, 0, USB_VSOCK_PKT_BAD_MAGIC },
	{ "type-unknown", "ffx", 'Z', 0, 0, 0, 0, USB_VSOCK_PKT_BAD_TYPE },
	{ "type-zero", "ffx", 0, 0, 0, 0, 0, USB_VSOCK_PKT_BAD_TYPE },
	{ "type-lowercase", "ffx", 'd', 4, 4, 0, 0, USB_VSOCK_PKT_BAD_TYPE },
	{ "header-cut", "ffx", 'C', 0, 0, 0, 23, USB_VSOCK_PKT_TRUNCATED },
	{ "header-3-bytes", "ffx", 'C', 0, 0, 0, 3, USB_VSOCK_PKT_TRUNCATED },
	{ "payload-cut", "ffx", 'D', 10, 9, 'x', 0, USB_VSOCK_PKT_TRUNCATED },
	{ "payload-absent", "ffx", 'E', 1, 0, 0, 0, USB_VSOCK_PKT_TRUNCATED },
	{ "len-all-ones", "ffx", 'D', 0xffffffff, 8, 'x', 0,
	  USB_VSOCK_PKT_TOO_LONG },
	{ "len-max-plus-one", "ffx", 'D', USB_VSOCK_MAX_PAYLOAD + 1,
	  USB_VSOCK_MAX_PAYLOAD + 1, 'x', 0, USB_VSOCK_PKT_TOO_LONG },
};

static void bad_case_desc(const struct bad_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(bad, bad_cases, bad_case_desc);

static void usb_vsock_test_bad_input(struct kunit *test)
{
	const struct bad_case *c = test->param_value;
	struct usb_vsock_hdr *hdr;
	struct usb_vsock_pkt out;
	size_t size = USB_VSOCK_HDR_LEN + c->have;
	u8 *buf;

	/* Exactly @size bytes, so that KASAN sees any read past the end. */
	if (c->cut)
		size = c->cut;
	buf = kunit_kmalloc(test, USB_VSOCK_HDR_LEN + c->have, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	hdr = (struct usb_vsock_hdr *)buf;
	usb_vsock_hdr_init(hdr, c->type, &test_addr, c->len);
	memcpy(hdr->magic, c->magic, USB_VSOCK_MAGIC_LEN);
	memset(buf + USB_VSOCK_HDR_LEN, c->fill, c->have);
	if (size < USB_VSOCK_HDR_LEN + c->have) {
		u8 *cut = kunit_kmalloc(test, size ?: 1, GFP_KERNEL);

		KUNIT_ASSERT_NOT_NULL(test, cut);
		memcpy(cut, buf, size);
		buf = cut;
	}

	KUNIT_EXPECT_EQ_MSG(test, usb_vsock_pkt_decode(buf, size,
						       USB_VSOCK_MAX_PAYLOAD,
						       &out),
			    c->expect, "expected \"%s\"",
			    usb_vsock_verdict_str(c->expect));
}

/*
 * Odd payloads that Fuchsia takes in its stride: decoded whole, so that the
 * receiver can ignore the one packet instead of resynchronizing the link.
 * @pause: what usb_vsock_pkt_pause() must say of a Pause.
 */
struct odd_case {
	const char *name;
	u8 type;
	u32 len;
	u8 fill;
	int pause;
};

static const struct odd_case odd_cases[] = {
	{ "connect-payload", 'C', 1, 0, 0 },
	{ "accept-payload", 'A', 2, 0, 0 },
	{ "reset-payload", 'R', 5, 0, 0 },
	{ "finish-payload", 'F', USB_VSOCK_MAX_PAYLOAD, 'x', 0 },
	{ "pause-empty", 'X', 0, 0, -EINVAL },
	{ "pause-two-bytes", 'X', 2, 1, -EINVAL },
	{ "pause-value-2", 'X', 1, 2, -EINVAL },
	{ "pause-value-ff", 'X', 1, 0xff, -EINVAL },
	{ "pause-on", 'X', 1, USB_VSOCK_PAUSE, USB_VSOCK_PAUSE },
	{ "pause-off", 'X', 1, USB_VSOCK_UNPAUSE, USB_VSOCK_UNPAUSE },
};

static void odd_case_desc(const struct odd_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(odd, odd_cases, odd_case_desc);

static void usb_vsock_test_odd_payload(struct kunit *test)
{
	const struct odd_case *c = test->param_value;
	size_t size = usb_vsock_pkt_size(c->len);
	struct usb_vsock_pkt out;
	u8 *buf;

	/* Exactly @size bytes, so that KASAN sees any read past the end. */
	buf = kunit_kmalloc(test, size, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	usb_vsock_hdr_init((struct usb_vsock_hdr *)buf, c->type, &test_addr,
			   c->len);
	memset(buf + USB_VSOCK_HDR_LEN, c->fill, c->len);

	KUNIT_ASSERT_EQ(test, usb_vsock_pkt_decode(buf, size,
						   USB_VSOCK_MAX_PAYLOAD, &out),
			USB_VSOCK_PKT_OK);
	KUNIT_EXPECT_EQ(test, out.type, (enum usb_vsock_type)c->type);
	KUNIT_EXPECT_EQ(test, out.len, c->len);
	KUNIT_EXPECT_PTR_EQ(test, out.payload, buf + USB_VSOCK_HDR_LEN);
	if (c->type == USB_VSOCK_PAUSE_PKT)
		KUNIT_EXPECT_EQ(test, usb_vsock_pkt_pause(&out), c->pause);
}

static void usb_vsock_test_type_letters(struct kunit *test)
{
	static const char known[] = "SEeCARFDX";
	unsigned int v, n = 0;

	for (v = 0; v < 256; v++) {
		bool want = v && strchr(known, v);

		KUNIT_EXPECT_EQ_MSG(test, usb_vsock_type_valid(v), want,
				    "type byte 0x%02x", v);
		n += want;
	}
	KUNIT_EXPECT_EQ(test, n, 9U);
}

static struct kunit_case usb_vsock_packet_cases[] = {
	KUNIT_CASE(usb_vsock_test_hdr_layout),
	KUNIT_CASE(usb_vsock_test_type_letters),
	KUNIT_CASE_PARAM(usb_vsock_test_roundtrip, good_gen_params),
	KUNIT_CASE_PARAM(usb_vsock_test_bad_input, bad_gen_params),
	KUNIT_CASE_PARAM(usb_vsock_test_odd_payload, odd_gen_params),
	{}
};

static struct kunit_suite usb_vsock_packet_suite = {
	.name = "usb_vsock_packet",
	.test_cases = usb_vsock_packet_cases,
};

kunit_test_suite(usb_vsock_packet_suite);

MODULE_DESCRIPTION("KUnit tests for usb_vsock");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);
