// SPDX-License-Identifier: GPL-2.0
/*
 * usb_vsock vsock transport: AF_VSOCK stream sockets over the links.
 *
 * Registered as the host-to-guest (H2G) transport: devices get CIDs above
 * 2 and the host is CID 2, so the vsock core routes connect() to a device
 * CID here. Every socket has a struct usb_vsock_conn; it is attached to a
 * link from connect() or from an accepted Connect until the wire says the
 * connection is over (Reset, Finish, a resync or an unplug).
 *
 * The socket lock protects a connection's fields; the link's conns_lock
 * protects its list of connections and their inboxes. Userspace can hold a
 * socket's lock for as long as it likes (a page fault on a FUSE mapping
 * inside sendmsg()), so the link's rx_work never takes one: it puts each
 * packet in its connection's inbox, which the socket handles with its
 * lock held, in the driver's workqueue or in the socket calls of its
 * owner (usb_vsock_conn_process()); a device's Connect waits in the link's
 * accept queue for its listener likewise. A link that resynchronizes or
 * goes away takes its connections off its list the same way, and until
 * their sockets hear of it they can put nothing on the link, which
 * belongs to a new session (epoch) by then.
 *
 * The wire has no half-close: Finish ends the whole connection, so
 * shutdown(SHUT_WR) sends Finish, and data that arrived before the
 * device's Reset stays readable.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/memcontrol.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <net/af_vsock.h>
#include <net/sock.h>

#include "usb_vsock/link.h"

/*
 * Received data is kept in buffers of this size at least: a page with its
 * skb_shared_info, so that the memory a connection holds is little more
 * than the bytes it counts.
 */
#define USB_VSOCK_RX_SKB	SKB_WITH_OVERHEAD(PAGE_SIZE)

/*
 * What a device may send after our Pause before it counts as ignoring it,
 * beside what the IN URBs in flight hold.
 */
#define USB_VSOCK_RX_SLACK	(64 * 1024)

/* How long a closed socket waits for the device to acknowledge Finish. */
#define USB_VSOCK_CLOSE_TIMEOUT	(8 * HZ)

/* Bits of usb_vsock_conn.flags */
#define USB_VSOCK_CONN_STALLED	0	/* counted in the link's rx_stalls */
#define USB_VSOCK_CONN_END	1	/* the link ended it: tell the socket */

/*
 * A socket in use by its owner is looked at again after this at first,
 * then twice as long each time, up to USB_VSOCK_BUSY_RETRY_MAX.
 */
#define USB_VSOCK_BUSY_RETRY		1
#define USB_VSOCK_BUSY_RETRY_MAX	(HZ / 10)

/*
 * The device's Connects that may wait for their listeners, per link, and
 * for one listener (within its backlog): one listener held by its owner
 * leaves room for the others.
 */
#define USB_VSOCK_ACCEPTS_MAX		256
#define USB_VSOCK_ACCEPTS_LISTENER	64

/*
 * Runs the connections' inboxes and the device's Connects; usb_vsock_works
 * counts what is queued on it, so that unloading waits for delayed ones.
 */
static struct workqueue_struct *usb_vsock_wq;
static atomic_t usb_vsock_works = ATOMIC_INIT(0);

/**
 * struct usb_vsock_accept - a device's Connect waiting for its listener
 * @node: in the link's accepts while it waits
 * @link: the link it came on, pinned
 * @listener: the listening socket, pinned
 * @addr: the Connect's quad
 * @epoch: the link session it came in
 * @withdrawn: the device reset it before it was handled
 * @work: hands it to the listener (usb_vsock_accept_work())
 * @retry: how long @work waits for the listener's owner next
 */
struct usb_vsock_accept {
	struct list_head node;
	struct usb_vsock_link *link;
	struct sock *listener;
	struct usb_vsock_addr addr;
	u32 epoch;
	bool withdrawn;
	struct delayed_work work;
	unsigned long retry;
};

/* A Reset that answers the device's Finish (usb_vsock_inbox_add()). */
struct usb_vsock_ctrl_ack {
	struct usb_vsock_addr addr;
	u32 epoch;
	bool send;
};

/* What an skb in a connection's inbox holds, besides its payload. */
struct usb_vsock_rx_cb {
	enum usb_vsock_type type;
};

static struct usb_vsock_rx_cb *usb_vsock_rx_cb(struct sk_buff *skb)
{
	BUILD_BUG_ON(sizeof(struct usb_vsock_rx_cb) > sizeof(skb->cb));
	return (struct usb_vsock_rx_cb *)skb->cb;
}

/**
 * struct usb_vsock_conn - per-socket state
 * @vsk: the socket
 * @ref: the socket's reference (@vsk->trans), and one while @work is
 *	queued
 * @link: the link while the connection is attached, else NULL
 * @node: in @link->conns while the wire connection lasts
 * @ended: off @link->conns: the wire connection is over, though the socket
 *	may not know yet; set under the link's conns_lock
 * @epoch: the link session the connection belongs to, 0 once it ended;
 *	once the link is reset, or it is 0, nothing of the connection's goes
 *	out any more
 * @inbox: packets received for the connection, not handled yet; under the
 *	link's conns_lock
 * @inbox_mem: the memory @inbox holds (truesize)
 * @inbox_len: the Data bytes in @inbox
 * @work: handles @inbox, and the end of the connection, with the socket
 *	locked (usb_vsock_conn_process())
 * @retry: how long @work waits for the socket's owner next; only @work
 *	touches it
 * @end_err: the errno the connection ends with (USB_VSOCK_CONN_END)
 * @addr: the wire address quad
 * @rxq: received data, one skb per Data packet
 * @rx_bytes: bytes in @rxq not read yet
 * @rx_off: bytes of the first skb in @rxq already read
 * @peer_paused: the device asked us to stop sending (Pause 1)
 * @pause_lock: orders our Pause packets as @paused says: rx_work sends
 *	them as well as the socket
 * @paused: we asked the device to stop sending
 * @flags: USB_VSOCK_CONN_STALLED: reception stops for the link; cleared
 *	without the socket lock when the link ends the connection.
 *	USB_VSOCK_CONN_END: see usb_vsock_conn_end_later()
 * @stalled_at: when USB_VSOCK_CONN_STALLED was set, in jiffies
 * @finish_sent: Finish went out; a Reset now acknowledges it
 * @orphan: closed, waiting for the device's Reset; counted in the link's
 *	orphans
 * @tx_waiting: a writer found no room; usb_vsock_transport_wake_writers()
 *	wakes it
 * @connect: our Connect while it waits in the link's control queue (see
 *	usb_vsock_link_connect()); under the link's ctrl_lock
 */
struct usb_vsock_conn {
	struct vsock_sock *vsk;
	struct kref ref;
	struct usb_vsock_link *link;
	struct list_head node;
	bool ended;
	u32 epoch;
	struct sk_buff_head inbox;
	unsigned int inbox_mem;
	size_t inbox_len;
	struct delayed_work work;
	unsigned long retry;
	int end_err;
	struct usb_vsock_addr addr;
	struct sk_buff_head rxq;
	size_t rx_bytes;
	size_t rx_off;
	bool peer_paused;
	struct mutex pause_lock;	/* see above */
	bool paused;
	unsigned long flags;
	unsigned long stalled_at;
	bool finish_sent;
	bool orphan;
	bool tx_waiting;
	struct usb_vsock_ctrl *connect;
};

static struct vsock_transport usb_vsock_transport;

static struct usb_vsock_conn *usb_vsock_conn(struct vsock_sock *vsk)
{
	return vsk->trans;
}

/* A run of a queued work of the driver's is over. */
static void usb_vsock_work_done(void)
{
	if (atomic_dec_and_test(&usb_vsock_works))
		wake_up_var(&usb_vsock_works);
}

/* Queue a work of the driver's; false if it was queued already. */
static bool usb_vsock_queue(struct delayed_work *work, unsigned long delay)
{
	atomic_inc(&usb_vsock_works);
	if (queue_delayed_work(usb_vsock_wq, work, delay))
		return true;
	usb_vsock_work_done();
	return false;
}

static void usb_vsock_conn_free(struct kref *ref)
{
	kfree(container_of(ref, struct usb_vsock_conn, ref));
}

static void usb_vsock_conn_put(struct usb_vsock_conn *conn)
{
	kref_put(&conn->ref, usb_vsock_conn_free);
}

/*
 * The device knows a connection by its quad alone: a second one with the
 * same quad would take the first one's packets, and the Reset that ends
 * it would end the first. Called with link->conns_lock.
 */
static struct usb_vsock_conn *
usb_vsock_quad_conn(struct usb_vsock_link *link,
		    const struct usb_vsock_addr *addr)
{
	struct usb_vsock_conn *conn;

	list_for_each_entry(conn, &link->conns, node)
		if (conn->addr.device_cid == addr->device_cid &&
		    conn->addr.device_port == addr->device_port &&
		    conn->addr.host_port == addr->host_port)
			return conn;
	return NULL;
}

/*
 * Attach a connection to @link, in its current session; or for the
 * device's Connect @acc, only in the session it came in, and only if the
 * device has not reset it meanwhile (-ECONNRESET), which from here on it
 * would reset the connection for.
 */
static int usb_vsock_conn_attach(struct usb_vsock_conn *conn,
				 struct usb_vsock_link *link,
				 const struct usb_vsock_addr *addr,
				 struct usb_vsock_accept *acc)
{
	int ret = 0;

