// SPDX-License-Identifier: GPL-2.0
/*
 * usb_vsock link: the sync handshake, CID assignment, the queue of control
 * packets, and the dispatch of received packets.
 *
 * Lock order: link->mutex, then a socket's lock, then a connection's
 * pause_lock, then link->conns_lock or link->ctrl_lock, then the builder's
 * lock. link->lock, taken in URB completions, holds nothing; it nests in
 * conns_lock (usb_vsock_link_kick_rx() when a connection stops holding
 * reception back).
 */

#include <linux/device.h>
#include <linux/jiffies.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/xarray.h>
#include <net/af_vsock.h>

#include "usb_vsock/link.h"
#include "usb_vsock/trace.h"

/* CID -> link, for routing connect() to the right device. */
static DEFINE_XARRAY_ALLOC(usb_vsock_cids);

/*
 * How long the device may leave our Sync unanswered before it is reset:
 * Echo-probing devices answer within 10 x 100 ms, the newest at once. ffx
 * gives an attempt 5 s and never retries sooner; each reset doubles the
 * wait, up to USB_VSOCK_SYNC_WAIT_MAX.
 */
#define USB_VSOCK_SYNC_WAIT		(5 * HZ)
#define USB_VSOCK_SYNC_WAIT_MAX		(40 * HZ)

/*
 * After the device's reset Sync: the newest devices answer a Sync as soon
 * as they read it, so ours is answered within this, or it was lost.
 */
#define USB_VSOCK_SYNC_WAIT_RESET	HZ

/*
 * Restarts the device causes (its Syncs on a link that is up, a stream
 * we cannot parse) end every connection and assign a CID. Up to
 * USB_VSOCK_RESTARTS of them in USB_VSOCK_RESTART_WINDOW are honoured at
 * once; beyond that the link stays down until the window ends, as ffx
 * never tries a device again sooner than 5 s after the last attempt, so
 * that a device restarting in a loop costs the host a bounded rate.
 */
#define USB_VSOCK_RESTARTS		4
#define USB_VSOCK_RESTART_WINDOW	(5 * HZ)

/*
 * Replies the device provokes (Echo replies, Resets) wait here when the
 * link is congested; beyond this many they are dropped, so that a hostile
 * device cannot make the host queue without bound. The packets of local
 * connections always wait: each socket queues at most one Connect, which
 * its close() withdraws if it is still queued, so local users opening and
 * closing connections faster than the device takes them queue no more
 * than the sockets they hold.
 */
#define USB_VSOCK_CTRLQ_REPLIES		256

/*
 * A device that leaves this many unread, and has not completed an OUT
 * transfer for USB_VSOCK_TX_STUCK, has stopped reading the link while it
 * keeps us answering (a flood of Connects and Finishes to a listener, say):
 * the link is resynchronized, which ends every connection and empties the
 * queue. One that reads, but slower than it provokes packets, is stopped
 * the same way at USB_VSOCK_CTRLQ_HARD, whatever its progress: the queue
 * never holds more.
 */
#define USB_VSOCK_CTRLQ_LIMIT		16384
#define USB_VSOCK_CTRLQ_HARD		(4 * USB_VSOCK_CTRLQ_LIMIT)
#define USB_VSOCK_TX_STUCK		(10 * HZ)

/**
 * struct usb_vsock_ctrl - a control packet waiting for room
 * @node: in usb_vsock_link.ctrlq
 * @type: packet type
 * @addr: address quad
 * @len: payload length
 * @owner: where a withdrawable packet is known (usb_vsock_link_connect()),
 *	cleared when it leaves the queue; under usb_vsock_link.ctrl_lock
 * @payload: @len bytes
 */
struct usb_vsock_ctrl {
	struct list_head node;
	enum usb_vsock_type type;
	struct usb_vsock_addr addr;
	u32 len;
	struct usb_vsock_ctrl **owner;
	u8 payload[];
};

/**
 * usb_vsock_state_name() - the name of a link state, for sysfs
 * @state: the state
 *
 * Return: a static string.
 */
const char *usb_vsock_state_name(enum usb_vsock_state state)
{
	switch (state) {
	case USB_VSOCK_SYNCING:
		return "syncing";
	case USB_VSOCK_UP:
		return "up";
	case USB_VSOCK_GONE:
		return "gone";
	}
	return "?";
}

