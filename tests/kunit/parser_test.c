// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for the usb_vsock streaming parser: reassembly at every split,
 * Sync handling, sticky errors, and a fuzz run against a reference decoder.
 */

#include <kunit/test.h>
#include <linux/kernel.h>
#include <linux/minmax.h>
#include <linux/prandom.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "usb_vsock/packet.h"
#include "usb_vsock/parser.h"

#define MAX_PAYLOAD	USB_VSOCK_MAX_PAYLOAD

/* A packet as seen by a test: a copy, since the parser's pointers expire. */
struct seen_pkt {
	struct usb_vsock_pkt pkt;
	u8 payload[USB_VSOCK_MTU];
};

struct seen {
	struct seen_pkt *pkts;
	unsigned int n, max;
	int last;		/* last non-packet result: 0 or -EPROTO */
};

/* The packets of the reference stream: every type but Sync, edge lengths. */
struct ref_pkt {
	enum usb_vsock_type type;
	u32 len;
};

static const struct ref_pkt ref_pkts[] = {
	{ USB_VSOCK_ECHO, 7 },
	{ USB_VSOCK_ECHO_REPLY, 7 },
	{ USB_VSOCK_CONNECT, 0 },
	{ USB_VSOCK_ACCEPT, 0 },
	{ USB_VSOCK_DATA, 1 },
	{ USB_VSOCK_DATA, 100 },
	{ USB_VSOCK_PAUSE_PKT, 1 },
	{ USB_VSOCK_DATA, MAX_PAYLOAD },
	{ USB_VSOCK_DATA, 0 },
	{ USB_VSOCK_PAUSE_PKT, 1 },
	{ USB_VSOCK_FINISH, 0 },
	{ USB_VSOCK_RESET, 0 },
	{ USB_VSOCK_ECHO, 300 },
	{ USB_VSOCK_DATA, 23 },
	{ USB_VSOCK_DATA, 24 },
	{ USB_VSOCK_DATA, 25 },
};

struct ref_stream {
	u8 *buf;
	size_t len;
	struct usb_vsock_pkt pkts[ARRAY_SIZE(ref_pkts)];
};

static u8 ref_byte(unsigned int pkt, u32 i)
{
	return pkt * 31 + i * 7 + 1;
}

static void ref_build(struct kunit *test, struct ref_stream *ref)
{
	size_t off = 0;
	unsigned int i;
	u32 j;

	ref->len = 0;
	for (i = 0; i < ARRAY_SIZE(ref_pkts); i++)
		ref->len += usb_vsock_pkt_size(ref_pkts[i].len);
	/* Exactly the stream's size, so that KASAN catches a read past it. */
	ref->buf = kunit_kmalloc(test, ref->len, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, ref->buf);

	for (i = 0; i < ARRAY_SIZE(ref_pkts); i++) {
		struct usb_vsock_pkt *p = &ref->pkts[i];
		u8 *payload = ref->buf + off + USB_VSOCK_HDR_LEN;

		p->type = ref_pkts[i].type;
		p->len = ref_pkts[i].len;
		p->addr.device_cid = 3 + i;
		p->addr.host_cid = USB_VSOCK_CID_HOST;
		p->addr.device_port = 1000 + i;
		p->addr.host_port = 2000 + i;
		for (j = 0; j < p->len; j++)
			payload[j] = ref_byte(i, j);
		if (p->type == USB_VSOCK_PAUSE_PKT)
			payload[0] = i & 1;
		p->payload = payload;
		usb_vsock_hdr_init((struct usb_vsock_hdr *)(ref->buf + off),
				   p->type, &p->addr, p->len);
		off += usb_vsock_pkt_size(p->len);
	}
}

static void seen_init(struct kunit *test, struct seen *s, unsigned int max)
{
	s->pkts = kunit_kcalloc(test, max, sizeof(*s->pkts), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, s->pkts);
	s->n = 0;
	s->max = max;
	s->last = 0;
}

