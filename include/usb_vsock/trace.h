/* SPDX-License-Identifier: GPL-2.0 */
/*
 * usb_vsock tracepoints: every packet sent and received, so that
 * perf trace or trace-cmd can show the wire.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM usb_vsock

#if !defined(_USB_VSOCK_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _USB_VSOCK_TRACE_H

#include <linux/device.h>
#include <linux/string.h>
#include <linux/tracepoint.h>

#include "usb_vsock/packet.h"

/*
 * The device name is copied, since __assign_str() changed in 6.10, and
 * padded; the type is a u32, so that the record has no hole: a record
 * reaches userspace whole, and must not carry stale kernel bytes.
 */
#define USB_VSOCK_TRACE_DEV	32

DECLARE_EVENT_CLASS(usb_vsock_pkt_class,
		    TP_PROTO(const struct device *dev, u8 type,
			     const struct usb_vsock_addr *addr, u32 len),
		    TP_ARGS(dev, type, addr, len),
		    TP_STRUCT__entry(__array(char, dev, USB_VSOCK_TRACE_DEV)
				     __field(u32, type)
				     __field(u32, device_cid)
				     __field(u32, host_cid)
				     __field(u32, device_port)
				     __field(u32, host_port)
				     __field(u32, len)),
		    TP_fast_assign(strscpy_pad(__entry->dev, dev_name(dev),
					       USB_VSOCK_TRACE_DEV);
				   __entry->type = type;
				   __entry->device_cid = addr->device_cid;
				   __entry->host_cid = addr->host_cid;
				   __entry->device_port = addr->device_port;
				   __entry->host_port = addr->host_port;
				   __entry->len = len;),
		    TP_printk("%s %c device %u:%u host %u:%u len %u",
			      __entry->dev, __entry->type,
			      __entry->device_cid, __entry->device_port,
			      __entry->host_cid, __entry->host_port,
			      __entry->len));

DEFINE_EVENT(usb_vsock_pkt_class, usb_vsock_rx_pkt,
	     TP_PROTO(const struct device *dev, u8 type,
		      const struct usb_vsock_addr *addr, u32 len),
	     TP_ARGS(dev, type, addr, len));

DEFINE_EVENT(usb_vsock_pkt_class, usb_vsock_tx_pkt,
	     TP_PROTO(const struct device *dev, u8 type,
		      const struct usb_vsock_addr *addr, u32 len),
	     TP_ARGS(dev, type, addr, len));

#endif /* _USB_VSOCK_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH usb_vsock
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