	if (WARN_ON_ONCE(conn->link))
		return -EISCONN;
	/* A resync flips the state under conns_lock before it resets. */
	spin_lock(&link->conns_lock);
	if (link->state != USB_VSOCK_UP ||
	    (acc && acc->epoch != usb_vsock_builder_epoch(&link->tx))) {
		ret = -ENETUNREACH;
	} else if (acc && acc->withdrawn) {
		ret = -ECONNRESET;
	} else if (usb_vsock_quad_conn(link, addr)) {
		ret = -EADDRINUSE;
	} else {
		usb_vsock_link_get(link);
		conn->link = link;
		conn->ended = false;
		conn->epoch = usb_vsock_builder_epoch(&link->tx);
		conn->addr = *addr;
		/* The device stays awake while it has connections. */
		if (!link->pm_held)
			link->pm_held = usb_vsock_link_pm_get(link);
		list_add_tail(&conn->node, &link->conns);
		if (acc)
			list_del_init(&acc->node);
	}
	spin_unlock(&link->conns_lock);
	return ret;
}

/* Called with the link's conns_lock, as the stall is set. */
static void usb_vsock_conn_unstall(struct usb_vsock_conn *conn,
				   struct usb_vsock_link *link)
{
	if (test_and_clear_bit(USB_VSOCK_CONN_STALLED, &conn->flags) &&
	    atomic_dec_and_test(&link->rx_stalls))
		usb_vsock_link_kick_rx(link);
}

/*
 * Take the connection off its link: no packet reaches it any more, and it
 * holds reception back no longer. Called with the link's conns_lock.
 * Returns false when it was off already.
 */
static bool usb_vsock_conn_unlist(struct usb_vsock_conn *conn,
				  struct usb_vsock_link *link)
{
	if (conn->ended)
		return false;
	WRITE_ONCE(conn->ended, true);
	/* Read where packets are ordered: nothing of it goes out after. */
	WRITE_ONCE(conn->epoch, 0);
	list_del_init(&conn->node);
	usb_vsock_conn_unstall(conn, link);
	if (list_empty(&link->conns) && link->pm_held) {
		link->pm_held = false;
		usb_vsock_link_pm_put(link);
	}
	return true;
}

/* The connection lets go of its link. Socket locked. */
static void usb_vsock_conn_detach(struct usb_vsock_conn *conn)
{
	struct usb_vsock_link *link = conn->link;
	struct sk_buff_head purge;

	if (!link)
		return;
	__skb_queue_head_init(&purge);
	usb_vsock_link_cancel(link, &conn->connect);
	if (conn->orphan) {
		conn->orphan = false;
		atomic64_dec(&link->stats.orphans);
	}
	/* What is left is read, or purged, without the link. */
	atomic64_sub(conn->rx_bytes, &link->stats.rx_queued);
	/* No Pause of rx_work's may go out for the quad once it is free. */
	mutex_lock(&conn->pause_lock);
	spin_lock(&link->conns_lock);
	usb_vsock_conn_unlist(conn, link);
	conn->link = NULL;
	/* Off the list, nothing more comes in: what did is moot. */
	skb_queue_splice_init(&conn->inbox, &purge);
	conn->inbox_mem = 0;
	atomic64_sub(conn->inbox_len, &link->stats.rx_queued);
	WRITE_ONCE(conn->inbox_len, 0);
	spin_unlock(&link->conns_lock);
	mutex_unlock(&conn->pause_lock);
	__skb_queue_purge(&purge);
	usb_vsock_link_put(link);
}

/*
 * The link ended the connection, or is about to: it resynchronized (a new
 * epoch) and takes its connections off next.
 */
static bool usb_vsock_conn_over(struct usb_vsock_conn *conn)
{
	return READ_ONCE(conn->epoch) !=
	       usb_vsock_builder_epoch(&conn->link->tx);
}

static int usb_vsock_conn_send(struct usb_vsock_conn *conn,
			       enum usb_vsock_type type, const void *payload,
			       u32 len)
{
	/*
	 * Off the link, the quad may be a new connection's already (the
	 * device's Reset or Finish freed it, see usb_vsock_inbox_add()).
	 */
	if (!conn->link || READ_ONCE(conn->ended))
		return -ENOTCONN;
	return usb_vsock_link_send(conn->link, &conn->epoch, type, &conn->addr,
				   payload, len, USB_VSOCK_CTRL_MUST);
}

/*
 * A connection not accepted yet ends: a Connect still queued is withdrawn
 * (so a flood of connect() and close() queues no more than the sockets
 * open), one the device may have read is answered with Reset.
 */
static void usb_vsock_abort_connect(struct usb_vsock_conn *conn)
{
	if (!usb_vsock_link_cancel(conn->link, &conn->connect))
		usb_vsock_conn_send(conn, USB_VSOCK_RESET, NULL, 0);
}

/*
 * @delta bytes entered (> 0) or left @conn->rxq. The link keeps the sum
 * over its connections, inboxes included, and its high-water mark, so
 * that a test can check the memory a flood of received data takes against
 * the buffer limits.
 */
static void usb_vsock_link_queued(struct usb_vsock_link *link, ssize_t delta)
{
	struct usb_vsock_stats *stats = &link->stats;
	s64 queued, max;

	queued = atomic64_add_return(delta, &stats->rx_queued);
	max = atomic64_read(&stats->rx_queued_max);
	while (queued > max &&
	       !atomic64_try_cmpxchg(&stats->rx_queued_max, &max, queued))
		;
}

static void usb_vsock_rx_account(struct usb_vsock_conn *conn, ssize_t delta)
{
	WRITE_ONCE(conn->rx_bytes, conn->rx_bytes + delta);
	if (conn->link)
		usb_vsock_link_queued(conn->link, delta);
}

/*
 * A connection may hold what its socket's buffer size asks for, but never
 * less than USB_VSOCK_RCVBUF_MIN, so that a tiny buffer still moves data,
 * nor more than rcvbuf_max, so that no size a user sets lifts the memory
 * one connection pins.
 */
static size_t usb_vsock_rcvbuf(const struct usb_vsock_conn *conn)
{
	/* Read without the socket lock too: usb_vsock_inbox_add(). */
	return clamp_t(u64, READ_ONCE(conn->vsk->buffer_size),
		       USB_VSOCK_RCVBUF_MIN, READ_ONCE(usb_vsock_rcvbuf_max));
}

/*
 * Past this much unread the device is held back. While the sockets of a
 * link hold more than rx_link_max between them, every connection makes do
 * with the floor, so that many full sockets cannot pin much more than
 * that; a connection that reads keeps moving.
 */
static size_t usb_vsock_rx_window(const struct usb_vsock_conn *conn,
				  struct usb_vsock_link *link)
{
	if (atomic64_read(&link->stats.rx_queued) >
	    READ_ONCE(usb_vsock_rx_link_max))
		return USB_VSOCK_RCVBUF_MIN;
	return usb_vsock_rcvbuf(conn);
}

/*
 * Past this, the device ignores Pause: what it may have sent before it saw
 * the Pause, and what the IN URBs in flight hold when a version 0 link
 * stops, are allowed for. Pressure on the link does not lower it, so that
 * it never ends the connection of a socket that reads.
 */
static size_t usb_vsock_rx_hard_limit(const struct usb_vsock_conn *conn,
				      const struct usb_vsock_link *link)
{
	return usb_vsock_rcvbuf(conn) + USB_VSOCK_RX_SLACK +
	       link->n_in * link->in_maxp;
}

static void usb_vsock_purge(struct usb_vsock_conn *conn)
{
	__skb_queue_purge(&conn->rxq);
	usb_vsock_rx_account(conn, -(ssize_t)conn->rx_bytes);
	conn->rx_off = 0;
}

/*
 * The connection is over on the wire. @err 0: the peer finished (Finish,
 * or Reset after our Finish): what was received stays readable, then EOF;
 * writes fail with EPIPE. Otherwise reads return what was received, then
 * fail with @err, and so do writes.
 */
static void usb_vsock_peer_closed(struct vsock_sock *vsk, int err)
{
	struct sock *sk = sk_vsock(vsk);

	usb_vsock_conn_detach(usb_vsock_conn(vsk));
	/*
	 * Its ports are free on the wire: the device's next Connect from
	 * the same port must reach the listener, not this socket.
	 */
	vsock_remove_connected(vsk);
	sock_set_flag(sk, SOCK_DONE);
	if (err) {
		/* ESTABLISHED, so that the core reports the error itself. */
		sk->sk_err = err;
		sk_error_report(sk);
		return;
	}
	WRITE_ONCE(vsk->peer_shutdown, SHUTDOWN_MASK);
	/* The core refuses reads outside ESTABLISHED: keep it while data. */
	if (!READ_ONCE(usb_vsock_conn(vsk)->rx_bytes))
		sk->sk_state = TCP_CLOSING;
	sk->sk_state_change(sk);
}

static void usb_vsock_remove(struct vsock_sock *vsk)
{
	usb_vsock_conn_detach(usb_vsock_conn(vsk));
	usb_vsock_purge(usb_vsock_conn(vsk));
	vsock_remove_sock(vsk);
}

