// SPDX-License-Identifier: GPL-2.0
/*
 * usb_vsock tracepoints: the one place that instantiates them.
 */

#define CREATE_TRACE_POINTS
#include "usb_vsock/trace.h"

#define USB_VSOCK_TRACE_RAW struct trace_event_raw_usb_vsock_pkt_class

/* A record without holes: every byte of it is assigned (trace.h). */
static_assert(offsetof(USB_VSOCK_TRACE_RAW, __data) ==
	      sizeof_field(USB_VSOCK_TRACE_RAW, ent) +
	      sizeof_field(USB_VSOCK_TRACE_RAW, dev) +
	      sizeof_field(USB_VSOCK_TRACE_RAW, type) +
	      sizeof_field(USB_VSOCK_TRACE_RAW, device_cid) +
	      sizeof_field(USB_VSOCK_TRACE_RAW, host_cid) +
	      sizeof_field(USB_VSOCK_TRACE_RAW, device_port) +
	      sizeof_field(USB_VSOCK_TRACE_RAW, host_port) +
	      sizeof_field(USB_VSOCK_TRACE_RAW, len));
