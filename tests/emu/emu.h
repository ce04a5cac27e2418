/* SPDX-License-Identifier: GPL-2.0 */
/*
 * usb_vsock_emu: internal interfaces. See usb_vsock_emu.c for what the
 * program does and how to drive it.
 */
#ifndef USB_VSOCK_EMU_H
#define USB_VSOCK_EMU_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <linux/usb_vsock.h>

/*
 * The kernel's names for these attributes (checkpatch asks for them);
 * userspace has no compiler_attributes.h.
 */
#define EMU_ATTRIBUTE __attribute__
#ifndef __packed
#define __packed EMU_ATTRIBUTE((__packed__))
#endif
#ifndef __printf
#define __printf(a, b) EMU_ATTRIBUTE((__format__(__printf__, a, b)))
#endif

/* The services a connection can run; also indexes emu_opts.port[]. */
enum emu_svc {
	SVC_NONE,
	SVC_ECHO,
	SVC_SINK,
	SVC_SOURCE,
	SVC_REFUSE,
	SVC_SLOW_SINK,
	SVC_SILENT,
	SVC_COUNT,
};

/* What the hostile device sends (hostile.c). */
enum hostile_mode {
	HM_NONE,
	HM_RANDOM,
	HM_MUTATE,
	HM_MAGIC,
	HM_LENGTH,
	HM_TYPE,
	HM_SYNC,
	HM_CONNECT,
	HM_DATA,
	HM_PAUSE,
	HM_ECHO,
	HM_LENGTHS,
	HM_MIX,
	HM_COUNT,
};

/*
 * A wait of the writer with all IN writes queued and none completing that
 * counts in in_stalls: far longer than the host takes to read a transfer
 * that it wants, however slow the emulated bus.
 */
#define IN_STALL_MS	500

/* The longest hostile IN transfer; the writer's buffers are this big. */
#define HOSTILE_MAX	2048

/* Where the device is in the sync handshake. */
enum link_state {
	LS_WAIT_SYNC,	/* waiting for the host's Sync (also after an error) */
	LS_ECHO,	/* sending Echo probes, waiting for the EchoReply */
	LS_WAIT_FINAL,	/* sent our Sync, waiting for the host's final Sync */
	LS_SYNCED,	/* connections may run */
	LS_GAVE_UP,	/* --generation: dead until the function is re-created */
};

/*
 * --generation: the Fuchsia device generation modelled (link.c, gen_rx()).
 * GEN_DEFAULT is the emulator's own model (no --generation given).
 */
enum emu_gen {
	GEN_DEFAULT,
	GEN_V0,		/* old mist-os: vsock:0 to anything, Echo probes */
	GEN_V2_ECHO,	/* misttech/fuchsia: Echo probes, then negotiate */
	GEN_V2,		/* XSLabs/fuchsia: no probes, reset Sync, ZLP if short */
	GEN_COUNT,
};

enum conn_state {
	CS_CONNECTING,	/* we sent Connect, waiting for Accept or Reset */
	CS_OPEN,
	CS_FIN_SENT,	/* we sent Finish, waiting for the host's Reset */
	CS_DEAD,	/* out of the table, freed with its last reference */
};

struct emu_quad {
	__u32 dev_cid;
	__u32 host_cid;
	__u32 dev_port;
	__u32 host_port;
};

/* A byte queue: data[head .. head + len) is queued. */
struct emu_buf {
	__u8 *data;
	size_t head;
	size_t len;
	size_t size;
};

struct emu_conn {
	struct emu_conn *next;
	struct emu_conn *prev;
	struct emu_quad q;
	enum conn_state state;
	enum emu_svc svc;
	bool outgoing;
	bool have_count;	/* outgoing source: count given by command */
	__u64 count;
	unsigned int id;
	int refs;		/* the table, the service thread, waiters */
	struct emu_buf rx;	/* host -> service */
	struct emu_buf tx;	/* service -> host */
	bool host_paused;	/* the host sent Pause(1) */
	bool we_paused;		/* we sent Pause(1) */
	bool held;		/* the host was held back (Pause or v0 stall) */
	bool finish_req;	/* the service is done: Finish after tx */
	int connect_result;	/* outgoing: 0 pending, 1 accepted, -1 reset */
	pthread_cond_t cond;	/* any change of the above */
};