/**
 * usb_vsock_link_find() - the synchronized link of a device CID
 * @cid: the CID
 *
 * Return: the link with a reference taken, or NULL.
 */
struct usb_vsock_link *usb_vsock_link_find(u32 cid)
{
	struct usb_vsock_link *link;

	xa_lock(&usb_vsock_cids);
	link = xa_load(&usb_vsock_cids, cid);
	if (link && READ_ONCE(link->state) == USB_VSOCK_UP)
		usb_vsock_link_get(link);
	else
		link = NULL;
	xa_unlock(&usb_vsock_cids);
	return link;
}

/*
 * Not a CID the vsock core routes elsewhere: on a host that is itself a
 * VM guest, connect() to the guest's own CID goes to local listeners, so
 * a device given that CID would be unreachable and would see nothing of
 * what was meant for it.
 */
static bool usb_vsock_cid_valid(u32 cid)
{
	return cid > USB_VSOCK_CID_HOST && cid != USB_VSOCK_CID_ANY &&
	       !vsock_find_cid(cid);
}

static void usb_vsock_cid_release(struct usb_vsock_link *link)
{
	if (link->cid)
		xa_erase(&usb_vsock_cids, link->cid);
	WRITE_ONCE(link->cid, 0);
}

/*
 * The device's request if it is a usable CID that no other link holds,
 * else the lowest free CID from 3, as ffx does. Called with link->mutex.
 */
static u32 usb_vsock_cid_assign(struct usb_vsock_link *link, u32 want)
{
	u32 cid, min = USB_VSOCK_CID_HOST + 1;

	if (usb_vsock_cid_valid(want) && want == link->cid)
		return want;
	usb_vsock_cid_release(link);
	if (usb_vsock_cid_valid(want) &&
	    !xa_insert(&usb_vsock_cids, want, link, GFP_KERNEL))
		return want;
	/* The core owns at most one CID above the host's: two tries. */
	for (;;) {
		if (xa_alloc(&usb_vsock_cids, &cid, link,
			     XA_LIMIT(min, USB_VSOCK_CID_ANY - 1), GFP_KERNEL))
			return 0;
		if (usb_vsock_cid_valid(cid))
			return cid;
		xa_erase(&usb_vsock_cids, cid);
		min = cid + 1;
	}
}

/*
 * The device has left USB_VSOCK_CTRLQ_LIMIT packets unread, and every OUT
 * URB has been in flight, none completing, for USB_VSOCK_TX_STUCK; or it
 * has left USB_VSOCK_CTRLQ_HARD unread. Called with link->ctrl_lock.
 */
static bool usb_vsock_tx_stuck(struct usb_vsock_link *link)
{
	if (link->ctrlq_len >= USB_VSOCK_CTRLQ_HARD)
		return true;
	return link->ctrlq_len >= USB_VSOCK_CTRLQ_LIMIT &&
	       !READ_ONCE(link->n_free) &&
	       time_after(jiffies,
			  READ_ONCE(link->tx_done_at) + USB_VSOCK_TX_STUCK);
}

/* A packet leaves the queue: whoever could withdraw it no longer can. */
static void usb_vsock_ctrl_dequeue(struct usb_vsock_link *link,
				   struct usb_vsock_ctrl *ctrl)
{
	list_del(&ctrl->node);
	WRITE_ONCE(link->ctrlq_len, link->ctrlq_len - 1);
	if (ctrl->owner)
		*ctrl->owner = NULL;
}

static int __usb_vsock_link_send(struct usb_vsock_link *link,
				 const u32 *epoch,
				 enum usb_vsock_type type,
				 const struct usb_vsock_addr *addr,
				 const void *payload, u32 len,
				 enum usb_vsock_ctrl_prio prio,
				 struct usb_vsock_ctrl **queued)
{
	struct usb_vsock_ctrl *ctrl;
	long timeo = 0;
	int ret = 0;

