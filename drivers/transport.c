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
 * protects its list of connections. Received packets are handled in the
 * link's rx_work with the socket locked, as virtio-vsock does.
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

/**
 * struct usb_vsock_conn - per-socket state
 * @vsk: the socket
 * @link: the link while the connection is attached, else NULL
 * @node: in @link->conns
 * @addr: the wire address quad
 * @rxq: received data, one skb per Data packet
 * @rx_bytes: bytes in @rxq not read yet
 * @rx_off: bytes of the first skb in @rxq already read
 * @peer_paused: the device asked us to stop sending (Pause 1)
 * @paused: we asked the device to stop sending
 * @stalled: counted in @link->rx_stalls: reception stops for the link
 * @stalled_at: when @stalled was set, in jiffies
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
	struct usb_vsock_link *link;
	struct list_head node;
	struct usb_vsock_addr addr;
	struct sk_buff_head rxq;
	size_t rx_bytes;
	size_t rx_off;
	bool peer_paused;
	bool paused;
	bool stalled;
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

/*
 * The device knows a connection by its quad alone: a second one with the
 * same quad would take the first one's packets, and the Reset that ends
 * it would end the first. Called with link->conns_lock.
 */
static bool usb_vsock_quad_in_use(struct usb_vsock_link *link,
				  const struct usb_vsock_addr *addr)
{
	struct usb_vsock_conn *conn;

	list_for_each_entry(conn, &link->conns, node)
		if (conn->addr.device_cid == addr->device_cid &&
		    conn->addr.device_port == addr->device_port &&
		    conn->addr.host_port == addr->host_port)
			return true;
	return false;
}

static int usb_vsock_conn_attach(struct usb_vsock_conn *conn,
				 struct usb_vsock_link *link,
				 const struct usb_vsock_addr *addr)
{
	int ret = 0;

	if (WARN_ON_ONCE(conn->link))
		return -EISCONN;
	/* A resync flips the state under conns_lock before it resets. */
	spin_lock(&link->conns_lock);
	if (link->state != USB_VSOCK_UP) {
		ret = -ENETUNREACH;
	} else if (usb_vsock_quad_in_use(link, addr)) {
		ret = -EADDRINUSE;
	} else {
		usb_vsock_link_get(link);
		conn->link = link;
		conn->addr = *addr;
		/* The device stays awake while it has connections. */
		if (!link->pm_held)
			link->pm_held = usb_vsock_link_pm_get(link);
		list_add_tail(&conn->node, &link->conns);
	}
	spin_unlock(&link->conns_lock);
	return ret;
}

static void usb_vsock_conn_unstall(struct usb_vsock_conn *conn)
{
	if (!conn->stalled)
		return;
	WRITE_ONCE(conn->stalled, false);
	if (atomic_dec_and_test(&conn->link->rx_stalls))
		usb_vsock_link_kick_rx(conn->link);
}

/* The wire connection is over: no more packets go out for it. */
static void usb_vsock_conn_detach(struct usb_vsock_conn *conn)
{
	struct usb_vsock_link *link = conn->link;

	if (!link)
		return;
	usb_vsock_link_cancel(link, &conn->connect);
	usb_vsock_conn_unstall(conn);
	if (conn->orphan) {
		conn->orphan = false;
		atomic64_dec(&link->stats.orphans);
	}
	/* What is left is read, or purged, without the link. */
	atomic64_sub(conn->rx_bytes, &link->stats.rx_queued);
	spin_lock(&link->conns_lock);
	list_del_init(&conn->node);
	conn->link = NULL;
	if (list_empty(&link->conns) && link->pm_held) {
		link->pm_held = false;
		usb_vsock_link_pm_put(link);
	}
	spin_unlock(&link->conns_lock);
	usb_vsock_link_put(link);
}