/* A closed socket is done: drop the reference its close timeout held. */
static void usb_vsock_cancel_close_work(struct vsock_sock *vsk,
					bool cancel_timeout)
{
	if (vsk->close_work_scheduled &&
	    (!cancel_timeout || cancel_delayed_work(&vsk->close_work))) {
		vsk->close_work_scheduled = false;
		usb_vsock_remove(vsk);
		sock_put(sk_vsock(vsk));
	}
}

static void usb_vsock_do_close(struct vsock_sock *vsk, bool cancel_timeout)
{
	usb_vsock_peer_closed(vsk, 0);
	usb_vsock_cancel_close_work(vsk, cancel_timeout);
}

static void usb_vsock_wait_close(struct sock *sk, long timeout)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);

	add_wait_queue(sk_sleep(sk), &wait);
	while (timeout && !signal_pending(current) &&
	       !sk_wait_event(sk, &timeout, sock_flag(sk, SOCK_DONE), &wait))
		;
	remove_wait_queue(sk_sleep(sk), &wait);
}

/*
 * The wire connection ended while the socket was not locked: tell the
 * socket, as the end of the connection on the wire would have.
 */
static void usb_vsock_conn_end(struct vsock_sock *vsk, int err)
{
	struct sock *sk = sk_vsock(vsk);

	switch (sk->sk_state) {
	case TCP_SYN_SENT:
		usb_vsock_conn_detach(usb_vsock_conn(vsk));
		sk->sk_state = TCP_CLOSE;
		sk->sk_err = err;
		sk_error_report(sk);
		break;
	case TCP_CLOSING:
		usb_vsock_do_close(vsk, true);
		break;
	default:
		usb_vsock_peer_closed(vsk, err);
		break;
	}
}

static void usb_vsock_conn_recv(struct vsock_sock *vsk, struct sk_buff *skb);

/*
 * Handle what came for the connection, and its end if its link ended it.
 * Called with the socket locked: from the connection's work, and from the
 * socket calls of an owner that keeps the socket locked, which the work
 * then leaves alone.
 */
static void usb_vsock_conn_process(struct vsock_sock *vsk)
{
	struct usb_vsock_conn *conn = usb_vsock_conn(vsk);
	struct sk_buff *skb;

	while (conn->link) {
		spin_lock(&conn->link->conns_lock);
		skb = __skb_dequeue(&conn->inbox);
		if (skb) {
			conn->inbox_mem -= skb->truesize;
			if (usb_vsock_rx_cb(skb)->type == USB_VSOCK_DATA) {
				WRITE_ONCE(conn->inbox_len,
					   conn->inbox_len - skb->len);
				usb_vsock_link_queued(conn->link,
						      -(ssize_t)skb->len);
			}
		}
		spin_unlock(&conn->link->conns_lock);
		if (!skb)
			break;
		usb_vsock_conn_recv(vsk, skb);
	}
	if (test_and_clear_bit(USB_VSOCK_CONN_END, &conn->flags) &&
	    conn->link && conn->ended)
		usb_vsock_conn_end(vsk, READ_ONCE(conn->end_err));
}

/*
 * lock_sock(), unless the socket's owner holds it, as it may for as long
 * as it likes: then false, at once. lock_sock_nested() without its wait;
 * the net core has no sock_trylock(). release_sock() releases it.
 */
static bool usb_vsock_trylock_sock(struct sock *sk)
{
	spin_lock_bh(&sk->sk_lock.slock);
	if (sock_owned_by_user_nocheck(sk)) {
		spin_unlock_bh(&sk->sk_lock.slock);
		return false;
	}
	sk->sk_lock.owned = 1;
	spin_unlock_bh(&sk->sk_lock.slock);
	mutex_acquire(&sk->sk_lock.dep_map, 0, 1, _RET_IP_);
	return true;
}

/*
 * The work holds the socket and the connection while queued. It never
 * waits for the socket's owner, which can keep it locked for as long as it
 * likes: it looks again later, and meanwhile the owner's own socket calls
 * handle the inbox (the notify_*() ops).
 */
static void usb_vsock_conn_work(struct work_struct *work)
{
	struct usb_vsock_conn *conn =
		container_of(to_delayed_work(work), struct usb_vsock_conn,
			     work);
	struct vsock_sock *vsk = conn->vsk;
	struct sock *sk = sk_vsock(vsk);

	/* The socket changed transport since: nothing is for it. */
	if (READ_ONCE(vsk->trans) != conn)
		goto out;
	if (!usb_vsock_trylock_sock(sk)) {
		conn->retry = clamp(conn->retry * 2, USB_VSOCK_BUSY_RETRY,
				    USB_VSOCK_BUSY_RETRY_MAX);
		/* The references go with it, unless it was queued anew. */
		if (usb_vsock_queue(&conn->work, conn->retry))
			goto done;
		goto out;
	}
	conn->retry = 0;
	if (vsk->trans == conn)
		usb_vsock_conn_process(vsk);
	release_sock(sk);
out:
	sock_put(sk);
	usb_vsock_conn_put(conn);
done:
	usb_vsock_work_done();
}

/* Queue the work, which takes over a reference to the socket and conn. */
static void usb_vsock_conn_queue(struct usb_vsock_conn *conn)
{
	struct sock *sk = sk_vsock(conn->vsk);

	if (usb_vsock_queue(&conn->work, 0))
		return;
	/* Queued already, holding its own: neither put is the last. */
	sock_put(sk);
	usb_vsock_conn_put(conn);
}

/*
 * A connection just taken off its link (usb_vsock_conn_unlist()) ends
 * with @err, once its socket has handled what came before. Called with
 * the link's conns_lock.
 */
static void usb_vsock_conn_end_later(struct usb_vsock_conn *conn, int err)
{
	struct sock *sk = sk_vsock(conn->vsk);

	WRITE_ONCE(conn->end_err, err);
	set_bit(USB_VSOCK_CONN_END, &conn->flags);
	/* A dying socket lets go of the link in its destructor. */
	if (!refcount_inc_not_zero(&sk->sk_refcnt))
		return;
	kref_get(&conn->ref);
	usb_vsock_conn_queue(conn);
}

static void usb_vsock_close_timeout(struct work_struct *work)
{
	struct vsock_sock *vsk =
		container_of(work, struct vsock_sock, close_work.work);
	struct sock *sk = sk_vsock(vsk);

	sock_hold(sk);
	lock_sock(sk);
	usb_vsock_conn_process(vsk);
	if (!sock_flag(sk, SOCK_DONE)) {
		/* The device never acknowledged Finish: abort. */
		usb_vsock_conn_send(usb_vsock_conn(vsk), USB_VSOCK_RESET,
				    NULL, 0);
		usb_vsock_peer_closed(vsk, 0);
	}
	usb_vsock_cancel_close_work(vsk, false);
	release_sock(sk);
	sock_put(sk);
}

/*
 * A closed socket waits for its device's Reset, holding its memory: a
 * device that never answers, or a flood of closes, could pin any number of
 * them. Past max_orphans per link a closing connection waits no more.
 */
static bool usb_vsock_orphan(struct usb_vsock_conn *conn)
{
	atomic64_t *orphans = &conn->link->stats.orphans;

	if (atomic64_inc_return(orphans) > READ_ONCE(usb_vsock_max_orphans)) {
		atomic64_dec(orphans);
		return false;
	}
	conn->orphan = true;
	return true;
}

/* Socket locked. Returns true when the socket can go at once. */
static bool usb_vsock_close(struct vsock_sock *vsk)
{
	struct usb_vsock_conn *conn = usb_vsock_conn(vsk);
	struct sock *sk = sk_vsock(vsk);

	/* What came may be the end already, or need an answer first. */
	usb_vsock_conn_process(vsk);
	/* Over on the wire already: nothing to wait for. */
	if (!conn->link || READ_ONCE(conn->ended))
		return true;
	if (sk->sk_state == TCP_SYN_SENT) {
		usb_vsock_abort_connect(conn);
		return true;
	}
	if (sk->sk_state != TCP_ESTABLISHED && sk->sk_state != TCP_CLOSING)
		return true;

	if (!conn->finish_sent) {
		conn->finish_sent = true;
		usb_vsock_conn_send(conn, USB_VSOCK_FINISH, NULL, 0);
	}
	/*
	 * Nobody reads any more: what came and what still comes is dropped,
	 * and the link must not stay stalled for it.
	 */
	sk->sk_state = TCP_CLOSING;
	usb_vsock_purge(conn);
	/* After the state, which rx_work looks at under the same lock. */
	spin_lock(&conn->link->conns_lock);
	usb_vsock_conn_unstall(conn, conn->link);
	spin_unlock(&conn->link->conns_lock);

	if (sock_flag(sk, SOCK_LINGER) && !(current->flags & PF_EXITING))
		usb_vsock_wait_close(sk, sk->sk_lingertime);
	if (sock_flag(sk, SOCK_DONE))
		return true;
	if (!usb_vsock_orphan(conn)) {
		usb_vsock_conn_send(conn, USB_VSOCK_RESET, NULL, 0);
		usb_vsock_peer_closed(vsk, 0);
		return true;
	}

	sock_hold(sk);
	INIT_DELAYED_WORK(&vsk->close_work, usb_vsock_close_timeout);
	vsk->close_work_scheduled = true;
	schedule_delayed_work(&vsk->close_work, USB_VSOCK_CLOSE_TIMEOUT);
	return false;
}