	/* Never sendable: a packet must fit one transfer. */
	if (usb_vsock_pkt_size(len) > link->tx.size)
		return -EMSGSIZE;
	/*
	 * A Finish, Reset or Pause lost for want of a few bytes would leave
	 * its connection half-open, or the device paused, with nothing to
	 * try again: these small allocations wait for memory instead.
	 */
	ctrl = kmalloc(struct_size(ctrl, payload, len),
		       prio == USB_VSOCK_CTRL_MUST ? GFP_KERNEL | __GFP_NOFAIL :
						     GFP_KERNEL);
	if (!ctrl)
		return -ENOMEM;
	ctrl->type = type;
	ctrl->len = len;
	ctrl->owner = queued;
	if (addr)
		ctrl->addr = *addr;
	else
		memset(&ctrl->addr, 0, sizeof(ctrl->addr));
	if (len)
		memcpy(ctrl->payload, payload, len);

	spin_lock(&link->ctrl_lock);
	if (READ_ONCE(link->disconnected)) {
		ret = -ESHUTDOWN;
	} else if (epoch &&
		   READ_ONCE(*epoch) != usb_vsock_builder_epoch(&link->tx)) {
		/* Its connection ended with the session it belonged to. */
		ret = -ENOTCONN;
	} else if (list_empty(&link->ctrlq) &&
		   !usb_vsock_builder_write(&link->tx, type, &ctrl->addr,
					    ctrl->payload, len, &timeo)) {
		ret = 1;
	} else if (usb_vsock_tx_stuck(link)) {
		ret = -EPIPE;
	} else if (prio == USB_VSOCK_CTRL_REPLY &&
		   link->ctrlq_len >= USB_VSOCK_CTRLQ_REPLIES) {
		ret = -ENOBUFS;
	} else {
		list_add_tail(&ctrl->node, &link->ctrlq);
		WRITE_ONCE(link->ctrlq_len, link->ctrlq_len + 1);
		if (queued)
			*queued = ctrl;
		ctrl = NULL;
	}
	spin_unlock(&link->ctrl_lock);
	kfree(ctrl);

	if (ret == -EPIPE) {
		/* The resync purges the queue and ends every connection. */
		atomic64_inc(&link->stats.tx_dropped);
		if (!test_and_set_bit(USB_VSOCK_TX_WEDGED, &link->flags))
			usb_vsock_link_kick_rx(link);
		return -ENOBUFS;
	}
	if (ret == -ENOBUFS && prio == USB_VSOCK_CTRL_REPLY) {
		atomic64_inc(&link->stats.tx_dropped);
		usb_vsock_link_log(link, dev_warn,
				   "link congested, dropped a '%c' reply\n",
				   type);
	}
	if (ret < 0)
		return ret;
	if (!ret)
		wake_up(&link->tx.data_wq);
	return 0;
}

/**
 * usb_vsock_link_send() - send a control packet
 * @link: the link
 * @epoch: the link session the packet's connection belongs to
 *	(usb_vsock_builder_epoch() of @link->tx when it began), read under
 *	the lock that orders the packet; the caller sets it to 0 when the
 *	connection ends. NULL: the current session
 * @type: packet type
 * @addr: address quad, or NULL for all zeroes
 * @payload: @len bytes
 * @len: payload length
 * @prio: how the packet waits for room (&enum usb_vsock_ctrl_prio)
 *
 * Never sleeps for room: the packet goes into the transfer being filled if
 * it fits and nothing waits before it, else into the control queue, which
 * the transmit thread drains ahead of data. Data waits while the queue is
 * not empty, so a control packet is never overtaken by data queued after
 * it (an Accept by the first Data of its connection, say). A packet of an
 * older session is refused: once the link resynchronized, its quad means
 * nothing to the device any more, or another connection's.
 *
 * Return: 0, -ENOBUFS when the packet was refused (a reply while too many
 * wait, or any packet once the device stopped reading, which also has the
 * link resynchronized), -ENOTCONN for an older session or an ended
 * connection, -ENOMEM (a reply only), or -ESHUTDOWN when the link is going
 * away.
 */
int usb_vsock_link_send(struct usb_vsock_link *link, const u32 *epoch,
			enum usb_vsock_type type,
			const struct usb_vsock_addr *addr, const void *payload,
			u32 len, enum usb_vsock_ctrl_prio prio)
{
	return __usb_vsock_link_send(link, epoch, type, addr, payload, len,
				     prio, NULL);
}

