/* SPDX-License-Identifier: GPL-2.0 */
/*
 * usb_vsock link: one bridged USB interface, its URBs, its handshake and
 * the connections that run over it.
 */
#ifndef _USB_VSOCK_LINK_H
#define _USB_VSOCK_LINK_H

#include <linux/atomic.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/ratelimit.h>
#include <linux/spinlock.h>
#include <linux/usb.h>
#include <linux/workqueue.h>

#include "usb_vsock/builder.h"
#include "usb_vsock/packet.h"
#include "usb_vsock/parser.h"

/**
 * enum usb_vsock_state - where a link is in its life
 * @USB_VSOCK_SYNCING: the host sent Sync and waits for the device's
 * @USB_VSOCK_UP: synchronized; the device has a CID and connections run
 * @USB_VSOCK_GONE: unplugged or unbound; nothing runs any more
 */
enum usb_vsock_state {
	USB_VSOCK_SYNCING,
	USB_VSOCK_UP,
	USB_VSOCK_GONE,
};

/**
 * struct usb_vsock_stats - counters shown in sysfs
 * @rx_packets: packets received and accepted
 * @rx_bytes: Data payload bytes received
 * @tx_bytes: Data payload bytes sent
 * @rx_errors: malformed packets and failed IN transfers
 * @rx_dropped: well-formed packets that had nowhere to go
 * @tx_errors: failed OUT transfers
 * @tx_dropped: replies dropped because too many were waiting
 * @resyncs: times the link synchronized after its first handshake
 * @syncs: handshakes completed, the first one included
 * @dev_resets: times the device was reset to revive it
 * @restarts_paced: restarts the device caused that waited for the pace
 * @rx_queued: Data payload bytes received and waiting in sockets
 * @rx_queued_max: the most @rx_queued has been
 * @rx_overruns: connections reset for holding more than their limit
 * @orphans: closed sockets waiting for the device to end their connection
 */
struct usb_vsock_stats {
	atomic64_t rx_packets;
	atomic64_t rx_bytes;
	atomic64_t tx_bytes;
	atomic64_t rx_errors;
	atomic64_t rx_dropped;
	atomic64_t tx_errors;
	atomic64_t tx_dropped;
	atomic64_t resyncs;
	atomic64_t syncs;
	atomic64_t dev_resets;
	atomic64_t restarts_paced;
	atomic64_t rx_queued;
	atomic64_t rx_queued_max;
	atomic64_t rx_overruns;
	atomic64_t orphans;
};

/* Bits of usb_vsock_link.flags. */
#define USB_VSOCK_TX_BLOCKED	0	/* a writer found no room */
#define USB_VSOCK_RESYNC	1	/* a transfer failed: resynchronize */
#define USB_VSOCK_OUT_HALT	2	/* the OUT endpoint stalled */
#define USB_VSOCK_TX_RECHECK	3	/* an OUT transfer ended while blocked */
#define USB_VSOCK_TX_WEDGED	4	/* the device leaves the link unread */
#define USB_VSOCK_RESTART	5	/* the device was reset: start over */
#define USB_VSOCK_TX_LOST	6	/* an OUT transfer was cut short */