static void usb_vsock_release(struct vsock_sock *vsk)
{
	struct sock *sk = sk_vsock(vsk);

	if (sk->sk_type == SOCK_STREAM && !usb_vsock_close(vsk))
		return;
	sock_set_flag(sk, SOCK_DONE);
	usb_vsock_remove(vsk);
}

static int usb_vsock_init(struct vsock_sock *vsk, struct vsock_sock *psk)
{
	struct usb_vsock_conn *conn;

	conn = kzalloc(sizeof(*conn), GFP_KERNEL);
	if (!conn)
		return -ENOMEM;
	conn->vsk = vsk;
	kref_init(&conn->ref);
	mutex_init(&conn->pause_lock);
	INIT_LIST_HEAD(&conn->node);
	__skb_queue_head_init(&conn->inbox);
	INIT_DELAYED_WORK(&conn->work, usb_vsock_conn_work);
	skb_queue_head_init(&conn->rxq);
	vsk->trans = conn;
	return 0;
}

static void usb_vsock_destruct(struct vsock_sock *vsk)
{
	struct usb_vsock_conn *conn = usb_vsock_conn(vsk);

	if (!conn)
		return;
	usb_vsock_cancel_close_work(vsk, true);
	usb_vsock_conn_detach(conn);
	usb_vsock_purge(conn);
	vsk->trans = NULL;
	usb_vsock_conn_put(conn);
}

static int usb_vsock_connect(struct vsock_sock *vsk)
{
	struct usb_vsock_conn *conn = usb_vsock_conn(vsk);
	struct usb_vsock_addr addr = {
		.device_cid = vsk->remote_addr.svm_cid,
		.host_cid = USB_VSOCK_CID_HOST,
		.device_port = vsk->remote_addr.svm_port,
		.host_port = vsk->local_addr.svm_port,
	};
	struct usb_vsock_link *link;
	int ret;

	link = usb_vsock_link_find(addr.device_cid);
	if (!link)
		return -ENETUNREACH;
	ret = usb_vsock_conn_attach(conn, link, &addr, NULL);
	usb_vsock_link_put(link);
	if (ret)
		return ret;
	ret = usb_vsock_link_connect(conn->link, &conn->epoch, &conn->addr,
				     &conn->connect);
	if (ret)
		usb_vsock_conn_detach(conn);
	/* The device went away meanwhile: as if it had never been there. */
	return ret == -ESHUTDOWN ? -ENETUNREACH : ret;
}

/* The connect() timed out or was interrupted: abort it on the wire. */
static int usb_vsock_cancel_pkt(struct vsock_sock *vsk)
{
	struct usb_vsock_conn *conn = usb_vsock_conn(vsk);

	if (conn->link && sk_vsock(vsk)->sk_state != TCP_ESTABLISHED) {
		usb_vsock_abort_connect(conn);
		usb_vsock_conn_detach(conn);
	}
	return 0;
}

/* Below half the window again: let the data flow. */
static void usb_vsock_rx_drained(struct vsock_sock *vsk)
{
	struct usb_vsock_conn *conn = usb_vsock_conn(vsk);
	u8 off = USB_VSOCK_UNPAUSE;

	struct usb_vsock_link *link = conn->link;

	if (!link || conn->rx_bytes > usb_vsock_rx_window(conn, link) / 2)
		return;
	/*
	 * Under the locks rx_work holds the device back with, which looks
	 * at rx_bytes again there (usb_vsock_rx_hold_back()). Not sent: the
	 * next read tries again, or the device waits forever.
	 */
	mutex_lock(&conn->pause_lock);
	if (conn->paused &&
	    !usb_vsock_conn_send(conn, USB_VSOCK_PAUSE_PKT, &off, 1))
		conn->paused = false;
	mutex_unlock(&conn->pause_lock);
	spin_lock(&link->conns_lock);
	usb_vsock_conn_unstall(conn, link);
	spin_unlock(&link->conns_lock);
}

static int usb_vsock_shutdown(struct vsock_sock *vsk, int mode)
{
	struct usb_vsock_conn *conn = usb_vsock_conn(vsk);

	/*
	 * recvmsg() reads nothing any more: drop what came (and what comes,
	 * see usb_vsock_recv_data()), or a full socket would keep the device
	 * paused, or on version 0 the whole link stalled, until close().
	 */
	if (mode & RCV_SHUTDOWN) {
		usb_vsock_purge(conn);
		usb_vsock_rx_drained(vsk);
	}
	/* No half-close on the wire: Finish ends the whole connection. */
	if (!(mode & SEND_SHUTDOWN) || !conn->link || conn->finish_sent ||
	    READ_ONCE(conn->ended) ||
	    sk_vsock(vsk)->sk_state != TCP_ESTABLISHED)
		return 0;
	conn->finish_sent = true;
	return usb_vsock_conn_send(conn, USB_VSOCK_FINISH, NULL, 0);
}

static ssize_t usb_vsock_peek(struct usb_vsock_conn *conn,
			      struct msghdr *msg, size_t len)
{
	size_t off = conn->rx_off, copied = 0, n;
	struct sk_buff *skb;

	skb_queue_walk(&conn->rxq, skb) {
		n = min_t(size_t, len - copied, skb->len - off);
		if (skb_copy_datagram_msg(skb, off, msg, n))
			return copied ? copied : -EFAULT;
		copied += n;
		off = 0;
		if (copied == len)
			break;
	}
	return copied;
}

static ssize_t usb_vsock_stream_dequeue(struct vsock_sock *vsk,
					struct msghdr *msg, size_t len,
					int flags)
{
	struct usb_vsock_conn *conn = usb_vsock_conn(vsk);
	size_t copied = 0, n;
	struct sk_buff *skb;
	int err = 0;

	if (flags & MSG_PEEK)
		return usb_vsock_peek(conn, msg, len);

	while (copied < len && (skb = skb_peek(&conn->rxq))) {
		n = min_t(size_t, len - copied, skb->len - conn->rx_off);
		if (skb_copy_datagram_msg(skb, conn->rx_off, msg, n)) {
			err = -EFAULT;
			break;
		}
		copied += n;
		conn->rx_off += n;
		if (conn->rx_off == skb->len) {
			__skb_unlink(skb, &conn->rxq);
			consume_skb(skb);
			conn->rx_off = 0;
		}
	}
	usb_vsock_rx_account(conn, -(ssize_t)copied);
	usb_vsock_rx_drained(vsk);
	return copied ? copied : err;
}

static ssize_t usb_vsock_stream_enqueue(struct vsock_sock *vsk,
					struct msghdr *msg, size_t len)
{
	struct usb_vsock_conn *conn = usb_vsock_conn(vsk);
	struct usb_vsock_link *link = conn->link;
	size_t count = iov_iter_count(&msg->msg_iter);
	long timeo = 0;
	ssize_t ret;

	if (!link)
		return -ENOTCONN;
	/*
	 * Queued control packets go first (see usb_vsock_link_send()). A
	 * connection the link ended waits, like its writers, for the
	 * socket to hear of it.
	 */
	if (READ_ONCE(conn->peer_paused) || READ_ONCE(link->ctrlq_len) ||
	    usb_vsock_conn_over(conn))
		return 0;

	iov_iter_truncate(&msg->msg_iter, len);
	ret = usb_vsock_builder_write_data(&link->tx, &conn->epoch, &conn->addr,
					   &msg->msg_iter, &timeo);
	iov_iter_reexpand(&msg->msg_iter, count - (ret > 0 ? ret : 0));
	/*
	 * No room; or the link ended the connection, or goes away and is
	 * about to (the socket then learns how from usb_vsock_conn_end()).
	 */
	if (ret == -EAGAIN || ret == -ENOTCONN || ret == -ESHUTDOWN)
		return 0;
	if (ret > 0)
		atomic64_add(ret, &link->stats.tx_bytes);
	return ret;
}

static s64 usb_vsock_stream_has_data(struct vsock_sock *vsk)
{
	return READ_ONCE(usb_vsock_conn(vsk)->rx_bytes);
}

static size_t usb_vsock_tx_room(struct usb_vsock_link *link)
{
	if (READ_ONCE(link->ctrlq_len))
		return 0;
	return usb_vsock_builder_data_room(&link->tx);
}

static s64 usb_vsock_stream_has_space(struct vsock_sock *vsk)
{
	struct usb_vsock_conn *conn = usb_vsock_conn(vsk);
	struct usb_vsock_link *link = conn->link;
	size_t room;

	if (!link || READ_ONCE(conn->peer_paused) || usb_vsock_conn_over(conn))
		return 0;
	room = usb_vsock_tx_room(link);
	if (!room) {
		/*
		 * Ask for a wakeup, then look again: room freed between the
		 * first look and the bit would otherwise wake nobody.
		 */
		WRITE_ONCE(conn->tx_waiting, true);
		/* A waker that sees the bit sees the flag. */
		smp_mb__before_atomic();
		set_bit(USB_VSOCK_TX_BLOCKED, &link->flags);
		/* Orders the bit before the second look at the room. */
		smp_mb__after_atomic();
		room = usb_vsock_tx_room(link);
	}
	return room;
}

/* A read may wait for at most this much (a buffer of 0 must still read). */
static u64 usb_vsock_stream_rcvhiwat(struct vsock_sock *vsk)
{
	return usb_vsock_rcvbuf(usb_vsock_conn(vsk));
}

static bool usb_vsock_stream_is_active(struct vsock_sock *vsk)
{
	return true;
}