/**
 * usb_vsock_link_connect() - send the Connect of a local connect()
 * @link: the link
 * @epoch: as for usb_vsock_link_send()
 * @addr: the connection's quad
 * @queued: set to the packet while it waits in the control queue, and
 *	back to NULL when it leaves, so that usb_vsock_link_cancel() can
 *	withdraw it; accessed under the link's ctrl_lock only
 *
 * Return: as usb_vsock_link_send().
 */
int usb_vsock_link_connect(struct usb_vsock_link *link, const u32 *epoch,
			   const struct usb_vsock_addr *addr,
			   struct usb_vsock_ctrl **queued)
{
	return __usb_vsock_link_send(link, epoch, USB_VSOCK_CONNECT, addr,
				     NULL, 0, USB_VSOCK_CTRL_MUST, queued);
}

/**
 * usb_vsock_link_cancel() - withdraw a Connect the device has not seen
 * @link: the link
 * @queued: as given to usb_vsock_link_connect()
 *
 * Return: true if the packet was still queued and is gone: the device
 * never hears of the connection, so it needs no Reset.
 */
bool usb_vsock_link_cancel(struct usb_vsock_link *link,
			   struct usb_vsock_ctrl **queued)
{
	struct usb_vsock_ctrl *ctrl;
	bool found;

	spin_lock(&link->ctrl_lock);
	ctrl = *queued;
	found = ctrl;
	if (found)
		usb_vsock_ctrl_dequeue(link, ctrl);
	spin_unlock(&link->ctrl_lock);
	kfree(ctrl);
	return found;
}

/**
 * usb_vsock_tx_flush_ctrl() - move queued control packets into the builder
 * @link: the link
 *
 * Called by the transmit thread before it takes a transfer.
 */
void usb_vsock_tx_flush_ctrl(struct usb_vsock_link *link)
{
	struct usb_vsock_ctrl *ctrl, *tmp;
	bool drained = false;
	long timeo = 0;
	int ret;

	spin_lock(&link->ctrl_lock);
	list_for_each_entry_safe(ctrl, tmp, &link->ctrlq, node) {
		ret = usb_vsock_builder_write(&link->tx, ctrl->type,
					      &ctrl->addr, ctrl->payload,
					      ctrl->len, &timeo);
		if (ret == -EAGAIN)
			break;
		/* Sent, or never sendable (-EMSGSIZE, -ESHUTDOWN). */
		usb_vsock_ctrl_dequeue(link, ctrl);
		kfree(ctrl);
		drained = list_empty(&link->ctrlq);
	}
	spin_unlock(&link->ctrl_lock);

	if (drained)
		usb_vsock_transport_wake_writers(link, UINT_MAX);
}

/*
 * Drop the control packets not sent yet. With @new_epoch the builder
 * begins a new session under the same ctrl_lock, so that the transmit
 * thread cannot move a packet of the old session into it in between.
 */
static void usb_vsock_ctrlq_drop(struct usb_vsock_link *link, bool new_epoch)
{
	struct usb_vsock_ctrl *ctrl, *tmp;
	LIST_HEAD(purge);

	spin_lock(&link->ctrl_lock);
	if (new_epoch)
		usb_vsock_builder_reset(&link->tx);
	list_for_each_entry_safe(ctrl, tmp, &link->ctrlq, node) {
		usb_vsock_ctrl_dequeue(link, ctrl);
		list_add_tail(&ctrl->node, &purge);
	}
	spin_unlock(&link->ctrl_lock);
	list_for_each_entry_safe(ctrl, tmp, &purge, node)
		kfree(ctrl);
}

/**
 * usb_vsock_ctrlq_purge() - drop the control packets not sent yet
 * @link: the link
 */
void usb_vsock_ctrlq_purge(struct usb_vsock_link *link)
{
	usb_vsock_ctrlq_drop(link, false);
}

static void usb_vsock_set_state(struct usb_vsock_link *link,
				enum usb_vsock_state state)
{
	/* Under conns_lock, so that attaching a connection sees it. */
	spin_lock(&link->conns_lock);
	WRITE_ONCE(link->state, state);
	spin_unlock(&link->conns_lock);
}

static void usb_vsock_send_sync(struct usb_vsock_link *link, u32 device_cid,
				const char *version)
{
	struct usb_vsock_addr addr = {
		.device_cid = device_cid,
		.host_cid = USB_VSOCK_CID_HOST,
	};

	usb_vsock_link_send(link, NULL, USB_VSOCK_SYNC, &addr, version,
			    USB_VSOCK_VERSION_LEN, USB_VSOCK_CTRL_MUST);
}