/* A queued non-data packet. */
struct emu_pkt {
	struct emu_pkt *next;
	bool own_transfer;	/* must end its transfer (Sync, Echo probe) */
	size_t len;
	__u8 data[];
};

/*
 * Counters, shown by the "stats" and "get" commands under these names:
 * rx_* / tx_*: transfers, bytes, ZLPs, failed AIO, packets per type and
 * Data payload bytes, host -> device (rx) and device -> host (tx);
 * proto_errors: protocol errors outside the wait for a Sync, each also in
 * one of err_*; garbage_waiting: unparsable transfers while waiting for a
 * Sync; ignored_pkts: packets that the handshake state ignores;
 * syncs: handshakes completed; resyncs: Syncs on a synced link;
 * link_downs: the function disabled; refused: Connects reset; unanswered:
 * Connects to the silent port, never answered;
 * unknown_data: Data packets for no connection; v0_stalls: times the
 * reader waited for a slow service on a v0 link; rx_buf_max: most bytes
 * queued for one service; in_stalls: times the host left every one of
 * the --in-reqs IN writes queued, none completing, for IN_STALL_MS or
 * longer (a host that stopped reading the link, as a v0 host must for a
 * full socket), counted when the wait reaches IN_STALL_MS;
 * in_stall_max_ms: the longest such wait so far, in ms (aio.c);
 * protocol violations by the host besides proto_errors (link.c, conn.c):
 * dup_connect: a Connect for a quad that has a connection; bad_pause: a
 * Pause on a v0 link, or one whose payload is not one byte 0 or 1;
 * stray_pkts: Accept, Reset, Finish or Pause for no connection (Accept
 * also for one we did not connect, Pause also for one we have not yet
 * seen accepted); data_after_finish: Data after our
 * Finish; overflow_resets: connections reset because the host ignored
 * our Pause; hostile_transfers: transfers of the hostile
 * device (hostile.c); hostile_connects: Connects among them;
 * forged_sync_restarts: times the host answered a Sync the hostile device
 * forged and the device restarted the link (link.c, final_sync());
 * hostile_invalid, hostile_pkts: pieces of hostile transfers the host must
 * reject as malformed, and well-formed packets in them it must take, as
 * far as known (hostile.c, host_view).
 * fn_enables: FUNCTIONFS_ENABLE events seen (gadget.c); host_syncs: Syncs
 * read from the host, in any state (--generation only, link.c gen_rx());
 * reset_syncs: reset Syncs sent (--generation v2); dropped_syncs: host Syncs
 * dropped by "drop-syncs"; slow_dropped: OUT transfers held during
 * --slow-start and dropped by a function re-creation (aio.c).
 * Violations by the host in --generation modes (link.c): gave_up: a final
 * Sync whose payload was not the device's reply (the device gave up);
 * bad_final_cid: a final Sync whose device_cid (adopted anyway) is <= 2 or
 * 0xffffffff; long_sync: a host Sync payload of other than 7 bytes sent to
 * a v0 device.
 */