static bool usb_vsock_stream_allow(u32 cid, u32 port)
{
	struct usb_vsock_link *link = usb_vsock_link_find(cid);

	if (!link)
		return false;
	usb_vsock_link_put(link);
	return true;
}

static bool usb_vsock_seqpacket_allow(u32 remote_cid)
{
	return false;
}

static u32 usb_vsock_get_local_cid(void)
{
	return VMADDR_CID_HOST;
}

static int usb_vsock_notify_poll_in(struct vsock_sock *vsk, size_t target,
				    bool *data_ready_now)
{
	usb_vsock_conn_process(vsk);
	*data_ready_now = vsock_stream_has_data(vsk) >= target;
	return 0;
}

static int usb_vsock_notify_poll_out(struct vsock_sock *vsk, size_t target,
				     bool *space_avail_now)
{
	*space_avail_now = vsock_stream_has_space(vsk) > 0;
	return 0;
}

static int usb_vsock_notify_recv(struct vsock_sock *vsk, size_t target,
				 struct vsock_transport_recv_notify_data *data)
{
	return 0;
}

/*
 * A reader holds the socket: it handles what came meanwhile itself. Not
 * before it blocks, in TASK_INTERRUPTIBLE there: while it sleeps, the
 * socket is unlocked and the work handles the inbox.
 */
static int usb_vsock_notify_recv_process(struct vsock_sock *vsk, size_t target,
					 struct vsock_transport_recv_notify_data *data)
{
	usb_vsock_conn_process(vsk);
	return 0;
}

static int usb_vsock_notify_recv_post(struct vsock_sock *vsk, size_t target,
				      ssize_t copied, bool data_read,
				      struct vsock_transport_recv_notify_data *data)
{
	return 0;
}

static int usb_vsock_notify_send(struct vsock_sock *vsk,
				 struct vsock_transport_send_notify_data *data)
{
	return 0;
}

/* A writer about to wait: what came may be the Pause 0 it waits for. */
static int usb_vsock_notify_send_process(struct vsock_sock *vsk,
					 struct vsock_transport_send_notify_data *data)
{
	usb_vsock_conn_process(vsk);
	return 0;
}

static int usb_vsock_notify_send_post(struct vsock_sock *vsk, ssize_t written,
				      struct vsock_transport_send_notify_data *data)
{
	return 0;
}

/* The size getsockopt() reports is the one that applies. */
static void usb_vsock_notify_buffer_size(struct vsock_sock *vsk, u64 *val)
{
	*val = clamp_t(u64, *val, USB_VSOCK_RCVBUF_MIN,
		       READ_ONCE(usb_vsock_rcvbuf_max));
}

static struct vsock_transport usb_vsock_transport = {
	.module = THIS_MODULE,
	.init = usb_vsock_init,
	.destruct = usb_vsock_destruct,
	.release = usb_vsock_release,
	.cancel_pkt = usb_vsock_cancel_pkt,
	.connect = usb_vsock_connect,
	.stream_dequeue = usb_vsock_stream_dequeue,
	.stream_enqueue = usb_vsock_stream_enqueue,
	.stream_has_data = usb_vsock_stream_has_data,
	.stream_has_space = usb_vsock_stream_has_space,
	.stream_rcvhiwat = usb_vsock_stream_rcvhiwat,
	.stream_is_active = usb_vsock_stream_is_active,
	.stream_allow = usb_vsock_stream_allow,
	.seqpacket_allow = usb_vsock_seqpacket_allow,
	.notify_poll_in = usb_vsock_notify_poll_in,
	.notify_poll_out = usb_vsock_notify_poll_out,
	.notify_recv_init = usb_vsock_notify_recv_process,
	.notify_recv_pre_block = usb_vsock_notify_recv,
	.notify_recv_pre_dequeue = usb_vsock_notify_recv_process,
	.notify_recv_post_dequeue = usb_vsock_notify_recv_post,
	.notify_send_init = usb_vsock_notify_send,
	.notify_send_pre_block = usb_vsock_notify_send_process,
	.notify_send_pre_enqueue = usb_vsock_notify_send,
	.notify_send_post_enqueue = usb_vsock_notify_send_post,
	.notify_buffer_size = usb_vsock_notify_buffer_size,
	.shutdown = usb_vsock_shutdown,
	.get_local_cid = usb_vsock_get_local_cid,
};

/* Receive path, in the link's rx_work. */

static void usb_vsock_drop(struct usb_vsock_link *link,
			   const struct usb_vsock_pkt *pkt, const char *why)
{
	atomic64_inc(&link->stats.rx_dropped);
	usb_vsock_link_log(link, dev_notice,
			   "'%c' %u:%u -> %u:%u dropped: %s\n", pkt->type,
			   pkt->addr.device_cid, pkt->addr.device_port,
			   pkt->addr.host_cid, pkt->addr.host_port, why);
}

/*
 * Refuse a packet of link session @epoch (0: the current one) that has no
 * connection; never answer a Reset.
 */
static void usb_vsock_refuse(struct usb_vsock_link *link, u32 epoch,
			     const struct usb_vsock_pkt *pkt, const char *why)
{
	usb_vsock_drop(link, pkt, why);
	if (pkt->type == USB_VSOCK_CONNECT)
		usb_vsock_link_send(link, epoch ? &epoch : NULL,
				    USB_VSOCK_RESET, &pkt->addr, NULL, 0,
				    USB_VSOCK_CTRL_REPLY);
}

/*
 * A child made here, in a worker, belongs to no memory cgroup: charge it
 * where its listener is, as an accepted TCP socket is.
 */
static void usb_vsock_inherit_memcg(struct sock *child, struct sock *parent)
{
#ifdef CONFIG_MEMCG
	if (!child->sk_memcg && parent->sk_memcg) {
		css_get(&parent->sk_memcg->css);
		child->sk_memcg = parent->sk_memcg;
	}
#endif
}

/* Hand the device's Connect @acc to its listener, locked. */
static void usb_vsock_recv_listen(struct usb_vsock_accept *acc)
{
	struct usb_vsock_pkt pkt_acc = {
		.type = USB_VSOCK_CONNECT,
		.addr = acc->addr,
	};
	const struct usb_vsock_pkt *pkt = &pkt_acc;
	struct usb_vsock_link *link = acc->link;
	struct sock *sk = acc->listener;
	u32 epoch = acc->epoch;
	struct vsock_sock *vchild;
	struct sock *child;
	int ret;

	if (sk->sk_state != TCP_LISTEN || sock_flag(sk, SOCK_DONE)) {
		usb_vsock_refuse(link, epoch, pkt, "no listener on that port");
		return;
	}
	if (sk_acceptq_is_full(sk)) {
		usb_vsock_refuse(link, epoch, pkt, "listen backlog full");
		return;
	}
	/* __vsock_release() may have flushed the accept queue already. */
	if (sk->sk_shutdown == SHUTDOWN_MASK) {
		usb_vsock_refuse(link, epoch, pkt, "listener closing");
		return;
	}
	child = vsock_create_connected(sk);
	if (!child) {
		usb_vsock_refuse(link, epoch, pkt, "out of memory");
		return;
	}

	usb_vsock_inherit_memcg(child, sk);
	lock_sock_nested(child, SINGLE_DEPTH_NESTING);
	child->sk_state = TCP_ESTABLISHED;
	vchild = vsock_sk(child);
	vsock_addr_init(&vchild->local_addr, VMADDR_CID_HOST,
			pkt->addr.host_port);
	vsock_addr_init(&vchild->remote_addr, link->cid, pkt->addr.device_port);
	if (vsock_assign_transport(vchild, vsock_sk(sk)) ||
	    vchild->transport != &usb_vsock_transport) {
		ret = -ENOMEM;
	} else {
		ret = usb_vsock_conn_attach(usb_vsock_conn(vchild), link,
					    &pkt->addr, acc);
	}
	if (ret) {
		release_sock(child);
		/* A Reset for a quad in use would end its connection. */
		if (ret == -EADDRINUSE)
			usb_vsock_drop(link, pkt, "connection already open");
		else if (ret == -ECONNRESET)
			usb_vsock_drop(link, pkt, "reset by the device");
		else
			usb_vsock_refuse(link, epoch, pkt,
					 "cannot create the socket");
		sock_put(child);
		return;
	}

	/*
	 * Before accept() can return it, so Data cannot overtake it; and a
	 * connection the device would never hear of is not handed out.
	 */
	ret = usb_vsock_conn_send(usb_vsock_conn(vchild), USB_VSOCK_ACCEPT,
				  NULL, 0);
	if (ret) {
		usb_vsock_conn_detach(usb_vsock_conn(vchild));
		release_sock(child);
		/* Ended already: the device reset it, the quad is not ours. */
		if (ret == -ENOTCONN)
			usb_vsock_drop(link, pkt, "reset by the device");
		else
			usb_vsock_refuse(link, epoch, pkt,
					 "cannot send the Accept");
		sock_put(child);
		return;
	}
	sk_acceptq_added(sk);
	vsock_insert_connected(vchild);
	vsock_enqueue_accept(sk, child);
	release_sock(child);
	sk->sk_data_ready(sk);
}