/*
 * Have usb_vsock_sync_work() run in @delay. A run that was already on its
 * way when the link moved on (an answer, a new hold, a new Sync) finds it
 * is not due yet and waits for the new time. Called with link->mutex.
 */
static void usb_vsock_sync_arm(struct usb_vsock_link *link,
			       unsigned long delay)
{
	link->sync_due = jiffies + delay;
	mod_delayed_work(system_wq, &link->sync_work, delay);
}

/*
 * Send the host's Sync. It is the only one the device may answer: the
 * newest devices take the first Sync they read after their answer as the
 * final one, so a second Sync queued behind the first would become a
 * stale final Sync. Another goes out only once this one is answered or
 * flushed by a device reset. Called with link->mutex.
 */
static void usb_vsock_sync_send(struct usb_vsock_link *link)
{
	unsigned long wait;

	link->sync_held = false;
	link->sync_pending = true;
	link->sync_hurried = false;
	usb_vsock_send_sync(link, USB_VSOCK_CID_ANY, USB_VSOCK_VERSION1);
	wait = min_t(unsigned long,
		     USB_VSOCK_SYNC_WAIT << min(link->sync_tries, 3U),
		     USB_VSOCK_SYNC_WAIT_MAX);
	usb_vsock_sync_arm(link, wait);
}

/*
 * End the connections of the old link: nothing queued for it may reach
 * the new one. Called with link->mutex, from rx_work or probe.
 */
static void usb_vsock_link_down(struct usb_vsock_link *link)
{
	usb_vsock_set_state(link, USB_VSOCK_SYNCING);
	/*
	 * A new session: from here on the old connections can queue
	 * nothing (their epoch is old), and what they queued is dropped.
	 */
	usb_vsock_ctrlq_drop(link, true);
	usb_vsock_transport_reset_link(link);
}

/* Start a handshake from scratch. Called with link->mutex, from rx_work. */
static void usb_vsock_begin_sync(struct usb_vsock_link *link)
{
	usb_vsock_link_down(link);
	usb_vsock_parser_reset(&link->rx);
	usb_vsock_sync_send(link);
}

/*
 * Count a restart the device caused. False when it comes too soon after
 * the others and must wait for the window to end.
 */
static bool usb_vsock_restart_now(struct usb_vsock_link *link)
{
	unsigned long end = link->restarts_at + USB_VSOCK_RESTART_WINDOW;

	/* A window long gone may look current again once jiffies wrapped. */
	if (!link->restarts || time_after_eq(jiffies, end) ||
	    time_before(jiffies, link->restarts_at)) {
		link->restarts_at = jiffies;
		link->restarts = 0;
	}
	if (link->restarts >= USB_VSOCK_RESTARTS)
		return false;
	link->restarts++;
	return true;
}

/*
 * Put off what a restart of the device asks of the host, a Sync of ours
 * (@version < 0) or the final Sync for its answer, until the window ends
 * (usb_vsock_sync_work()). The link is already down: the connections end
 * now, as the device dropped them. A later Sync of the device replaces
 * what waits. Called with link->mutex.
 */
static void usb_vsock_sync_hold(struct usb_vsock_link *link, int version,
				u32 cid)
{
	unsigned long wait;
	long left;

	atomic64_inc(&link->stats.restarts_paced);
	link->held_version = version;
	link->held_cid = cid;
	if (link->sync_held)
		return;
	link->sync_held = true;
	/* Taking the link down may have slept past the window's end. */
	left = link->restarts_at + USB_VSOCK_RESTART_WINDOW - jiffies;
	wait = clamp_t(long, left, 1, USB_VSOCK_RESTART_WINDOW);
	usb_vsock_link_log(link, dev_warn,
			   "device restarts the link too often, holding it down for %u ms\n",
			   jiffies_to_msecs(wait));
	usb_vsock_sync_arm(link, wait);
}

/*
 * The device's answer to our Sync: assign the CID, send the final Sync,
 * go up. The final Sync's payload is exactly the answer's.
 */