/**
 * struct usb_vsock_link - one bridged USB interface
 * @kref: the interface holds one reference, each attached connection one
 * @udev: the USB device, referenced
 * @intf: the bound interface
 * @in_pipe: bulk IN pipe
 * @out_pipe: bulk OUT pipe
 * @in_maxp: wMaxPacketSize of the IN endpoint: the size of each IN URB
 * @out_maxp: wMaxPacketSize of the OUT endpoint
 * @mutex: serializes handshakes, resyncs and teardown
 * @state: &enum usb_vsock_state; written under @mutex and @conns_lock
 * @cid: the device's CID while it has one, else 0
 * @version: the protocol version agreed in the handshake
 * @sync_pending: a host Sync is out that the device may still answer
 * @sync_hurried: the device's reset Sync shortened the wait for an answer
 * @sync_tries: device resets in the running handshake
 * @reset_at: when the last device reset was asked for
 * @sync_work: resets the device when it leaves a Sync unanswered, and
 *	ends the wait of a restart held back by the pace
 * @sync_due: when @sync_work is due (usb_vsock_sync_arm())
 * @restarts: restarts the device caused since @restarts_at
 * @restarts_at: when the pace's window began
 * @sync_held: the device's last restart waits for the window to end
 * @held_version: the version of the answer that restart waits to
 *	confirm, or -1 for a restart that waits for a host Sync
 * @held_cid: the CID that answer asks for
 * @log_rs: paces the log lines the device can trigger (usb_vsock_link_log())
 * @uevent_at: when the last link-up uevent went out; under @mutex
 * @uevent_work: sends a link-up uevent held back by the pace (sysfs.c)
 * @ctrl_lock: protects @ctrlq and @ctrlq_len; process context only
 * @ctrlq: control packets waiting for room in the builder
 * @ctrlq_len: entries in @ctrlq
 * @lock: protects @out_free, @n_free, @rx_done, @rx_idle, @disconnected
 *	and @suspended; taken in URB completions
 * @disconnected: the interface is going away; resubmit nothing
 * @suspended: the device is suspended; submit nothing until it resumes
 * @tx: the transmit builder
 * @tx_thread: takes transfers from @tx and submits them
 * @out_urbs: the OUT URBs
 * @out_free: OUT URBs not in flight
 * @n_out: number of OUT URBs
 * @n_free: entries in @out_free
 * @tx_done_at: when an OUT transfer last completed, or the first one went
 *	out on an idle link
 * @flags: USB_VSOCK_TX_BLOCKED, USB_VSOCK_RESYNC, USB_VSOCK_OUT_HALT,
 *	USB_VSOCK_TX_RECHECK, USB_VSOCK_TX_WEDGED, USB_VSOCK_RESTART,
 *	USB_VSOCK_TX_LOST
 * @rx: the receive parser; only @rx_work touches it
 * @in_urbs: the IN URBs
 * @n_in: number of IN URBs
 * @rx_done: completed IN URBs, in completion order, for @rx_work
 * @rx_idle: IN URBs held back while a connection is over its limit
 * @rx_stalls: connections over their limit that stop reception (protocol
 *	version 0 only, for rx_stall_ms at most)
 * @rx_throttled: an IN transfer failed: IN URBs wait in @rx_idle until
 *	@rx_throttle_end; only @rx_work touches the two
 * @rx_throttle_end: see @rx_throttled
 * @rx_work: parses completed IN URBs and dispatches the packets; delayed
 *	only to retry IN URBs that could not be submitted
 * @conns_lock: protects @conns, @pm_held, @accepts, @n_accepts and the
 *	connections' inboxes
 * @conns: connections attached to this link
 * @pm_held: @conns holds a runtime PM reference (usb_vsock_link_pm_get())
 * @accepts: the device's Connects waiting for their listeners (transport.c)
 * @n_accepts: entries in @accepts
 * @stats: counters
 */
struct usb_vsock_link {
	struct kref kref;
	struct usb_device *udev;
	struct usb_interface *intf;
	unsigned int in_pipe;
	unsigned int out_pipe;
	size_t in_maxp;
	size_t out_maxp;

	struct mutex mutex;	/* see above */
	enum usb_vsock_state state;
	u32 cid;
	int version;
	bool sync_pending;
	bool sync_hurried;
	unsigned int sync_tries;
	unsigned long reset_at;
	struct delayed_work sync_work;
	unsigned long sync_due;
	unsigned int restarts;
	unsigned long restarts_at;
	bool sync_held;
	int held_version;
	u32 held_cid;
	struct ratelimit_state log_rs;
	unsigned long uevent_at;
	struct delayed_work uevent_work;

	spinlock_t ctrl_lock;	/* see above */
	struct list_head ctrlq;
	unsigned int ctrlq_len;
	spinlock_t lock;	/* see above */
	bool disconnected;
	bool suspended;

	struct usb_vsock_builder tx;
	struct task_struct *tx_thread;
	struct urb **out_urbs;
	struct urb **out_free;
	unsigned int n_out;
	unsigned int n_free;
	unsigned long tx_done_at;
	unsigned long flags;

	struct usb_vsock_parser rx;
	struct urb **in_urbs;
	unsigned int n_in;
	struct list_head rx_done;
	struct list_head rx_idle;
	atomic_t rx_stalls;
	bool rx_throttled;
	unsigned long rx_throttle_end;
	struct delayed_work rx_work;

	spinlock_t conns_lock;	/* see above */
	struct list_head conns;
	bool pm_held;
	struct list_head accepts;
	unsigned int n_accepts;