static void usb_vsock_recv_connecting(struct sock *sk,
				      const struct usb_vsock_pkt *pkt)
{
	struct vsock_sock *vsk = vsock_sk(sk);
	struct usb_vsock_conn *conn = usb_vsock_conn(vsk);
	int err;

	switch (pkt->type) {
	case USB_VSOCK_ACCEPT:
		sk->sk_state = TCP_ESTABLISHED;
		sk->sk_socket->state = SS_CONNECTED;
		vsock_insert_connected(vsk);
		sk->sk_state_change(sk);
		return;
	case USB_VSOCK_RESET:
		err = ECONNREFUSED;
		break;
	default:
		usb_vsock_drop(conn->link, pkt, "connection not accepted yet");
		usb_vsock_conn_send(conn, USB_VSOCK_RESET, NULL, 0);
		err = EPROTO;
		break;
	}
	usb_vsock_conn_detach(conn);
	sk->sk_state = TCP_CLOSE;
	sk->sk_err = err;
	sk_error_report(sk);
}

/*
 * The connection holds more than it may: reset it, and only it. What it
 * received stays readable, then reads fail with ENOBUFS.
 */
static void usb_vsock_rx_overrun(struct vsock_sock *vsk, const char *why)
{
	struct usb_vsock_conn *conn = usb_vsock_conn(vsk);
	struct usb_vsock_link *link = conn->link;

	atomic64_inc(&link->stats.rx_overruns);
	usb_vsock_link_log(link, dev_notice,
			   "connection %u:%u -> %u:%u reset: %s\n",
			   conn->addr.device_cid, conn->addr.device_port,
			   conn->addr.host_cid, conn->addr.host_port, why);
	usb_vsock_conn_send(conn, USB_VSOCK_RESET, NULL, 0);
	usb_vsock_peer_closed(vsk, ENOBUFS);
}

/*
 * A buffer for received data, charged to the socket (sk_rmem_alloc) and
 * to its memory cgroup: reception runs in a worker, whose own cgroup has
 * nothing to do with who holds the data.
 */
static struct sk_buff *usb_vsock_alloc_rx_skb(struct sock *sk, u32 size)
{
	struct mem_cgroup *old = set_active_memcg(sk->sk_memcg);
	struct sk_buff *skb;

	skb = alloc_skb(size, GFP_KERNEL_ACCOUNT);
	set_active_memcg(old);
	if (skb)
		skb_set_owner_r(skb, sk);
	return skb;
}

static void usb_vsock_recv_data(struct sock *sk,
				const struct usb_vsock_pkt *pkt)
{
	struct vsock_sock *vsk = vsock_sk(sk);
	struct usb_vsock_conn *conn = usb_vsock_conn(vsk);
	struct usb_vsock_link *link = conn->link;
	struct sk_buff *skb;

	if (!pkt->len)
		return;
	if (sk->sk_shutdown & RCV_SHUTDOWN) {
		/* shutdown(SHUT_RD): nobody will read it. */
		atomic64_inc(&link->stats.rx_dropped);
		return;
	}
	if (conn->rx_bytes + pkt->len > usb_vsock_rx_hard_limit(conn, link)) {
		atomic64_inc(&link->stats.rx_dropped);
		usb_vsock_rx_overrun(vsk, "the device does not pause");
		return;
	}
	/*
	 * Small packets are packed into the last buffer, so that a device
	 * sending 1-byte packets costs no more memory per byte than one
	 * sending full ones; rx_bytes then bounds the memory used.
	 */
	skb = skb_peek_tail(&conn->rxq);
	if (!skb || skb_tailroom(skb) < pkt->len) {
		skb = usb_vsock_alloc_rx_skb(sk, max_t(u32, pkt->len,
						       USB_VSOCK_RX_SKB));
		if (!skb) {
			/* Never lose data silently: reset the connection. */
			usb_vsock_drop(link, pkt, "out of memory, resetting");
			usb_vsock_conn_send(conn, USB_VSOCK_RESET, NULL, 0);
			usb_vsock_peer_closed(vsk, ENOMEM);
			return;
		}
		__skb_queue_tail(&conn->rxq, skb);
	}
	skb_put_data(skb, pkt->payload, pkt->len);
	usb_vsock_rx_account(conn, pkt->len);
	atomic64_add(pkt->len, &link->stats.rx_bytes);
	sk->sk_data_ready(sk);
}

static void usb_vsock_recv_connected(struct sock *sk,
				     const struct usb_vsock_pkt *pkt)
{
	struct vsock_sock *vsk = vsock_sk(sk);
	struct usb_vsock_conn *conn = usb_vsock_conn(vsk);

	switch (pkt->type) {
	case USB_VSOCK_DATA:
		usb_vsock_recv_data(sk, pkt);
		break;
	case USB_VSOCK_PAUSE_PKT:
		if (!conn->link->version) {
			usb_vsock_drop(conn->link, pkt, "Pause on a version 0 link");
			break;
		}
		WRITE_ONCE(conn->peer_paused,
			   usb_vsock_pkt_pause(pkt) == USB_VSOCK_PAUSE);
		if (!conn->peer_paused)
			sk->sk_write_space(sk);
		break;
	case USB_VSOCK_FINISH:
		/* rx_work answered it with Reset (usb_vsock_inbox_add()). */
		usb_vsock_peer_closed(vsk, 0);
		break;
	case USB_VSOCK_RESET:
		/* After our Finish it is the acknowledgment. */
		usb_vsock_peer_closed(vsk, conn->finish_sent ? 0 : ECONNRESET);
		break;
	default:
		/* A duplicate Connect or Accept: ignored. */
		atomic64_inc(&conn->link->stats.rx_dropped);
		break;
	}
}

/* The socket was closed and sent Finish; only the end matters now. */
static void usb_vsock_recv_closing(struct sock *sk,
				   const struct usb_vsock_pkt *pkt)
{
	struct vsock_sock *vsk = vsock_sk(sk);
	struct usb_vsock_conn *conn = usb_vsock_conn(vsk);

	switch (pkt->type) {
	case USB_VSOCK_FINISH:
		/* Answered by rx_work, as in usb_vsock_recv_connected(). */
	case USB_VSOCK_RESET:
		usb_vsock_do_close(vsk, true);
		break;
	default:
		/* Nobody will read it. */
		atomic64_inc(&conn->link->stats.rx_dropped);
		break;
	}
}

/* Handle one packet of the inbox. The socket is locked and attached. */
static void usb_vsock_conn_recv(struct vsock_sock *vsk, struct sk_buff *skb)
{
	struct usb_vsock_conn *conn = usb_vsock_conn(vsk);
	struct usb_vsock_pkt pkt = {
		.type = usb_vsock_rx_cb(skb)->type,
		.addr = conn->addr,
		.len = skb->len,
		.payload = skb->data,
	};
	struct sock *sk = sk_vsock(vsk);

	switch (sk->sk_state) {
	case TCP_SYN_SENT:
		usb_vsock_recv_connecting(sk, &pkt);
		break;
	case TCP_ESTABLISHED:
		usb_vsock_recv_connected(sk, &pkt);
		break;
	case TCP_CLOSING:
		usb_vsock_recv_closing(sk, &pkt);
		break;
	default:
		usb_vsock_drop(conn->link, &pkt, "socket not connected");
		break;
	}
	consume_skb(skb);
}

/* The connection of @link with the quad @addr, pinned with its socket. */
static struct usb_vsock_conn *
usb_vsock_conn_find(struct usb_vsock_link *link,
		    const struct usb_vsock_addr *addr)
{
	struct usb_vsock_conn *conn;

	spin_lock(&link->conns_lock);
	conn = usb_vsock_quad_conn(link, addr);
	/* A dying socket takes its connection off in its destructor. */
	if (conn && !refcount_inc_not_zero(&sk_vsock(conn->vsk)->sk_refcnt))
		conn = NULL;
	if (conn)
		kref_get(&conn->ref);
	spin_unlock(&link->conns_lock);
	return conn;
}

/*
 * Reset a connection of @link, and only it, without its socket, which
 * learns of it later (ENOBUFS or ENOMEM in @err). @conn is pinned.
 */
static void usb_vsock_conn_overflow(struct usb_vsock_link *link,
				    struct usb_vsock_conn *conn, int err,
				    const char *why)
{
	struct usb_vsock_addr addr;
	bool ended;
	u32 epoch;

	spin_lock(&link->conns_lock);
	addr = conn->addr;
	epoch = conn->epoch;
	ended = usb_vsock_conn_unlist(conn, link);
	if (ended)
		usb_vsock_conn_end_later(conn, err);
	spin_unlock(&link->conns_lock);
	if (!ended)
		return;
	atomic64_inc(&link->stats.rx_overruns);
	usb_vsock_link_log(link, dev_notice,
			   "connection %u:%u -> %u:%u reset: %s\n",
			   addr.device_cid, addr.device_port, addr.host_cid,
			   addr.host_port, why);
	usb_vsock_link_send(link, &epoch, USB_VSOCK_RESET, &addr, NULL, 0,
			    USB_VSOCK_CTRL_MUST);
}

/*
 * Add @pkt to the inbox of @conn: into its last Data skb when @skb is NULL
 * (-EAGAIN when that has no room), else in @skb, which is used up. Past
 * twice the connection's hard limit, -ENOBUFS: its socket has been held
 * by its owner while the device sent on.
 *
 * A Reset or Finish ends the connection on the wire: it leaves the link at
 * once, so that the device's next Connect from the same port, which may
 * follow before the socket has handled them, reaches the listener; and a
 * Finish is answered at once (*@ack: the Reset to send), since the socket
 * may be held by its owner for long, and sends nothing once off the link.
 */