/* Feed one buffer; record every packet. Returns false when full. */
static bool feed(struct usb_vsock_parser *p, struct seen *s,
		 const u8 *data, size_t len)
{
	struct usb_vsock_pkt pkt;
	int ret;

	while ((ret = usb_vsock_parser_next(p, &data, &len, &pkt)) == 1) {
		struct seen_pkt *sp;

		if (s->n == s->max)
			return false;
		sp = &s->pkts[s->n++];
		sp->pkt = pkt;
		memcpy(sp->payload, pkt.payload, pkt.len);
	}
	s->last = ret;
	return true;
}

static bool pkt_equal(const struct usb_vsock_pkt *a,
		      const struct usb_vsock_pkt *b, const u8 *b_payload)
{
	return a->type == b->type && a->len == b->len &&
	       !memcmp(&a->addr, &b->addr, sizeof(a->addr)) &&
	       !memcmp(a->payload, b_payload, a->len);
}

/* The parser saw exactly the reference stream, nothing held over. */
static void expect_ref(struct kunit *test, const struct ref_stream *ref,
		       const struct usb_vsock_parser *p, const struct seen *s,
		       const char *how)
{
	unsigned int i;

	KUNIT_EXPECT_EQ_MSG(test, s->n, (unsigned int)ARRAY_SIZE(ref_pkts),
			    "%s", how);
	KUNIT_EXPECT_EQ_MSG(test, s->last, 0, "%s", how);
	KUNIT_EXPECT_EQ_MSG(test, usb_vsock_parser_pending(p), (size_t)0,
			    "%s", how);
	for (i = 0; i < min_t(unsigned int, s->n, ARRAY_SIZE(ref_pkts)); i++)
		KUNIT_EXPECT_TRUE_MSG(test, pkt_equal(&ref->pkts[i],
						      &s->pkts[i].pkt,
						      s->pkts[i].payload),
				      "%s: packet %u differs", how, i);
}

struct parser_fixture {
	struct ref_stream ref;
	struct usb_vsock_parser parser;
	struct seen seen;
};

