/* SPDX-License-Identifier: GPL-2.0 */
/*
 * usbfs_host: a host side of the usb vsock bridge protocol on usbfs
 * (hostlink.c), for the protocol tests (usbfs_tests.c).
 */
#ifndef HOSTLINK_H
#define HOSTLINK_H

#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <linux/usb_vsock.h>

#include "usbfs.h"

#define HDR	USB_VSOCK_HDR_LEN
#define MTU	USB_VSOCK_MTU
#define MAXC	32
#define LISTEN_SOURCE	6000
#define LISTEN_SINK	6001
#define LISTEN_ECHO	6002
#define DATA_MS		120000

struct hq {
	uint32_t dcid;
	uint32_t hcid;
	uint32_t dport;
	uint32_t hport;
};

enum { HC_FREE, HC_CONNECTING, HC_OPEN, HC_CLOSED };

struct hconn {
	int state;
	struct hq q;
	bool incoming;
	bool got_accept;
	bool got_reset;
	bool got_finish;
	bool dev_paused;
	unsigned int pauses;
	unsigned int unpauses;
	uint8_t *rx;
	size_t rx_len;
	size_t rx_cap;
};

struct hlink {
	const struct uf_opts *o;
	struct uf_dev dev;
	struct uf_io io;
	uint8_t *carry;		/* IN bytes not yet parsed */
	size_t carry_len;
	bool dev_sync;
	struct hq dev_sync_q;
	uint8_t dev_sync_payload[MTU];
	uint32_t dev_sync_len;
	bool got_echo_reply;
	uint8_t echo_reply[MTU];
	uint32_t echo_reply_len;
	unsigned int dev_echoes;
	bool synced;
	uint32_t cid;
	int version;
	uint32_t next_port;
	struct hconn c[MAXC];
	unsigned int parse_errors;
	unsigned int in_zlps;
	unsigned int straddles;	/* packets split between URBs */
	unsigned int dev_pauses;
	unsigned int unknown;
	long long last_in_ms;
	uint64_t in_data;
	bool ignore_echo;	/* leave the device's Echo unanswered */
	int deliberate_errors;	/* protocol errors the tests provoked */
};

static inline uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static inline void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

int link_open(struct hlink *l, const struct uf_opts *o);
void link_close(struct hlink *l);
struct hconn *find_conn(struct hlink *l, const struct hq *q);
void put_hdr(uint8_t *buf, int type, const struct hq *q, uint32_t plen);
int send_pkt(struct hlink *l, int type, const struct hq *q,
	     const void *payload, uint32_t plen);
bool pump_until(struct hlink *l, long long deadline);
void pump_for(struct hlink *l, int ms);
void send_sync(struct hlink *l, uint32_t dcid, const void *payload,
	       size_t len);
bool dev_sync_within(struct hlink *l, int ms);
int sync_exchange(struct hlink *l, const void *payload, size_t len);
int handshake_begin(struct hlink *l, int version);
int handshake_finish(struct hlink *l, const char *payload);
int handshake(struct hlink *l, int version);
struct hconn *hconnect_ms(struct hlink *l, uint32_t port, int ms);
struct hconn *hconnect(struct hlink *l, uint32_t port);
int send_data(struct hlink *l, struct hconn *c, const void *buf, size_t len);
int send_count(struct hlink *l, struct hconn *c, uint64_t count);
int wait_rx(struct hlink *l, struct hconn *c, size_t len, bool finish);
void fill_random(uint8_t *buf, size_t len, uint32_t seed);
int close_conn(struct hlink *l, struct hconn *c);
int echo_check(struct hlink *l, struct hconn *c, size_t len, uint32_t seed);
int check_source(struct hconn *c, uint64_t count);
int sink_check(struct hlink *l, struct hconn *c, size_t count);
long long ctl_get(struct hlink *l, const char *key);
long long ctl_wait(struct hlink *l, const char *key, long long want);
int link_barrier(struct hlink *l);
int link_set_interface(struct hlink *l);
bool listed(const char *list, const char *name);
int run_test(struct hlink *l, int n, const char *name,
	     int (*fn)(struct hlink *l));

#endif /* HOSTLINK_H */