	struct usb_vsock_stats stats;
};

/*
 * A log line that the device can trigger: paced per link, so that one
 * device's storm neither floods the log nor silences another's lines.
 */
#define usb_vsock_link_log(link, dev_fn, fmt, ...)			\
do {									\
	struct usb_vsock_link *__log_link = (link);			\
									\
	if (__ratelimit(&__log_link->log_rs))				\
		dev_fn(&__log_link->intf->dev, fmt, ##__VA_ARGS__);	\
} while (0)

/* Module parameters (main.c). */
extern unsigned int usb_vsock_tx_size;
extern unsigned int usb_vsock_tx_urbs;
extern unsigned int usb_vsock_rx_urbs;
extern unsigned int usb_vsock_rcvbuf_max;
extern unsigned int usb_vsock_rx_link_max;
extern unsigned int usb_vsock_rx_stall_ms;
extern unsigned int usb_vsock_max_orphans;

/* The least a connection may hold unread, whatever its buffer size. */
#define USB_VSOCK_RCVBUF_MIN	(16 * 1024)

/* link.c */
struct usb_vsock_link *usb_vsock_link_find(u32 cid);
void usb_vsock_link_init(struct usb_vsock_link *link);
void usb_vsock_link_start(struct usb_vsock_link *link);
void usb_vsock_link_stop(struct usb_vsock_link *link);
void usb_vsock_link_resync(struct usb_vsock_link *link, const char *why);
void usb_vsock_link_restart(struct usb_vsock_link *link);
void usb_vsock_link_recv(struct usb_vsock_link *link,
			 const struct usb_vsock_pkt *pkt);
/**
 * enum usb_vsock_ctrl_prio - how a control packet waits for room
 * @USB_VSOCK_CTRL_MUST: needed by a connection (Connect, Accept, Finish,
 *	Reset, Pause) or the link (Sync): always queued, so bounded by the
 *	sockets there are, and never refused for want of memory
 * @USB_VSOCK_CTRL_REPLY: a reply the device provoked: dropped while many
 *	packets wait, so that a device cannot make the host queue without bound
 */
enum usb_vsock_ctrl_prio {
	USB_VSOCK_CTRL_MUST,
	USB_VSOCK_CTRL_REPLY,
};

struct usb_vsock_ctrl;

int usb_vsock_link_send(struct usb_vsock_link *link, const u32 *epoch,
			enum usb_vsock_type type,
			const struct usb_vsock_addr *addr, const void *payload,
			u32 len, enum usb_vsock_ctrl_prio prio);
int usb_vsock_link_connect(struct usb_vsock_link *link, const u32 *epoch,
			   const struct usb_vsock_addr *addr,
			   struct usb_vsock_ctrl **queued);
bool usb_vsock_link_cancel(struct usb_vsock_link *link,
			   struct usb_vsock_ctrl **queued);
void usb_vsock_ctrlq_purge(struct usb_vsock_link *link);
const char *usb_vsock_state_name(enum usb_vsock_state state);

/* usb.c */
void usb_vsock_link_get(struct usb_vsock_link *link);
void usb_vsock_link_put(struct usb_vsock_link *link);
void usb_vsock_link_kick_rx(struct usb_vsock_link *link);
void usb_vsock_link_reset_device(struct usb_vsock_link *link);
bool usb_vsock_link_pm_get(struct usb_vsock_link *link);
void usb_vsock_link_pm_put(struct usb_vsock_link *link);
void usb_vsock_tx_flush_ctrl(struct usb_vsock_link *link);
int usb_vsock_usb_register(void);
void usb_vsock_usb_deregister(void);

/* transport.c */
int usb_vsock_transport_register(void);
void usb_vsock_transport_unregister(void);
void usb_vsock_transport_recv(struct usb_vsock_link *link,
			      const struct usb_vsock_pkt *pkt);
void usb_vsock_transport_reset_link(struct usb_vsock_link *link);
unsigned long usb_vsock_transport_expire_stalls(struct usb_vsock_link *link);
void usb_vsock_transport_wake_writers(struct usb_vsock_link *link,
				      unsigned int max);

/* sysfs.c */
extern const struct attribute_group *usb_vsock_groups[];
void usb_vsock_uevent_init(struct usb_vsock_link *link);
void usb_vsock_uevent_up(struct usb_vsock_link *link);

#endif /* _USB_VSOCK_LINK_H */