static int usb_vsock_conn_send(struct usb_vsock_conn *conn,
			       enum usb_vsock_type type, const void *payload,
			       u32 len)
{
	if (!conn->link)
		return -ENOTCONN;
	return usb_vsock_link_send(conn->link, type, &conn->addr, payload, len,
				   USB_VSOCK_CTRL_MUST);
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
 * over its connections and its high-water mark, so that a test can check
 * the memory a flood of received data takes against the buffer limits.
 */
static void usb_vsock_rx_account(struct usb_vsock_conn *conn, ssize_t delta)
{
	struct usb_vsock_stats *stats;
	s64 queued, max;

	WRITE_ONCE(conn->rx_bytes, conn->rx_bytes + delta);
	if (!conn->link)
		return;
	stats = &conn->link->stats;
	queued = atomic64_add_return(delta, &stats->rx_queued);
	max = atomic64_read(&stats->rx_queued_max);
	while (queued > max &&
	       !atomic64_try_cmpxchg(&stats->rx_queued_max, &max, queued))
		;
}

/*
 * A connection may hold what its socket's buffer size asks for, but never
 * less than USB_VSOCK_RCVBUF_MIN, so that a tiny buffer still moves data,
 * nor more than rcvbuf_max, so that no size a user sets lifts the memory
 * one connection pins.
 */
static size_t usb_vsock_rcvbuf(const struct usb_vsock_conn *conn)
{
	return clamp_t(u64, conn->vsk->buffer_size, USB_VSOCK_RCVBUF_MIN,
		       READ_ONCE(usb_vsock_rcvbuf_max));
}

/*
 * Past this much unread the device is held back. While the sockets of a
 * link hold more than rx_link_max between them, every connection makes do
 * with the floor, so that many full sockets cannot pin much more than
 * that; a connection that reads keeps moving.
 */
static size_t usb_vsock_rx_window(const struct usb_vsock_conn *conn)
{
	struct usb_vsock_link *link = conn->link;

	if (link && atomic64_read(&link->stats.rx_queued) >
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
static size_t usb_vsock_rx_hard_limit(const struct usb_vsock_conn *conn)
{
	const struct usb_vsock_link *link = conn->link;

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

static void usb_vsock_close_timeout(struct work_struct *work)
{
	struct vsock_sock *vsk =
		container_of(work, struct vsock_sock, close_work.work);
	struct sock *sk = sk_vsock(vsk);

	sock_hold(sk);
	lock_sock(sk);
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

	if (!conn->link)
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
	usb_vsock_conn_unstall(conn);

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
	INIT_LIST_HEAD(&conn->node);
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
	kfree(conn);
	vsk->trans = NULL;
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
	ret = usb_vsock_conn_attach(conn, link, &addr);
	usb_vsock_link_put(link);
	if (ret)
		return ret;
	ret = usb_vsock_link_connect(conn->link, &conn->addr, &conn->connect);
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

	if (conn->rx_bytes > usb_vsock_rx_window(conn) / 2)
		return;
	/* Not sent: the next read tries again, or the device waits forever. */
	if (conn->paused && conn->link &&
	    !usb_vsock_conn_send(conn, USB_VSOCK_PAUSE_PKT, &off, 1))
		conn->paused = false;
	if (conn->link)
		usb_vsock_conn_unstall(conn);
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
	/* Queued control packets go first (see usb_vsock_link_send()). */
	if (READ_ONCE(conn->peer_paused) || READ_ONCE(link->ctrlq_len))
		return 0;

	iov_iter_truncate(&msg->msg_iter, len);
	ret = usb_vsock_builder_write_data(&link->tx, &conn->addr,
					   &msg->msg_iter, &timeo);
	iov_iter_reexpand(&msg->msg_iter, count - (ret > 0 ? ret : 0));
	if (ret == -EAGAIN)
		return 0;
	if (ret == -ESHUTDOWN)
		return -ENOTCONN;
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

	if (!link || READ_ONCE(conn->peer_paused))
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
	.notify_recv_init = usb_vsock_notify_recv,
	.notify_recv_pre_block = usb_vsock_notify_recv,
	.notify_recv_pre_dequeue = usb_vsock_notify_recv,
	.notify_recv_post_dequeue = usb_vsock_notify_recv_post,
	.notify_send_init = usb_vsock_notify_send,
	.notify_send_pre_block = usb_vsock_notify_send,
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

/* Refuse a packet that has no connection; never answer a Reset. */
static void usb_vsock_refuse(struct usb_vsock_link *link,
			     const struct usb_vsock_pkt *pkt, const char *why)
{
	usb_vsock_drop(link, pkt, why);
	if (pkt->type == USB_VSOCK_CONNECT)
		usb_vsock_link_send(link, USB_VSOCK_RESET, &pkt->addr, NULL, 0,
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

static void usb_vsock_recv_listen(struct sock *sk, struct usb_vsock_link *link,
				  const struct usb_vsock_pkt *pkt)
{
	struct vsock_sock *vchild;
	struct sock *child;
	int ret;

	if (pkt->type != USB_VSOCK_CONNECT) {
		usb_vsock_drop(link, pkt, "no connection");
		return;
	}
	if (sk_acceptq_is_full(sk)) {
		usb_vsock_refuse(link, pkt, "listen backlog full");
		return;
	}
	/* __vsock_release() may have flushed the accept queue already. */
	if (sk->sk_shutdown == SHUTDOWN_MASK) {
		usb_vsock_refuse(link, pkt, "listener closing");
		return;
	}
	child = vsock_create_connected(sk);
	if (!child) {
		usb_vsock_refuse(link, pkt, "out of memory");
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
					    &pkt->addr);
	}
	if (ret) {
		release_sock(child);
		/* A Reset for a quad in use would end its connection. */
		if (ret == -EADDRINUSE)
			usb_vsock_drop(link, pkt, "connection already open");
		else
			usb_vsock_refuse(link, pkt, "cannot create the socket");
		sock_put(child);
		return;
	}

	/*
	 * Before accept() can return it, so Data cannot overtake it; and a
	 * connection the device would never hear of is not handed out.
	 */
	if (usb_vsock_conn_send(usb_vsock_conn(vchild), USB_VSOCK_ACCEPT,
				NULL, 0)) {
		usb_vsock_conn_detach(usb_vsock_conn(vchild));
		release_sock(child);
		usb_vsock_refuse(link, pkt, "cannot send the Accept");
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
static struct sk_buff *usb_vsock_alloc_rx_skb(struct sock *sk, u32 len)
{
	struct mem_cgroup *old = set_active_memcg(sk->sk_memcg);
	struct sk_buff *skb;

	skb = alloc_skb(max_t(u32, len, USB_VSOCK_RX_SKB), GFP_KERNEL_ACCOUNT);
	set_active_memcg(old);
	if (skb)
		skb_set_owner_r(skb, sk);
	return skb;
}

/*
 * Hold the device back for this connection alone: version 1 pauses it;
 * version 0 has nothing but to stop reading the link, which stops every
 * connection, so it does so for rx_stall_ms at most (see
 * usb_vsock_transport_expire_stalls()).
 */
static void usb_vsock_rx_hold_back(struct usb_vsock_conn *conn)
{
	struct usb_vsock_link *link = conn->link;
	u8 on = USB_VSOCK_PAUSE;

	if (link->version >= 1) {
		/* Not sent: the next Data tries again. */
		if (!conn->paused &&
		    !usb_vsock_conn_send(conn, USB_VSOCK_PAUSE_PKT, &on, 1))
			conn->paused = true;
		return;
	}
	if (!conn->stalled) {
		WRITE_ONCE(conn->stalled_at, jiffies);
		WRITE_ONCE(conn->stalled, true);
		atomic_inc(&link->rx_stalls);
	}
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
	if (conn->rx_bytes + pkt->len > usb_vsock_rx_hard_limit(conn)) {
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
		skb = usb_vsock_alloc_rx_skb(sk, pkt->len);
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

	if (conn->rx_bytes > usb_vsock_rx_window(conn))
		usb_vsock_rx_hold_back(conn);
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
		usb_vsock_conn_send(conn, USB_VSOCK_RESET, NULL, 0);
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
		usb_vsock_conn_send(conn, USB_VSOCK_RESET, NULL, 0);
		fallthrough;
	case USB_VSOCK_RESET:
		usb_vsock_do_close(vsk, true);
		break;
	default:
		/* Nobody will read it. */
		atomic64_inc(&conn->link->stats.rx_dropped);
		break;
	}
}

/**
 * usb_vsock_transport_recv() - handle a connection packet from a device
 * @link: the link it came from, which is up
 * @pkt: a well-formed packet other than Sync, Echo and EchoReply
 *
 * The device may only speak for its own CID to the host's: anything else,
 * and anything for a connection that does not exist, is dropped, and a
 * Connect is refused with Reset.
 */
void usb_vsock_transport_recv(struct usb_vsock_link *link,
			      const struct usb_vsock_pkt *pkt)
{
	struct sockaddr_vm src, dst;
	struct vsock_sock *vsk;
	struct sock *sk;

	if (pkt->addr.host_cid != USB_VSOCK_CID_HOST ||
	    pkt->addr.device_cid != link->cid) {
		usb_vsock_refuse(link, pkt, "foreign CIDs");
		return;
	}
	vsock_addr_init(&src, link->cid, pkt->addr.device_port);
	vsock_addr_init(&dst, VMADDR_CID_HOST, pkt->addr.host_port);

	sk = vsock_find_connected_socket(&src, &dst);
	if (!sk)
		sk = vsock_find_bound_socket(&dst);
	if (!sk) {
		usb_vsock_refuse(link, pkt, "no socket on that port");
		return;
	}

	lock_sock(sk);
	vsk = vsock_sk(sk);
	if (sk->sk_type != SOCK_STREAM || sock_flag(sk, SOCK_DONE) ||
	    (sk->sk_state != TCP_LISTEN &&
	     (!vsock_check_source(vsk, &usb_vsock_transport, &src) ||
	      usb_vsock_conn(vsk)->link != link))) {
		usb_vsock_refuse(link, pkt, "no connection");
		goto out;
	}

	switch (sk->sk_state) {
	case TCP_LISTEN:
		usb_vsock_recv_listen(sk, link, pkt);
		break;
	case TCP_SYN_SENT:
		usb_vsock_recv_connecting(sk, pkt);
		break;
	case TCP_ESTABLISHED:
		usb_vsock_recv_connected(sk, pkt);
		break;
	case TCP_CLOSING:
		usb_vsock_recv_closing(sk, pkt);
		break;
	default:
		usb_vsock_refuse(link, pkt, "socket not connected");
		break;
	}
out:
	release_sock(sk);
	sock_put(sk);
}

/* A link reset ends the connection with ECONNRESET. Socket locked. */
static void usb_vsock_conn_reset(struct vsock_sock *vsk)
{
	struct sock *sk = sk_vsock(vsk);

	switch (sk->sk_state) {
	case TCP_SYN_SENT:
		usb_vsock_conn_detach(usb_vsock_conn(vsk));
		sk->sk_state = TCP_CLOSE;
		sk->sk_err = ECONNRESET;
		sk_error_report(sk);
		break;
	case TCP_CLOSING:
		usb_vsock_do_close(vsk, true);
		break;
	default:
		usb_vsock_peer_closed(vsk, ECONNRESET);
		break;
	}
}

/*
 * The connection of a locked socket, if it is still attached to @link.
 * Only the socket was pinned: while we waited for its lock, the connection
 * may have been detached, and freed by a connect() elsewhere that changed
 * the socket's transport.
 */
static struct usb_vsock_conn *usb_vsock_locked_conn(struct vsock_sock *vsk,
						    struct usb_vsock_link *link)
{
	struct usb_vsock_conn *conn;

	if (vsk->transport != &usb_vsock_transport)
		return NULL;
	conn = usb_vsock_conn(vsk);
	return conn && conn->link == link ? conn : NULL;
}

/**
 * usb_vsock_transport_reset_link() - end every connection of a link
 * @link: a link that resynchronizes or goes away
 *
 * Each socket wakes with ECONNRESET; listeners are not attached to a link
 * and stay. The link's state is no longer up, so nothing attaches anew.
 */
void usb_vsock_transport_reset_link(struct usb_vsock_link *link)
{
	struct usb_vsock_conn *conn;
	struct vsock_sock *vsk;
	struct sock *sk;

	for (;;) {
		spin_lock(&link->conns_lock);
		conn = list_first_entry_or_null(&link->conns,
						struct usb_vsock_conn, node);
		vsk = conn ? conn->vsk : NULL;
		sk = vsk ? sk_vsock(vsk) : NULL;
		/* A dying socket detaches itself in its destructor. */
		if (sk && !refcount_inc_not_zero(&sk->sk_refcnt))
			sk = NULL;
		spin_unlock(&link->conns_lock);
		if (!conn)
			break;
		if (!sk) {
			cond_resched();
			continue;
		}

		lock_sock(sk);
		/* Detaching takes it off the list, so this ends. */
		if (usb_vsock_locked_conn(vsk, link))
			usb_vsock_conn_reset(vsk);
		release_sock(sk);
		sock_put(sk);
	}
}

static bool usb_vsock_stall_expired(const struct usb_vsock_conn *conn,
				    unsigned long limit)
{
	return READ_ONCE(conn->stalled) &&
	       time_after_eq(jiffies, READ_ONCE(conn->stalled_at) + limit);
}

/*
 * The socket of a connection that has stopped @link for @limit jiffies or
 * longer, pinned; else NULL, with *@next the jiffies until the next one is
 * due (0: none is stopping the link).
 */
static struct sock *usb_vsock_find_expired_stall(struct usb_vsock_link *link,
						 unsigned long limit,
						 unsigned long *next)
{
	struct usb_vsock_conn *conn;
	unsigned long left;
	struct sock *sk;

	*next = 0;
	spin_lock(&link->conns_lock);
	list_for_each_entry(conn, &link->conns, node) {
		if (!READ_ONCE(conn->stalled))
			continue;
		if (!usb_vsock_stall_expired(conn, limit)) {
			left = READ_ONCE(conn->stalled_at) + limit - jiffies;
			if (!*next || left < *next)
				*next = left;
			continue;
		}
		sk = sk_vsock(conn->vsk);
		/* A dying socket detaches itself in its destructor. */
		if (refcount_inc_not_zero(&sk->sk_refcnt)) {
			spin_unlock(&link->conns_lock);
			return sk;
		}
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
 * socket that never reads costs only itself.
 *
 * Return: jiffies until the next connection's time is up, 0 when none
 * holds the link.
 */
unsigned long usb_vsock_transport_expire_stalls(struct usb_vsock_link *link)
{
	unsigned long limit = msecs_to_jiffies(READ_ONCE(usb_vsock_rx_stall_ms));
	struct usb_vsock_conn *conn;
	unsigned long next;
	struct sock *sk;

	while ((sk = usb_vsock_find_expired_stall(link, limit, &next))) {
		lock_sock(sk);
		conn = usb_vsock_locked_conn(vsock_sk(sk), link);
		if (conn && usb_vsock_stall_expired(conn, limit))
			usb_vsock_rx_overrun(vsock_sk(sk),
					     "left unread while it stopped the link");
		release_sock(sk);
		sock_put(sk);
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
	int ret = vsock_core_register(&usb_vsock_transport,
				      VSOCK_TRANSPORT_F_H2G);

	if (ret == -EBUSY)
		pr_err("another host-to-guest vsock transport is loaded (vhost_vsock or vmw_vsock_vmci_transport?)\n");
	return ret;
}

/**
 * usb_vsock_transport_unregister() - unregister the transport
 */
void usb_vsock_transport_unregister(void)
{
	vsock_core_unregister(&usb_vsock_transport);
}