static void usb_vsock_sync_answer(struct usb_vsock_link *link, u32 want,
				  int version)
{
	u32 cid;

	cid = usb_vsock_cid_assign(link, want);
	if (!cid) {
		/*
		 * The device waits for a final Sync, and would take another
		 * Sync of ours as one: it is reset instead once the wait is
		 * over (usb_vsock_sync_work()), and asks again.
		 */
		usb_vsock_link_log(link, dev_err,
				   "no free CID for the device\n");
		link->sync_pending = false;
		link->sync_held = false;
		usb_vsock_sync_arm(link, USB_VSOCK_SYNC_WAIT);
		return;
	}
	WRITE_ONCE(link->cid, cid);
	WRITE_ONCE(link->version, version);
	usb_vsock_send_sync(link, cid, version ? USB_VSOCK_VERSION1 :
			    USB_VSOCK_VERSION0);
	link->sync_pending = false;
	link->sync_held = false;
	link->sync_tries = 0;
	cancel_delayed_work(&link->sync_work);
	usb_vsock_set_state(link, USB_VSOCK_UP);
	atomic64_inc(&link->stats.syncs);
	usb_vsock_link_log(link, dev_info, "device CID %u, protocol version %d\n",
			   cid, version);
	usb_vsock_uevent_up(link);
}

/*
 * The device restarted the link: it waits for a host Sync (@version < 0)
 * or, having answered one of ours, for the final Sync with the CID it
 * asked for. Its connections end now; the host's part waits for the pace
 * if the device restarts too often. Called with link->mutex, from rx_work.
 */
static void usb_vsock_restart(struct usb_vsock_link *link, int version,
			      u32 cid)
{
	if (!usb_vsock_restart_now(link)) {
		usb_vsock_link_down(link);
		usb_vsock_parser_reset(&link->rx);
		usb_vsock_sync_hold(link, version, cid);
	} else if (version < 0) {
		usb_vsock_begin_sync(link);
	} else {
		usb_vsock_link_down(link);
		usb_vsock_sync_answer(link, cid, version);
	}
}

/*
 * The window ended: do what the device's last restart asked, which opens
 * a new window with that restart in it.
 */
static void usb_vsock_sync_release(struct usb_vsock_link *link)
{
	link->sync_held = false;
	link->restarts_at = jiffies;
	link->restarts = 1;
	if (link->held_version < 0)
		usb_vsock_sync_send(link);
	else
		usb_vsock_sync_answer(link, link->held_cid, link->held_version);
}

/*
 * The device left our Sync unanswered for too long: it gave up on an
 * earlier link (a final Sync it did not expect) or lost the Sync. Sending
 * another could make a stale one; a device reset instead makes it start
 * afresh and drop what it holds, and post_reset begins a new handshake.
 */
static void usb_vsock_sync_work(struct work_struct *work)
{
	struct usb_vsock_link *link =
		container_of(to_delayed_work(work), struct usb_vsock_link,
			     sync_work);
	unsigned long next;

	mutex_lock(&link->mutex);
	if (link->state != USB_VSOCK_SYNCING)
		goto out;
	if (time_before(jiffies, link->sync_due)) {
		mod_delayed_work(system_wq, &link->sync_work,
				 link->sync_due - jiffies);
		goto out;
	}
	if (link->sync_held) {
		usb_vsock_sync_release(link);
		goto out;
	}
	next = link->reset_at + USB_VSOCK_SYNC_WAIT;
	/* Never a reset sooner than 5 s after the last, as ffx. */
	if (atomic64_read(&link->stats.dev_resets) &&
	    time_before(jiffies, next)) {
		usb_vsock_sync_arm(link, next - jiffies);
		goto out;
	}
	usb_vsock_link_log(link, dev_warn,
			   "no answer to the host's Sync, resetting the device\n");
	link->sync_tries++;
	link->reset_at = jiffies;
	usb_vsock_link_reset_device(link);
out:
	mutex_unlock(&link->mutex);
}

/* The version the device answered with, or -1 when it is no answer. */
static int usb_vsock_sync_version(const struct usb_vsock_pkt *pkt)
{
	if (pkt->len != USB_VSOCK_VERSION_LEN)
		return -1;
	if (!memcmp(pkt->payload, USB_VSOCK_VERSION1, USB_VSOCK_VERSION_LEN))
		return 1;
	if (!memcmp(pkt->payload, USB_VSOCK_VERSION0, USB_VSOCK_VERSION_LEN))
		return 0;
	return -1;
}