enum emu_stat {
	ST_rx_transfers,
	ST_rx_bytes,
	ST_rx_zlp,
	ST_rx_errors,
	ST_tx_transfers,
	ST_tx_bytes,
	ST_tx_zlp,
	ST_tx_errors,
	ST_rx_sync,
	ST_rx_echo,
	ST_rx_echo_reply,
	ST_rx_connect,
	ST_rx_accept,
	ST_rx_reset,
	ST_rx_finish,
	ST_rx_data,
	ST_rx_pause,
	ST_tx_sync,
	ST_tx_echo,
	ST_tx_echo_reply,
	ST_tx_connect,
	ST_tx_accept,
	ST_tx_reset,
	ST_tx_finish,
	ST_tx_data,
	ST_tx_pause,
	ST_rx_data_bytes,
	ST_tx_data_bytes,
	ST_proto_errors,
	ST_err_split,
	ST_err_magic,
	ST_err_type,
	ST_err_version,
	ST_err_sync_not_last,
	ST_garbage_waiting,
	ST_ignored_pkts,
	ST_syncs,
	ST_resyncs,
	ST_handshake_restarts,
	ST_echo_timeouts,
	ST_link_downs,
	ST_conns_opened,
	ST_conns_closed,
	ST_refused,
	ST_conn_failed,
	ST_unanswered,
	ST_bad_addr_connect,
	ST_dup_connect,
	ST_unknown_data,
	ST_unknown_data_bytes,
	ST_control_data_bytes,
	ST_data_after_finish,
	ST_stray_pkts,
	ST_host_finishes,
	ST_host_resets,
	ST_connect_out,
	ST_connect_out_accepted,
	ST_connect_out_refused,
	ST_pause_sent,
	ST_unpause_sent,
	ST_paused_by_host,
	ST_unpaused_by_host,
	ST_bad_pause,
	ST_v0_stalls,
	ST_overflow_resets,
	ST_rx_buf_max,
	ST_in_stalls,
	ST_in_stall_max_ms,
	ST_svc_done,
	ST_raw_pattern_errors,
	ST_hostile_transfers,
	ST_hostile_connects,
	ST_forged_sync_restarts,
	ST_hostile_invalid,
	ST_hostile_pkts,
	ST_fn_enables,
	ST_host_syncs,
	ST_reset_syncs,
	ST_gave_up,
	ST_bad_final_cid,
	ST_long_sync,
	ST_dropped_syncs,
	ST_slow_dropped,
	ST_COUNT
};

struct emu_opts {
	const char *name;
	const char *udc;
	const char *mount;
	const char *serial;
	const char *ctl_path;
	unsigned int pid;
	__u32 cid;
	int version;
	bool no_zlp;
	bool raw;
	bool mute;		/* never answer a Sync: a device stuck mid-handshake */
	__u32 port[SVC_COUNT];
	unsigned int slow_rate;
	size_t rx_buf;
	size_t tx_buf;
	int echo_probes;
	int out_reqs;
	int in_reqs;
	size_t raw_size;
	int verbose;
	enum emu_gen generation;
	bool cid_set;		/* --cid given */
	unsigned int slow_start;	/* s the service starts late */
	bool remote_wakeup;	/* --remote-wakeup */
};

struct emu {
	struct emu_opts o;
	pthread_mutex_t lock;	/* everything below but stats */
	pthread_cond_t cond;	/* link state, enabled, conns, quit */
	bool stop;		/* threads exit */
	bool quit;		/* a "quit" command arrived */

	/* The gadget (gadget.c). */
	char gadget_dir[256];
	char func_dir[300];
	char link_path[300];
	char mount_dir[256];
	bool made_mount_dir;
	bool mounted;
	int ep0;
	int ep_in;
	int ep_out;
	bool bound;
	bool enabled;
	bool hold_out;		/* "hold-out 1": no reads on the OUT endpoint */
	bool ignore_pause;	/* "ignore-pause 1": Pause(1) has no effect */
	unsigned int maxp;	/* bulk wMaxPacketSize at the current speed */

	/* The link (link.c). */
	enum link_state ls;
	int agreed;		/* protocol version of the link */
	__u32 want_cid;		/* CID the next Sync asks for */
	__u32 cid;		/* CID assigned by the host */
	unsigned int sync_count;
	unsigned long link_gen;	/* bumped whenever queued output is void */
	__u8 magic[USB_VSOCK_MTU];	/* payload of the host's Sync */
	size_t magic_len;
	int probes_left;
	long long probe_deadline;	/* ms, monotonic */
	struct emu_pkt *ctl_head;
	struct emu_pkt *ctl_tail;
	int work_efd;		/* eventfd: the writer has work */

	/* Connections (conn.c). */
	struct emu_conn *conns;	/* circular list head (dummy) */
	unsigned int nconns;
	unsigned int next_conn_id;
	__u32 next_local_port;

	/* Raw mode. */
	__u64 raw_rx_off;
	__u64 raw_tx_off;