static int usb_vsock_inbox_add(struct usb_vsock_link *link,
			       struct usb_vsock_conn *conn,
			       const struct usb_vsock_pkt *pkt,
			       struct sk_buff *skb, struct usb_vsock_ctrl_ack *ack)
{
	struct sk_buff *tail;
	int ret = 0;

	spin_lock(&link->conns_lock);
	tail = skb_peek_tail(&conn->inbox);
	if (conn->ended) {
		/* Off the link since it was found: nothing is for it. */
		ret = -ENOTCONN;
	} else if (!skb) {
		if (pkt->type == USB_VSOCK_DATA && tail &&
		    usb_vsock_rx_cb(tail)->type == USB_VSOCK_DATA &&
		    skb_tailroom(tail) >= pkt->len)
			skb_put_data(tail, pkt->payload, pkt->len);
		else
			ret = -EAGAIN;
		if (!ret) {
			WRITE_ONCE(conn->inbox_len, conn->inbox_len + pkt->len);
			usb_vsock_link_queued(link, pkt->len);
		}
	} else if (conn->inbox_mem + skb->truesize >
		   2 * usb_vsock_rx_hard_limit(conn, link)) {
		ret = -ENOBUFS;
	} else {
		skb_put_data(skb, pkt->payload, pkt->len);
		usb_vsock_rx_cb(skb)->type = pkt->type;
		__skb_queue_tail(&conn->inbox, skb);
		conn->inbox_mem += skb->truesize;
		if (pkt->type == USB_VSOCK_DATA) {
			WRITE_ONCE(conn->inbox_len, conn->inbox_len + pkt->len);
			usb_vsock_link_queued(link, pkt->len);
		}
		if (pkt->type == USB_VSOCK_FINISH) {
			ack->addr = conn->addr;
			ack->epoch = conn->epoch;
			ack->send = true;
		}
		if (pkt->type == USB_VSOCK_RESET ||
		    pkt->type == USB_VSOCK_FINISH)
			usb_vsock_conn_unlist(conn, link);
		skb = NULL;
	}
	spin_unlock(&link->conns_lock);
	kfree_skb(skb);
	return ret;
}

/*
 * What the connection received and has not read, its inbox included,
 * passed its window, while a reader may still take it.
 */
static bool usb_vsock_rx_over_window(struct usb_vsock_conn *conn,
				     struct usb_vsock_link *link)
{
	struct sock *sk = sk_vsock(conn->vsk);

	/* Nobody reads any more: what comes is dropped, not held back. */
	if (READ_ONCE(sk->sk_state) != TCP_ESTABLISHED ||
	    (READ_ONCE(sk->sk_shutdown) & RCV_SHUTDOWN))
		return false;
	return READ_ONCE(conn->rx_bytes) + READ_ONCE(conn->inbox_len) >
	       usb_vsock_rx_window(conn, link);
}

/*
 * Hold the device back for this connection alone, once what it received
 * and has not read (its inbox too) passes its window. Version 1 pauses
 * it; version 0 has nothing but to stop reading the link, which stops
 * every connection, so it does so for rx_stall_ms at most (see
 * usb_vsock_transport_expire_stalls()). Decided here in rx_work, so that
 * the device hears of it before rx_work reads on: a socket may only take
 * in what came later.
 */
static void usb_vsock_rx_hold_back(struct usb_vsock_link *link,
				   struct usb_vsock_conn *conn)
{
	u8 on = USB_VSOCK_PAUSE;

	if (!usb_vsock_rx_over_window(conn, link))
		return;
	/*
	 * Looked at again under the lock a reader's usb_vsock_rx_drained()
	 * takes, so that the reader's unpause or unstall cannot come first
	 * and leave the connection held back with nothing left to read.
	 */
	if (link->version >= 1) {
		/* Not sent: the next Data tries again. */
		mutex_lock(&conn->pause_lock);
		if (!conn->paused && usb_vsock_rx_over_window(conn, link) &&
		    !usb_vsock_link_send(link, &conn->epoch, USB_VSOCK_PAUSE_PKT,
					 &conn->addr, &on, 1,
					 USB_VSOCK_CTRL_MUST))
			conn->paused = true;
		mutex_unlock(&conn->pause_lock);
		return;
	}
	/* Not once off the link: nothing would clear it (unlist does). */
	spin_lock(&link->conns_lock);
	if (!conn->ended && usb_vsock_rx_over_window(conn, link) &&
	    !test_bit(USB_VSOCK_CONN_STALLED, &conn->flags)) {
		WRITE_ONCE(conn->stalled_at, jiffies);
		/* Orders stalled_at before the bit. */
		if (!test_and_set_bit(USB_VSOCK_CONN_STALLED, &conn->flags))
			atomic_inc(&link->rx_stalls);
	}
	spin_unlock(&link->conns_lock);
}

/*
 * Put a packet in the inbox of @conn, pinned (usb_vsock_conn_find()), and
 * have its socket handle it; the pins go to the connection's work.
 */
static void usb_vsock_conn_deliver(struct usb_vsock_link *link,
				   struct usb_vsock_conn *conn,
				   const struct usb_vsock_pkt *pkt)
{
	struct usb_vsock_ctrl_ack ack = { .send = false };
	struct sk_buff *skb;
	u32 size = pkt->len;
	int ret;

	ret = usb_vsock_inbox_add(link, conn, pkt, NULL, &ack);
	if (ret == -EAGAIN) {
		/* Data gets room for more to be packed in behind it. */
		if (pkt->type == USB_VSOCK_DATA)
			size = max_t(u32, size, USB_VSOCK_RX_SKB);
		skb = usb_vsock_alloc_rx_skb(sk_vsock(conn->vsk), size);
		ret = skb ? usb_vsock_inbox_add(link, conn, pkt, skb, &ack) :
			    -ENOMEM;
	}
	if (ack.send)
		usb_vsock_link_send(link, &ack.epoch, USB_VSOCK_RESET,
				    &ack.addr, NULL, 0, USB_VSOCK_CTRL_MUST);
	if (!ret && pkt->type == USB_VSOCK_DATA)
		usb_vsock_rx_hold_back(link, conn);
	if (ret)
		atomic64_inc(&link->stats.rx_dropped);
	/* Never lose data silently: reset the connection. */
	if (ret == -ENOBUFS)
		usb_vsock_conn_overflow(link, conn, ENOBUFS,
					"its socket, held by its owner, took in nothing");
	else if (ret == -ENOMEM)
		usb_vsock_conn_overflow(link, conn, ENOMEM, "out of memory");
	usb_vsock_conn_queue(conn);
}

/* The Connects waiting for @listener on @link. Called with conns_lock. */
static unsigned int usb_vsock_accepts_for(struct usb_vsock_link *link,
					  struct sock *listener)
{
	struct usb_vsock_accept *acc;
	unsigned int n = 0;

	list_for_each_entry(acc, &link->accepts, node)
		n += acc->listener == listener;
	return n;
}

/* Why the link cannot queue a Connect for @sk; NULL if it can. */
static const char *usb_vsock_accept_refusal(struct usb_vsock_link *link,
					    struct sock *sk)
{
	unsigned int n;

	if (sk->sk_type != SOCK_STREAM ||
	    READ_ONCE(sk->sk_state) != TCP_LISTEN)
		return "no listener on that port";
	n = usb_vsock_accepts_for(link, sk);
	if (n + READ_ONCE(sk->sk_ack_backlog) >
	    READ_ONCE(sk->sk_max_ack_backlog) ||
	    n >= USB_VSOCK_ACCEPTS_LISTENER)
		return "listen backlog full";
	if (link->n_accepts >= USB_VSOCK_ACCEPTS_MAX)
		return "too many connections wait for their listeners";
	return NULL;
}

static void usb_vsock_accept_free(struct usb_vsock_accept *acc)
{
	struct usb_vsock_link *link = acc->link;

	spin_lock(&link->conns_lock);
	/* Off already if its connection was attached. */
	list_del_init(&acc->node);
	link->n_accepts--;
	spin_unlock(&link->conns_lock);
	sock_put(acc->listener);
	usb_vsock_link_put(link);
	kfree(acc);
}

/*
 * Hand a device's Connect to its listener. Never waits for the listener's
 * owner: while the owner holds it, the work looks again later, so that one
 * listener held for long delays no other.
 */
static void usb_vsock_accept_work(struct work_struct *work)
{
	struct usb_vsock_accept *acc =
		container_of(to_delayed_work(work), struct usb_vsock_accept,
			     work);
	struct usb_vsock_link *link = acc->link;

	/* Withdrawn by the device, or forgotten by a reset or unplug since. */
	if (READ_ONCE(acc->withdrawn) || READ_ONCE(link->state) != USB_VSOCK_UP ||
	    acc->epoch != usb_vsock_builder_epoch(&link->tx))
		goto out;
	if (!usb_vsock_trylock_sock(acc->listener)) {
		acc->retry = clamp(acc->retry * 2, USB_VSOCK_BUSY_RETRY,
				   USB_VSOCK_BUSY_RETRY_MAX);
		if (usb_vsock_queue(&acc->work, acc->retry))
			goto done;
		goto out;
	}
	usb_vsock_recv_listen(acc);
	release_sock(acc->listener);
out:
	usb_vsock_accept_free(acc);
done:
	usb_vsock_work_done();
}