static bool usb_vsock_is_reset_sync(const struct usb_vsock_pkt *pkt)
{
	return pkt->len == USB_VSOCK_RESET_SYNC_LEN &&
	       !memcmp(pkt->payload, USB_VSOCK_RESET_SYNC,
		       USB_VSOCK_RESET_SYNC_LEN);
}

/*
 * The device sent its reset Sync while ours is out: it waits for a host
 * Sync. Ours is queued behind whatever made it say so (our packets of the
 * old link), and then answered at once, or the device lost it (its
 * service restarted after reading it). Which, only time tells: answering
 * with another Sync would make a stale one in the first case, so the
 * device gets a second, then a reset, which flushes ours either way. A
 * device that keeps sending reset Syncs hurries the reset only once.
 */
static void usb_vsock_sync_hurry(struct usb_vsock_link *link)
{
	if (link->sync_hurried)
		return;
	link->sync_hurried = true;
	usb_vsock_sync_arm(link, USB_VSOCK_SYNC_WAIT_RESET);
}

static void usb_vsock_recv_sync(struct usb_vsock_link *link,
				const struct usb_vsock_pkt *pkt)
{
	int version = usb_vsock_sync_version(pkt);
	bool reset = usb_vsock_is_reset_sync(pkt);

	if ((version < 0 && !reset) ||
	    pkt->addr.host_cid != USB_VSOCK_CID_HOST) {
		atomic64_inc(&link->stats.rx_errors);
		usb_vsock_link_log(link, dev_warn,
				   "ignoring Sync for host CID %u, version \"%*pE\"\n",
				   pkt->addr.host_cid, (int)pkt->len,
				   pkt->payload);
		return;
	}

	if (reset)
		version = -1;
	mutex_lock(&link->mutex);
	switch (link->state) {
	case USB_VSOCK_SYNCING:
		if (link->sync_held)
			usb_vsock_sync_hold(link, version, pkt->addr.device_cid);
		else if (reset && link->sync_pending)
			usb_vsock_sync_hurry(link);
		else if (reset)
			usb_vsock_sync_send(link);
		else if (link->sync_pending)
			usb_vsock_sync_answer(link, pkt->addr.device_cid,
					      version);
		else
			atomic64_inc(&link->stats.rx_dropped);
		break;
	case USB_VSOCK_UP:
		/*
		 * The device dropped its connections and waits: for a host
		 * Sync after a reset Sync, for the final one after an
		 * answer, which it can only have sent to a Sync of ours.
		 */
		atomic64_inc(&link->stats.resyncs);
		usb_vsock_link_log(link, dev_info,
				   "device restarted the link, resetting its connections\n");
		usb_vsock_restart(link, version, pkt->addr.device_cid);
		break;
	case USB_VSOCK_GONE:
		break;
	}
	mutex_unlock(&link->mutex);
}

/**
 * usb_vsock_link_init() - set up the handshake machinery of a new link
 * @link: the link, before anything can run on it
 */
void usb_vsock_link_init(struct usb_vsock_link *link)
{
	mutex_init(&link->mutex);
	INIT_DELAYED_WORK(&link->sync_work, usb_vsock_sync_work);
	ratelimit_state_init(&link->log_rs, DEFAULT_RATELIMIT_INTERVAL,
			     DEFAULT_RATELIMIT_BURST);
	usb_vsock_uevent_init(link);
	spin_lock_init(&link->ctrl_lock);
	INIT_LIST_HEAD(&link->ctrlq);
	spin_lock_init(&link->conns_lock);
	INIT_LIST_HEAD(&link->conns);
	INIT_LIST_HEAD(&link->accepts);
}

/**
 * usb_vsock_link_start() - begin the first handshake
 * @link: a link whose IN URBs are not submitted yet, so that nothing but
 *	this function touches its parser
 */
void usb_vsock_link_start(struct usb_vsock_link *link)
{
	mutex_lock(&link->mutex);
	usb_vsock_begin_sync(link);
	mutex_unlock(&link->mutex);
}

