/* SPDX-License-Identifier: GPL-2.0 */
/*
 * usb_vsock transmit builder: packs packets into bulk OUT transfers.
 */
#ifndef _USB_VSOCK_BUILDER_H
#define _USB_VSOCK_BUILDER_H

#include <linux/gfp.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/uio.h>
#include <linux/wait.h>

#include "usb_vsock/packet.h"

/**
 * struct usb_vsock_builder - the transfer being filled
 * @lock: protects every field below; taken with interrupts off because the
 *	wait queues are waited on under it
 * @space_wq: writers wait here for room
 * @data_wq: the submitter waits here for data
 * @buf: the transfer being filled, @size bytes
 * @size: capacity of every transfer buffer: the link's transfer size
 * @maxp: wMaxPacketSize of the OUT endpoint, or 0 when no length is bad
 * @len: bytes of whole packets in @buf
 * @prio_waiting: writers of control packets waiting for room; data waits
 *	for them, so bulk data cannot starve control packets
 * @sealed: @buf ends with a Sync, which must end its transfer
 * @dead: the link is going away; every waiter fails
 * @epoch: the link session the packets written belong to; a reset begins
 *	the next one, and stream data written for an older one is refused
 * @carries: transfers whose end was moved to the next one (see
 *	usb_vsock_builder_take())
 * @packets: packets written
 */
struct usb_vsock_builder {
	spinlock_t lock;	/* protects the fields below */
	wait_queue_head_t space_wq;
	wait_queue_head_t data_wq;
	u8 *buf;
	size_t size;
	size_t maxp;
	size_t len;
	unsigned int prio_waiting;
	bool sealed;
	bool dead;
	u32 epoch;
	u64 carries;
	u64 packets;
};

int usb_vsock_builder_init(struct usb_vsock_builder *b, size_t size,
			   size_t maxp, gfp_t gfp);
void usb_vsock_builder_destroy(struct usb_vsock_builder *b);
int usb_vsock_builder_write(struct usb_vsock_builder *b,
			    enum usb_vsock_type type,
			    const struct usb_vsock_addr *addr,
			    const void *payload, u32 len, long *timeo);
ssize_t usb_vsock_builder_write_data(struct usb_vsock_builder *b,
				     const u32 *epoch,
				     const struct usb_vsock_addr *addr,
				     struct iov_iter *from, long *timeo);
size_t usb_vsock_builder_data_room(struct usb_vsock_builder *b);
size_t usb_vsock_builder_take(struct usb_vsock_builder *b, u8 **buf);
long usb_vsock_builder_wait_data(struct usb_vsock_builder *b, long timeout);
bool usb_vsock_builder_bad_len(const struct usb_vsock_builder *b, size_t len);
void usb_vsock_builder_kill(struct usb_vsock_builder *b);
void usb_vsock_builder_reset(struct usb_vsock_builder *b);
u32 usb_vsock_builder_epoch(struct usb_vsock_builder *b);

#endif /* _USB_VSOCK_BUILDER_H */