/*
 * A device's Connect for no connection: queue it for the listener on its
 * port, which may be held by its owner for as long as the owner likes.
 * What the listener's backlog or the link's queue does not take is refused
 * at once.
 */
static void usb_vsock_accept_later(struct usb_vsock_link *link,
				   const struct usb_vsock_pkt *pkt)
{
	struct usb_vsock_accept *acc;
	struct sockaddr_vm dst;
	const char *why;
	struct sock *sk;

	vsock_addr_init(&dst, VMADDR_CID_HOST, pkt->addr.host_port);
	sk = vsock_find_bound_socket(&dst);
	if (!sk) {
		usb_vsock_refuse(link, 0, pkt, "no socket on that port");
		return;
	}
	acc = kzalloc(sizeof(*acc), GFP_KERNEL);
	if (!acc) {
		usb_vsock_refuse(link, 0, pkt, "out of memory");
		sock_put(sk);
		return;
	}
	spin_lock(&link->conns_lock);
	why = usb_vsock_accept_refusal(link, sk);
	if (!why) {
		list_add_tail(&acc->node, &link->accepts);
		link->n_accepts++;
	}
	spin_unlock(&link->conns_lock);
	if (why) {
		kfree(acc);
		usb_vsock_refuse(link, 0, pkt, why);
		sock_put(sk);
		return;
	}
	usb_vsock_link_get(link);
	acc->link = link;
	acc->listener = sk;
	acc->addr = pkt->addr;
	acc->epoch = usb_vsock_builder_epoch(&link->tx);
	INIT_DELAYED_WORK(&acc->work, usb_vsock_accept_work);
	usb_vsock_queue(&acc->work, 0);
}

/* The device reset a connection it asked for, not handled yet. */
static bool usb_vsock_accept_withdraw(struct usb_vsock_link *link,
				      const struct usb_vsock_addr *addr)
{
	struct usb_vsock_accept *acc;
	bool found = false;

	spin_lock(&link->conns_lock);
	list_for_each_entry(acc, &link->accepts, node) {
		if (acc->addr.device_port == addr->device_port &&
		    acc->addr.host_port == addr->host_port &&
		    !acc->withdrawn) {
			WRITE_ONCE(acc->withdrawn, true);
			found = true;
		}
	}
	spin_unlock(&link->conns_lock);
	return found;
}

/**
 * usb_vsock_transport_recv() - take in a connection packet from a device
 * @link: the link it came from, which is up
 * @pkt: a well-formed packet other than Sync, Echo and EchoReply
 *
 * The device may only speak for its own CID to the host's: anything else
 * is dropped, and a Connect refused with Reset. A packet for a connection
 * goes to its inbox, a Connect for none to the link's accept queue; so
 * that rx_work never waits for a socket, both are handled later, with the
 * socket locked.
 */
void usb_vsock_transport_recv(struct usb_vsock_link *link,
			      const struct usb_vsock_pkt *pkt)
{
	struct usb_vsock_conn *conn;

	if (pkt->addr.host_cid != USB_VSOCK_CID_HOST ||
	    pkt->addr.device_cid != link->cid) {
		usb_vsock_refuse(link, 0, pkt, "foreign CIDs");
		return;
	}
	conn = usb_vsock_conn_find(link, &pkt->addr);
	if (conn)
		usb_vsock_conn_deliver(link, conn, pkt);
	else if (pkt->type == USB_VSOCK_CONNECT)
		usb_vsock_accept_later(link, pkt);
	else if (pkt->type != USB_VSOCK_RESET ||
		 !usb_vsock_accept_withdraw(link, &pkt->addr))
		usb_vsock_drop(link, pkt, "no connection");
}

/**
 * usb_vsock_transport_reset_link() - end every connection of a link
 * @link: a link that resynchronizes or goes away, in a new session
 *	already (see usb_vsock_builder_epoch())
 *
 * Each socket wakes with ECONNRESET; listeners are not attached to a link
 * and stay, and the device's Connects still waiting for them are dropped
 * (their epoch is over). The link's state is no longer up, so nothing
 * attaches anew. Never waits for a socket.
 */
void usb_vsock_transport_reset_link(struct usb_vsock_link *link)
{
	struct usb_vsock_conn *conn, *tmp;

	spin_lock(&link->conns_lock);
	list_for_each_entry_safe(conn, tmp, &link->conns, node) {
		usb_vsock_conn_unlist(conn, link);
		usb_vsock_conn_end_later(conn, ECONNRESET);
	}
	spin_unlock(&link->conns_lock);
}

/*
 * A connection that has stopped @link for @limit jiffies or longer,
 * pinned with its socket; else NULL, with *@next the jiffies until the
 * next one is due (0: none is stopping the link).
 */
static struct usb_vsock_conn *
usb_vsock_find_expired_stall(struct usb_vsock_link *link, unsigned long limit,
			     unsigned long *next)
{
	struct usb_vsock_conn *conn;
	unsigned long now = jiffies, due;

	*next = 0;
	spin_lock(&link->conns_lock);
	list_for_each_entry(conn, &link->conns, node) {
		if (!test_bit(USB_VSOCK_CONN_STALLED, &conn->flags))
			continue;
		due = READ_ONCE(conn->stalled_at) + limit;
		if (time_before(now, due)) {
			if (!*next || due - now < *next)
				*next = due - now;
			continue;
		}
		/* A dying socket takes its connection off in its destructor. */
		if (!refcount_inc_not_zero(&sk_vsock(conn->vsk)->sk_refcnt))
			continue;
		kref_get(&conn->ref);
		spin_unlock(&link->conns_lock);
		return conn;
	}
	spin_unlock(&link->conns_lock);
	return NULL;
}

/**
 * usb_vsock_transport_expire_stalls() - end what holds a version 0 link
 * @link: a link whose reception stopped for connections over their limit
 *
 * A version 0 link has no Pause: reception stops while a connection holds
 * more than its limit unread, which stops every other connection too. A
 * connection that holds it for rx_stall_ms is reset (ENOBUFS), so that one
 * socket that never reads costs only itself. Never waits for a socket.
 *
 * Return: jiffies until the next connection's time is up, 0 when none
 * holds the link.
 */
unsigned long usb_vsock_transport_expire_stalls(struct usb_vsock_link *link)
{
	unsigned long limit = msecs_to_jiffies(READ_ONCE(usb_vsock_rx_stall_ms));
	struct usb_vsock_conn *conn;
	unsigned long next;

	while ((conn = usb_vsock_find_expired_stall(link, limit, &next))) {
		usb_vsock_conn_overflow(link, conn, ENOBUFS,
					"left unread while it stopped the link");
		sock_put(sk_vsock(conn->vsk));
		usb_vsock_conn_put(conn);
	}
	return next;
}

/**
 * usb_vsock_transport_wake_writers() - room returned to a link's builder
 * @link: the link
 * @max: how many of the writers that found no room to wake, at most
 *
 * Writers are woken in turn: each one woken moves to the end of the list,
 * and those left waiting keep the link's TX_BLOCKED bit, so that the next
 * room wakes them.
 */
void usb_vsock_transport_wake_writers(struct usb_vsock_link *link,
				      unsigned int max)
{
	struct usb_vsock_conn *conn, *tmp;
	struct sock *sk;

	/* Pairs with the barriers of usb_vsock_stream_has_space(). */
	if (!test_and_clear_bit(USB_VSOCK_TX_BLOCKED, &link->flags))
		return;
	spin_lock(&link->conns_lock);
	list_for_each_entry_safe(conn, tmp, &link->conns, node) {
		if (!READ_ONCE(conn->tx_waiting))
			continue;
		if (!max) {
			set_bit(USB_VSOCK_TX_BLOCKED, &link->flags);
			break;
		}
		max--;
		WRITE_ONCE(conn->tx_waiting, false);
		list_move_tail(&conn->node, &link->conns);
		sk = sk_vsock(conn->vsk);
		sk->sk_write_space(sk);
	}
	spin_unlock(&link->conns_lock);
}

/**
 * usb_vsock_transport_register() - register as the H2G vsock transport
 *
 * Return: 0, or a negative errno; -EBUSY when another transport holds the
 * host-to-guest slot.
 */
int usb_vsock_transport_register(void)
{
	int ret;

	usb_vsock_wq = alloc_workqueue("usb_vsock", WQ_UNBOUND, 0);
	if (!usb_vsock_wq)
		return -ENOMEM;
	ret = vsock_core_register(&usb_vsock_transport, VSOCK_TRANSPORT_F_H2G);
	if (!ret)
		return 0;
	if (ret == -EBUSY)
		pr_err("another host-to-guest vsock transport is loaded (vhost_vsock or vmw_vsock_vmci_transport?)\n");
	destroy_workqueue(usb_vsock_wq);
	return ret;
}

/**
 * usb_vsock_transport_unregister() - unregister the transport
 */
void usb_vsock_transport_unregister(void)
{
	vsock_core_unregister(&usb_vsock_transport);
	/*
	 * What is left is for sockets that changed transport and Connects
	 * of links gone, which end at once; but some may wait for a timer,
	 * which destroy_workqueue() would not.
	 */
	wait_var_event(&usb_vsock_works, !atomic_read(&usb_vsock_works));
	destroy_workqueue(usb_vsock_wq);
}