	/* The hostile device (hostile.c). */
	enum hostile_mode hostile;
	__u64 hostile_left;
	__u64 hostile_seq;
	__u64 hostile_rng;
	__u32 hostile_port;
	bool hostile_yield;
	/* When the last forged Sync went out (now_ms()), or 0. */
	long long forged_sync_ms;

	/* --generation and --slow-start (link.c, aio.c, gadget.c). */
	long long svc_start_ms;	/* the service runs from then on */
	unsigned long fn_gen;	/* bumped by FUNCTIONFS_ENABLE and _DISABLE */
	unsigned int drop_syncs;	/* "drop-syncs": host Syncs to drop */
	bool reset_sent;	/* v2: a reset Sync went out in this wait */
	__u8 reply[USB_VSOCK_MTU];	/* our Sync reply, header included */
	size_t reply_len;
	__u8 want_final[USB_VSOCK_MTU];	/* the final Sync payload we take */
	size_t want_final_len;

	__u64 stats[ST_COUNT];
};

extern struct emu emu;
extern const char *const emu_stat_names[ST_COUNT];

static inline void stat_add(enum emu_stat s, __u64 v)
{
	__atomic_add_fetch(&emu.stats[s], v, __ATOMIC_RELAXED);
}

static inline void stat_inc(enum emu_stat s)
{
	stat_add(s, 1);
}

static inline void stat_max(enum emu_stat s, __u64 v)
{
	__u64 cur = __atomic_load_n(&emu.stats[s], __ATOMIC_RELAXED);

	while (v > cur &&
	       !__atomic_compare_exchange_n(&emu.stats[s], &cur, v, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/* usb_vsock_emu.c */
__printf(1, 2) void emu_log(const char *fmt, ...);
__printf(1, 2) void emu_dbg(const char *fmt, ...);
long long now_ms(void);
void cond_wait_ms(pthread_cond_t *cond, long long ms);
const char *svc_name(enum emu_svc svc);

/* ctl.c */
int ctl_listen(void);
void *ctl_thread(void *arg);
int ctl_client(int argc, char **argv);

/* gadget.c */
int gadget_setup(void);
void gadget_teardown(void);
int gadget_bind(void);
int gadget_unbind(void);
int gadget_halt_out(void);
void *ep0_thread(void *arg);

/* aio.c */
void *reader_thread(void *arg);
void *writer_thread(void *arg);
bool in_transfer_ends(size_t len);

/* link.c */
void link_rx(const __u8 *buf, size_t len);
void raw_rx(const __u8 *buf, size_t len);
void echo_step(bool timed_out);
size_t build_transfer(__u8 *out);
void emu_kick(void);
void link_down(const char *why);
int link_restart(void);
void queue_pkt(int type, const struct emu_quad *q, const void *payload,
	       __u32 plen, bool own_transfer);
const char *link_state_name(enum link_state ls);
const char *gen_name(enum emu_gen g);
bool svc_waiting(void);
void link_recreated_locked(void);
int link_reset_sync(void);
int link_give_up(void);
int link_client_reconnect(void);

/* hostile.c */
const char *hostile_mode_name(enum hostile_mode m);
int hostile_start(const char *mode, __u64 count, __u32 port);
bool hostile_transfer(__u8 *out, size_t *len);

/* conn.c */
void conns_init(void);
struct emu_conn *conn_find(const struct emu_quad *q);
struct emu_conn *conn_new(const struct emu_quad *q, enum emu_svc svc,
			  bool outgoing);
void conn_get(struct emu_conn *c);
void conn_put(struct emu_conn *c);
void conn_kill(struct emu_conn *c);
void conns_kill_all(void);
int conn_start(struct emu_conn *c);
void conn_deliver(struct emu_conn *c, const __u8 *data, size_t len);
size_t conn_fill_data(struct emu_conn *c, __u8 *out, size_t space);
enum emu_svc svc_for_port(__u32 port);
int buf_append(struct emu_buf *b, const void *data, size_t len);
void buf_consume(struct emu_buf *b, void *out, size_t len);
void buf_free(struct emu_buf *b);

#endif /* USB_VSOCK_EMU_H */
