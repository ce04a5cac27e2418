#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench.sh: the usb_vsock benchmark (make bench; not part of make check).
# One VM boot of Debian's stock 6.12 kernel (TCG), one dummy_hcd link, and
# side by side, medians of RUNS runs:
#   raw bulk via usbfs (8 async URBs) against the emulator in --raw mode,
#     1024-byte and 16 KiB transfers, IN and OUT: the link limit;
#   usb_vsock stream throughput (1, 8, 64 streams, both directions),
#     1-byte RTT and connects/s, with default module parameters and with
#     ffx-like ones (tx_urbs=1 rx_urbs=2), with CPU seconds per GiB;
#   TCP over a CDC-NCM gadget (gadget end in its own network namespace),
#     1 and 8 streams both directions and 1-byte RTT (vsock_bench tcp-*).
# Prints a table and writes $USB_VSOCK_LOGDIR/bench.csv.
#
# Environment: USB_VSOCK_LOGDIR (default /tmp/usb_vsock-logs), SECS (per
# measurement, default 2), RUNS (default 3), RTT_COUNT (default 500),
# VM_TIMEOUT. PROFILE=1 runs instead, once each, raw OUT at 1 KiB and
# usb_vsock 1 and 64 streams both ways under perf (system-wide cpu-clock
# samples, by process and by symbol), with context switches and USB
# transfers per MiB: where the time goes; PARAMS gives it module
# parameters (e.g. PARAMS="tx_urbs=8"). Note: under TCG every figure is
# far below real hardware; the ratios are what matters.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
vm=$top/tests/vm
logdir=${USB_VSOCK_LOGDIR:-/tmp/usb_vsock-logs}
mkdir -p "$logdir"
logdir=$(cd "$logdir" && pwd)
buildlog=$logdir/bench-build.log
console=$logdir/bench-console.log
csv=$logdir/bench.csv
bin=$logdir/bench-bin
rm -rf "$buildlog" "$console" "$bin"
mkdir -p "$bin"

# shellcheck source=tests/vm/lib.sh
. "$vm/lib.sh"
kb=
prepare 6.12 "$bin" "$buildlog" || { echo "bench: cannot build" >&2; exit 1; }
if ! make -s -C "$top/tests/tools" O="$bin" >>"$buildlog" 2>&1 ||
   ! gcc -static -O2 -Wall -Wextra -Werror -pthread -o "$bin/vsock_bench" \
	"$here/vsock_bench.c" >>"$buildlog" 2>&1; then
	tail -n 20 "$buildlog" >&2
	echo "bench: cannot build the benchmark tools" >&2
	exit 1
fi
runs=${RUNS:-3}
{
	echo "SECS=${SECS:-2}"
	echo "RUNS=$runs"
	echo "RTT_COUNT=${RTT_COUNT:-500}"
	echo "PROFILE=${PROFILE:-0}"
	echo "PARAMS=\"${PARAMS:-}\""
} > "$bin/bench.conf"

# iproute2's ip (netns) for the CDC-NCM comparison; busybox's has no netns.
VM_HOST_BINS="/usr/sbin/ip"
if [ "${PROFILE:-0}" = 1 ]; then
	VM_HOST_BINS="$VM_HOST_BINS $(command -v perf)"
fi
export VM_HOST_BINS
echo "bench: running the VM (console: $console)" >&2
t0=$(date +%s)
VM_TIMEOUT=${VM_TIMEOUT:-1800} "$vm/run-vm.sh" "$kb" "$here/bench-guest.sh" \
	"$console" "$bin/module/usb_vsock.ko" "$bin/usb_vsock_emu" \
	"$bin/usbfs_host" "$bin/vsock_bench" "$bin/bench.conf" ||
	echo "bench: the VM run failed (console: $console)" >&2
echo "bench: VM took $(($(date +%s) - t0)) s" >&2
tr -d '\r' < "$console" | grep -q '^BENCH-DONE' ||
	echo "bench: the guest did not finish; partial results" >&2

if [ "${PROFILE:-0}" = 1 ]; then
	tr -d '\r' < "$console" | sed -n 's/^PROFILE //p'
	exit 0
fi
tr -d '\r' < "$console" | grep -E '^BENCH [a-z0-9_]+ [0-9]+ ' |
	"$here/bench-report.awk" -v csv="$csv" -v runs="$runs" \
	-v ncmnote="$(tr -d '\r' < "$console" |
		      sed -n 's/^BENCH-NCM \(n\/a: .*\)/\1/p' | head -n 1)"
echo "bench: CSV in $csv" >&2
tr -d '\r' < "$console" | grep '^BENCH-NCM' | sed 's/^/bench: /' >&2 || true
tr -d '\r' < "$console" | grep '^STAT ' | sed 's/^/bench: /' >&2 || true