static int parser_test_init(struct kunit *test)
{
	struct parser_fixture *f;

	f = kunit_kzalloc(test, sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	test->priv = f;
	if (usb_vsock_parser_init(&f->parser, MAX_PAYLOAD, GFP_KERNEL))
		return -ENOMEM;
	ref_build(test, &f->ref);
	seen_init(test, &f->seen, 64);
	return 0;
}

static void parser_test_exit(struct kunit *test)
{
	struct parser_fixture *f = test->priv;

	usb_vsock_parser_destroy(&f->parser);
}

static void restart(struct parser_fixture *f)
{
	usb_vsock_parser_reset(&f->parser);
	f->seen.n = 0;
	f->seen.last = 0;
}

/* Feed the reference stream in pieces whose ends are in @cuts. */
static void feed_cuts(struct parser_fixture *f, const size_t *cuts,
		      unsigned int ncuts)
{
	size_t from = 0;
	unsigned int i;

	restart(f);
	for (i = 0; i <= ncuts; i++) {
		size_t to = i < ncuts ? cuts[i] : f->ref.len;

		feed(&f->parser, &f->seen, f->ref.buf + from, to - from);
		from = to;
	}
}

static void usb_vsock_test_parse_whole(struct kunit *test)
{
	struct parser_fixture *f = test->priv;
	unsigned int i;

	feed_cuts(f, NULL, 0);
	expect_ref(test, &f->ref, &f->parser, &f->seen, "one buffer");

	/* Whole packets are handed out in place, without a copy. */
	for (i = 0; i < f->seen.n; i++)
		KUNIT_EXPECT_TRUE(test, !f->seen.pkts[i].pkt.len ||
				  (f->seen.pkts[i].pkt.payload >= f->ref.buf &&
				   f->seen.pkts[i].pkt.payload <
				   f->ref.buf + f->ref.len));
}

static void usb_vsock_test_split_two(struct kunit *test)
{
	struct parser_fixture *f = test->priv;
	char how[32];
	size_t cut;

	for (cut = 0; cut <= f->ref.len; cut++) {
		feed_cuts(f, &cut, 1);
		snprintf(how, sizeof(how), "cut at %zu", cut);
		expect_ref(test, &f->ref, &f->parser, &f->seen, how);
		if (test->status == KUNIT_FAILURE)
			return;
	}
}

/* Three pieces: a cut everywhere, and a second one inside the next header. */
static void usb_vsock_test_split_three(struct kunit *test)
{
	struct parser_fixture *f = test->priv;
	size_t cuts[2];
	char how[48];
	size_t gap;

	for (cuts[0] = 0; cuts[0] <= f->ref.len; cuts[0]++) {
		for (gap = 1; gap <= USB_VSOCK_HDR_LEN + 1; gap += 4) {
			cuts[1] = min(cuts[0] + gap, f->ref.len);
			feed_cuts(f, cuts, 2);
			snprintf(how, sizeof(how), "cuts at %zu, %zu",
				 cuts[0], cuts[1]);
			expect_ref(test, &f->ref, &f->parser, &f->seen, how);
			if (test->status == KUNIT_FAILURE)
				return;
		}
	}
}

static void usb_vsock_test_split_fixed(struct kunit *test)
{
	struct parser_fixture *f = test->priv;
	size_t chunk, off;
	char how[32];

	for (chunk = 1; chunk <= 2 * USB_VSOCK_MTU; chunk++) {
		restart(f);
		for (off = 0; off < f->ref.len; off += chunk)
			feed(&f->parser, &f->seen, f->ref.buf + off,
			     min(chunk, f->ref.len - off));
		snprintf(how, sizeof(how), "chunks of %zu", chunk);
		expect_ref(test, &f->ref, &f->parser, &f->seen, how);
		if (test->status == KUNIT_FAILURE)
			return;
	}
}

static void usb_vsock_test_split_random(struct kunit *test)
{
	struct parser_fixture *f = test->priv;
	struct rnd_state rnd;
	unsigned int round;
	char how[32];

	prandom_seed_state(&rnd, 0x5eed0001);
	for (round = 0; round < 2000; round++) {
		size_t off = 0;

		restart(f);
		while (off < f->ref.len) {
			/* Mostly small pieces, sometimes empty or large. */
			u32 r = prandom_u32_state(&rnd);
			size_t chunk = r & 1 ? r % 40 : r % 1500;

			chunk = min(chunk, f->ref.len - off);
			feed(&f->parser, &f->seen, f->ref.buf + off, chunk);
			off += chunk;
		}
		snprintf(how, sizeof(how), "random round %u", round);
		expect_ref(test, &f->ref, &f->parser, &f->seen, how);
		if (test->status == KUNIT_FAILURE)
			return;
	}
}

/* Build [Data][Sync][Echo][Data] into @buf; returns the offset after Sync. */
static size_t build_sync_mid(u8 *buf, size_t *len)
{
	static const struct usb_vsock_addr addr = { 3, 2, 10, 20 };
	struct usb_vsock_pkt pkt = { .addr = addr };
	size_t off = 0, after_sync;

	pkt.type = USB_VSOCK_DATA;
	pkt.len = 5;
	pkt.payload = "hello";
	off += usb_vsock_pkt_encode(buf + off, 256, &pkt);
	pkt.type = USB_VSOCK_SYNC;
	pkt.len = USB_VSOCK_VERSION_LEN;
	pkt.payload = USB_VSOCK_VERSION1;
	off += usb_vsock_pkt_encode(buf + off, 256, &pkt);
	after_sync = off;
	pkt.type = USB_VSOCK_ECHO;
	pkt.len = 3;
	pkt.payload = "abc";
	off += usb_vsock_pkt_encode(buf + off, 256, &pkt);
	pkt.type = USB_VSOCK_DATA;
	pkt.len = 5;
	pkt.payload = "world";
	off += usb_vsock_pkt_encode(buf + off, 256, &pkt);
	*len = off;
	return after_sync;
}

static void usb_vsock_test_sync_ends_transfer(struct kunit *test)
{
	struct parser_fixture *f = test->priv;
	size_t len, after_sync, cut;
	u8 *buf;

	buf = kunit_kzalloc(test, 1024, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	after_sync = build_sync_mid(buf, &len);

	/* In one buffer, and with the Sync split over two buffers. */
	for (cut = 0; cut < after_sync; cut++) {
		u64 dropped = f->parser.dropped;

		restart(f);
		feed(&f->parser, &f->seen, buf, cut);
		feed(&f->parser, &f->seen, buf + cut, len - cut);
		KUNIT_ASSERT_EQ_MSG(test, f->seen.n, 2U, "cut at %zu", cut);
		KUNIT_EXPECT_EQ(test, f->seen.pkts[0].pkt.type,
				USB_VSOCK_DATA);
		KUNIT_EXPECT_EQ(test, f->seen.pkts[1].pkt.type,
				USB_VSOCK_SYNC);
		KUNIT_EXPECT_EQ(test, memcmp(f->seen.pkts[1].payload,
					     USB_VSOCK_VERSION1,
					     USB_VSOCK_VERSION_LEN), 0);
		KUNIT_EXPECT_EQ(test, f->seen.last, 0);
		KUNIT_EXPECT_EQ(test, f->parser.dropped - dropped,
				(u64)(len - after_sync));
	}

	/* The next transfer is parsed again. */
	feed(&f->parser, &f->seen, f->ref.buf, f->ref.len);
	KUNIT_EXPECT_EQ(test, f->seen.n, 2U + (unsigned int)ARRAY_SIZE(ref_pkts));
}

static void usb_vsock_test_error_sticky(struct kunit *test)
{
	struct parser_fixture *f = test->priv;
	struct usb_vsock_hdr *hdr;
	u8 *bad;

	bad = kunit_kmalloc(test, f->ref.len, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, bad);
	memcpy(bad, f->ref.buf, f->ref.len);
	/* Corrupt the magic of the third packet. */
	hdr = (struct usb_vsock_hdr *)(bad + usb_vsock_pkt_size(ref_pkts[0].len) +
				       usb_vsock_pkt_size(ref_pkts[1].len));
	hdr->magic[1] = 'X';

	restart(f);
	feed(&f->parser, &f->seen, bad, f->ref.len);
	KUNIT_EXPECT_EQ(test, f->seen.n, 2U);
	KUNIT_EXPECT_EQ(test, f->seen.last, -EPROTO);
	KUNIT_EXPECT_EQ(test, f->parser.error, USB_VSOCK_PKT_BAD_MAGIC);

	/* A good buffer after a bad one is still refused ... */
	feed(&f->parser, &f->seen, f->ref.buf, f->ref.len);
	KUNIT_EXPECT_EQ(test, f->seen.n, 2U);
	KUNIT_EXPECT_EQ(test, f->seen.last, -EPROTO);

	/* ... until the link resynchronizes. */
	restart(f);
	feed(&f->parser, &f->seen, f->ref.buf, f->ref.len);
	expect_ref(test, &f->ref, &f->parser, &f->seen, "after reset");
}

/*
 * The end of a device transfer between packets is nothing; inside one it
 * cut that packet short, and the stream is refused until a reset.
 */
static void usb_vsock_test_transfer_end(struct kunit *test)
{
	struct parser_fixture *f = test->priv;
	size_t first = usb_vsock_pkt_size(ref_pkts[0].len);

	restart(f);
	feed(&f->parser, &f->seen, f->ref.buf, first);
	KUNIT_EXPECT_EQ(test, usb_vsock_parser_end(&f->parser), 0);
	KUNIT_EXPECT_EQ(test, f->parser.error, USB_VSOCK_PKT_OK);
	KUNIT_EXPECT_EQ(test, f->seen.n, 1U);

	/* The second packet's header and a byte of its payload, then the end. */
	feed(&f->parser, &f->seen, f->ref.buf + first, USB_VSOCK_HDR_LEN + 1);
	KUNIT_EXPECT_EQ(test, f->seen.last, 0);
	KUNIT_EXPECT_EQ(test, usb_vsock_parser_end(&f->parser), -EPROTO);
	KUNIT_EXPECT_EQ(test, f->parser.error, USB_VSOCK_PKT_TRUNCATED);
	KUNIT_EXPECT_EQ(test, usb_vsock_parser_pending(&f->parser), (size_t)0);

	/* The rest of that packet does not complete it: the stream is bad. */
	feed(&f->parser, &f->seen, f->ref.buf + first + USB_VSOCK_HDR_LEN + 1,
	     f->ref.len - first - USB_VSOCK_HDR_LEN - 1);
	KUNIT_EXPECT_EQ(test, f->seen.n, 1U);
	KUNIT_EXPECT_EQ(test, f->seen.last, -EPROTO);
	KUNIT_EXPECT_EQ(test, usb_vsock_parser_end(&f->parser), -EPROTO);

	/* A header cut short counts the same. */
	restart(f);
	feed(&f->parser, &f->seen, f->ref.buf, USB_VSOCK_HDR_LEN - 1);
	KUNIT_EXPECT_EQ(test, usb_vsock_parser_end(&f->parser), -EPROTO);
	KUNIT_EXPECT_EQ(test, f->parser.error, USB_VSOCK_PKT_TRUNCATED);

	restart(f);
	feed(&f->parser, &f->seen, f->ref.buf, f->ref.len);
	KUNIT_EXPECT_EQ(test, usb_vsock_parser_end(&f->parser), 0);
	expect_ref(test, &f->ref, &f->parser, &f->seen, "after reset");
}

/* A hostile length is refused as soon as the header is in. */
static void usb_vsock_test_reject_early(struct kunit *test)
{
	struct parser_fixture *f = test->priv;
	struct usb_vsock_hdr hdr;
	unsigned int i;

	usb_vsock_hdr_init(&hdr, USB_VSOCK_DATA, NULL, 0xffffffff);
	restart(f);
	for (i = 0; i < USB_VSOCK_HDR_LEN - 1; i++) {
		feed(&f->parser, &f->seen, (u8 *)&hdr + i, 1);
		KUNIT_EXPECT_EQ(test, f->seen.last, 0);
	}
	KUNIT_EXPECT_EQ(test, usb_vsock_parser_pending(&f->parser),
			(size_t)USB_VSOCK_HDR_LEN - 1);
	feed(&f->parser, &f->seen, (u8 *)&hdr + i, 1);
	KUNIT_EXPECT_EQ(test, f->seen.last, -EPROTO);
	KUNIT_EXPECT_EQ(test, f->parser.error, USB_VSOCK_PKT_TOO_LONG);
	KUNIT_EXPECT_EQ(test, usb_vsock_parser_pending(&f->parser), (size_t)0);
	KUNIT_EXPECT_EQ(test, f->seen.n, 0U);
}

/*
 * The reference decoder: packets one after another with
 * usb_vsock_pkt_decode(), up to the end, a Sync, or a bad packet.
 * Returns the number of packets; *verdict and *rest say how it ended.
 */
static unsigned int ref_decode(const u8 *buf, size_t len, struct seen *s,
			       enum usb_vsock_verdict *verdict, size_t *rest)
{
	struct usb_vsock_pkt pkt;
	size_t off = 0;

	*verdict = USB_VSOCK_PKT_OK;
	while (off < len && s->n < s->max) {
		*verdict = usb_vsock_pkt_decode(buf + off, len - off,
						MAX_PAYLOAD, &pkt);
		if (*verdict != USB_VSOCK_PKT_OK)
			break;
		s->pkts[s->n].pkt = pkt;
		memcpy(s->pkts[s->n].payload, pkt.payload, pkt.len);
		s->n++;
		off += usb_vsock_pkt_size(pkt.len);
		if (pkt.type == USB_VSOCK_SYNC)
			break;
	}
	*rest = len - off;
	return s->n;
}

/* Random bytes, or the reference stream with a few bytes mutated. */
static size_t fuzz_input(struct rnd_state *rnd, const struct ref_stream *ref,
			 u8 *buf, size_t max)
{
	u32 mode = prandom_u32_state(rnd) % 4;
	size_t len, i, n;

	if (mode == 0) {
		len = prandom_u32_state(rnd) % max;
		prandom_bytes_state(rnd, buf, len);
		return len;
	}

	len = min(ref->len, max);
	memcpy(buf, ref->buf, len);
	n = 1 + prandom_u32_state(rnd) % 4;
	for (i = 0; i < n; i++) {
		size_t at = prandom_u32_state(rnd) % len;

		switch (mode) {
		case 1:		/* flip a byte anywhere */
			buf[at] ^= 1 + prandom_u32_state(rnd) % 255;
			break;
		case 2:		/* a header field of the first packets */
			at %= 4 * USB_VSOCK_HDR_LEN;
			buf[at] = prandom_u32_state(rnd);
			break;
		default:	/* cut the stream short */
			len = at;
			break;
		}
		if (!len)
			break;
	}
	return len;
}

static bool ended_by_sync(const struct seen *s)
{
	return s->n && s->pkts[s->n - 1].pkt.type == USB_VSOCK_SYNC;
}

static void usb_vsock_test_fuzz(struct kunit *test)
{
	struct parser_fixture *f = test->priv;
	unsigned int iter, i, accepted = 0, rejected = 0, held = 0;
	struct seen want;
	struct rnd_state rnd;
	u8 *buf;

	seen_init(test, &want, 64);
	buf = kunit_kmalloc(test, 4096, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	prandom_seed_state(&rnd, 0xf022cafe);

	for (iter = 0; iter < 20000; iter++) {
		enum usb_vsock_verdict verdict;
		size_t len, rest, off = 0;

		len = fuzz_input(&rnd, &f->ref, buf, 4096);
		want.n = 0;
		ref_decode(buf, len, &want, &verdict, &rest);

		restart(f);
		while (off < len) {
			size_t chunk = 1 + prandom_u32_state(&rnd) % 700;

			chunk = min(chunk, len - off);
			feed(&f->parser, &f->seen, buf + off, chunk);
			off += chunk;
			if (f->seen.last < 0 || ended_by_sync(&f->seen))
				break;
		}

		KUNIT_ASSERT_EQ_MSG(test, f->seen.n, want.n, "iteration %u",
				    iter);
		for (i = 0; i < want.n; i++)
			KUNIT_ASSERT_TRUE_MSG(test,
					      pkt_equal(&want.pkts[i].pkt,
							&f->seen.pkts[i].pkt,
							f->seen.pkts[i].payload),
					      "iteration %u packet %u", iter, i);

		if (verdict == USB_VSOCK_PKT_OK) {
			KUNIT_ASSERT_EQ_MSG(test, f->seen.last, 0,
					    "iteration %u", iter);
			accepted++;
		} else if (verdict == USB_VSOCK_PKT_TRUNCATED) {
			/* The stream just stops early: held, not refused. */
			KUNIT_ASSERT_EQ_MSG(test, f->seen.last, 0,
					    "iteration %u", iter);
			KUNIT_ASSERT_EQ_MSG(test,
					    usb_vsock_parser_pending(&f->parser),
					    rest, "iteration %u", iter);
			held++;
		} else {
			KUNIT_ASSERT_EQ_MSG(test, f->seen.last, -EPROTO,
					    "iteration %u", iter);
			KUNIT_ASSERT_EQ_MSG(test, f->parser.error, verdict,
					    "iteration %u", iter);
			rejected++;
		}
	}
	kunit_info(test, "fuzz: %u accepted, %u held, %u rejected\n",
		   accepted, held, rejected);
	/* The generator must exercise all three outcomes. */
	KUNIT_EXPECT_GT(test, accepted, 100U);
	KUNIT_EXPECT_GT(test, held, 100U);
	KUNIT_EXPECT_GT(test, rejected, 100U);
}

static struct kunit_case usb_vsock_parser_cases[] = {
	KUNIT_CASE(usb_vsock_test_parse_whole),
	KUNIT_CASE(usb_vsock_test_split_two),
	KUNIT_CASE_SLOW(usb_vsock_test_split_three),
	KUNIT_CASE(usb_vsock_test_split_fixed),
	KUNIT_CASE(usb_vsock_test_split_random),
	KUNIT_CASE(usb_vsock_test_sync_ends_transfer),
	KUNIT_CASE(usb_vsock_test_error_sticky),
	KUNIT_CASE(usb_vsock_test_transfer_end),
	KUNIT_CASE(usb_vsock_test_reject_early),
	KUNIT_CASE_SLOW(usb_vsock_test_fuzz),
	{}
};

static struct kunit_suite usb_vsock_parser_suite = {
	.name = "usb_vsock_parser",
	.init = parser_test_init,
	.exit = parser_test_exit,
	.test_cases = usb_vsock_parser_cases,
};

kunit_test_suite(usb_vsock_parser_suite);
