/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Wire format of the Fuchsia "usb vsock bridge" protocol.
 *
 * A bulk transfer carries one or more whole packets back to back. Every
 * packet is a 24-byte little-endian header followed by payload_len bytes.
 * Shared by the kernel driver and the userspace test tools.
 */
#ifndef _UAPI_LINUX_USB_VSOCK_H
#define _UAPI_LINUX_USB_VSOCK_H

#include <linux/types.h>

/* USB identity of the bridge interface. */
#define USB_VSOCK_VENDOR_GOOGLE		0x18d1
#define USB_VSOCK_IF_CLASS		0xff	/* vendor specific */
#define USB_VSOCK_IF_SUBCLASS		0x43	/* VSOCK_BRIDGE */
#define USB_VSOCK_IF_PROTOCOL		0x00

/*
 * Largest bulk transfer a Fuchsia peer reads or writes. A transfer holds
 * whole packets only, so this also bounds the size of one packet.
 */
#define USB_VSOCK_MTU			1024

/* Well-known context IDs. */
#define USB_VSOCK_CID_HOST		2
#define USB_VSOCK_CID_ANY		0xffffffffU

/* The first three bytes of every header. */
#define USB_VSOCK_MAGIC			"ffx"
#define USB_VSOCK_MAGIC_LEN		3

/* Sync payloads: the protocol version a side speaks. */
#define USB_VSOCK_VERSION0		"vsock:0"
#define USB_VSOCK_VERSION1		"vsock:1"
#define USB_VSOCK_VERSION_LEN		7

/*
 * The "reset Sync" of the newest devices (version 2 with nonce 0): sent
 * unprompted, it says the device waits for a host Sync.
 */
#define USB_VSOCK_RESET_SYNC		"vsock:2:0"
#define USB_VSOCK_RESET_SYNC_LEN	9

/* Pause payload (protocol version 1 and later): one byte. */
#define USB_VSOCK_UNPAUSE		0
#define USB_VSOCK_PAUSE			1

/**
 * enum usb_vsock_type - packet types, as the ASCII letter on the wire
 * @USB_VSOCK_SYNC: link (re)synchronization; payload is a version magic
 * @USB_VSOCK_ECHO: the peer answers with an EchoReply of the same contents
 * @USB_VSOCK_ECHO_REPLY: answer to an Echo
 * @USB_VSOCK_CONNECT: open a connection for the address quad
 * @USB_VSOCK_ACCEPT: accept a pending Connect
 * @USB_VSOCK_RESET: refuse, abort, or acknowledge the end of a connection
 * @USB_VSOCK_FINISH: the sender is done with the connection
 * @USB_VSOCK_DATA: stream data; an all-zero quad is the control stream
 * @USB_VSOCK_PAUSE_PKT: flow control hint, one byte (v1 only)
 */
enum usb_vsock_type {
	USB_VSOCK_SYNC		= 'S',
	USB_VSOCK_ECHO		= 'E',
	USB_VSOCK_ECHO_REPLY	= 'e',
	USB_VSOCK_CONNECT	= 'C',
	USB_VSOCK_ACCEPT	= 'A',
	USB_VSOCK_RESET		= 'R',
	USB_VSOCK_FINISH	= 'F',
	USB_VSOCK_DATA		= 'D',
	USB_VSOCK_PAUSE_PKT	= 'X',
};

/**
 * struct usb_vsock_hdr - the header in front of every packet
 * @magic: USB_VSOCK_MAGIC, not NUL terminated
 * @type: one of &enum usb_vsock_type
 * @device_cid: context ID on the device side
 * @host_cid: context ID on the host side
 * @device_port: port on the device side
 * @host_port: port on the host side
 * @payload_len: number of payload bytes that follow the header
 */
struct usb_vsock_hdr {
	__u8	magic[USB_VSOCK_MAGIC_LEN];
	__u8	type;
	__le32	device_cid;
	__le32	host_cid;
	__le32	device_port;
	__le32	host_port;
	__le32	payload_len;
} __attribute__((packed));

#define USB_VSOCK_HDR_LEN		24

/* The largest payload one packet can carry in a USB_VSOCK_MTU transfer. */
#define USB_VSOCK_MAX_PAYLOAD		(USB_VSOCK_MTU - USB_VSOCK_HDR_LEN)

#endif /* _UAPI_LINUX_USB_VSOCK_H */
