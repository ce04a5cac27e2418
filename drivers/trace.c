// SPDX-License-Identifier: GPL-2.0
/*
 * usb_vsock tracepoints: the one place that instantiates them.
 */

#define CREATE_TRACE_POINTS
#include "usb_vsock/trace.h"