/**
 * usb_vsock_link_restart() - start over after the device was reset
 * @link: the link; called from rx_work, whose URBs held nothing across
 *	the reset
 *
 * The device dropped its connections and anything of ours it held, the
 * Sync included: a new handshake begins.
 */
void usb_vsock_link_restart(struct usb_vsock_link *link)
{
	mutex_lock(&link->mutex);
	if (link->state == USB_VSOCK_UP)
		atomic64_inc(&link->stats.resyncs);
	if (link->state != USB_VSOCK_GONE)
		usb_vsock_begin_sync(link);
	mutex_unlock(&link->mutex);
}

/**
 * usb_vsock_link_stop() - take a link out of service for good
 * @link: the link
 *
 * Its CID goes, no handshake runs any more, and no new connection can
 * attach. The caller then stops the URBs and resets the connections.
 */
void usb_vsock_link_stop(struct usb_vsock_link *link)
{
	mutex_lock(&link->mutex);
	usb_vsock_set_state(link, USB_VSOCK_GONE);
	usb_vsock_cid_release(link);
	mutex_unlock(&link->mutex);
	cancel_delayed_work_sync(&link->sync_work);
	cancel_delayed_work_sync(&link->uevent_work);
}

/**
 * usb_vsock_link_resync() - recover from a broken stream
 * @link: the link
 * @why: for the log
 *
 * Bytes were lost or garbled: every connection is reset and the handshake
 * runs again. Before the link is up, only the parser starts over, since
 * what precedes the device's Sync is ignored anyway. Called from rx_work.
 */
void usb_vsock_link_resync(struct usb_vsock_link *link, const char *why)
{
	mutex_lock(&link->mutex);
	switch (link->state) {
	case USB_VSOCK_UP:
		atomic64_inc(&link->stats.resyncs);
		usb_vsock_link_log(link, dev_warn,
				   "%s, resynchronizing the link\n", why);
		usb_vsock_restart(link, -1, 0);
		break;
	case USB_VSOCK_SYNCING:
		usb_vsock_parser_reset(&link->rx);
		break;
	case USB_VSOCK_GONE:
		break;
	}
	mutex_unlock(&link->mutex);
}

/**
 * usb_vsock_link_recv() - dispatch one received, well-formed packet
 * @link: the link
 * @pkt: the packet; its payload is valid until the function returns
 *
 * Called from rx_work only, in the order the packets arrived.
 */
void usb_vsock_link_recv(struct usb_vsock_link *link,
			 const struct usb_vsock_pkt *pkt)
{
	trace_usb_vsock_rx_pkt(&link->intf->dev, pkt->type, &pkt->addr,
			       pkt->len);
	dev_dbg(&link->intf->dev, "rx '%c' device %u:%u host %u:%u len %u\n",
		pkt->type, pkt->addr.device_cid, pkt->addr.device_port,
		pkt->addr.host_cid, pkt->addr.host_port, pkt->len);
	atomic64_inc(&link->stats.rx_packets);
	switch (pkt->type) {
	case USB_VSOCK_SYNC:
		usb_vsock_recv_sync(link, pkt);
		return;
	case USB_VSOCK_ECHO:
		/* Answered in any state, the handshake included. */
		usb_vsock_link_send(link, NULL, USB_VSOCK_ECHO_REPLY, &pkt->addr,
				    pkt->payload, pkt->len, USB_VSOCK_CTRL_REPLY);
		return;
	case USB_VSOCK_ECHO_REPLY:
		/* The host sends no Echo: nothing waits for a reply. */
		return;
	case USB_VSOCK_PAUSE_PKT:
		/* Fuchsia ignores a bad Pause: it costs only itself. */
		if (usb_vsock_pkt_pause(pkt) < 0) {
			atomic64_inc(&link->stats.rx_errors);
			usb_vsock_link_log(link, dev_warn,
					   "Pause with a bad payload of %u bytes, dropped\n",
					   pkt->len);
			return;
		}
		break;
	default:
		break;
	}

	if (READ_ONCE(link->state) != USB_VSOCK_UP) {
		atomic64_inc(&link->stats.rx_dropped);
		dev_dbg_ratelimited(&link->intf->dev,
				    "'%c' before the handshake, ignored\n",
				    pkt->type);
		return;
	}
	usb_vsock_transport_recv(link, pkt);
}
