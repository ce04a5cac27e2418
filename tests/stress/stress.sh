#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# stress.sh [short|long]: fault and load tests of usb_vsock in a VM running
# the debug test kernel (KASAN, lockdep, kmemleak), driven by
# stress-guest.sh: a hostile emulated device (usb_vsock_emu "hostile"
# modes) on dummy_udc.0 while a well-behaved one on dummy_udc.1 keeps
# serving echo, unplug cycles with connections open, many connections,
# long checksummed transfers, slow readers, module lifetime, and bounded
# memory. Each hostile mode's garbage must show in the driver's counters
# (rx_errors, resyncs, rx_dropped) and its replies at the device, and the
# emulators must see no protocol violation by the host. short (default)
# takes a few minutes under TCG; long runs 1,003,299 hostile transfers
# (150,000 of each mode that feeds the parser garbage: random, mutate,
# magic, length, type; 20,000 each of sync, connect (and 600 more, paced
# so that the host may drop no reply), data, echo and lengths; 2049 of
# every length; 150,000 of random modes; 50 Pauses; 600 Echo floods of the
# memory check), 100 unplug cycles, 20 emulators killed mid-handshake,
# 1,000 connections open at once, a 1 GiB transfer to the second device
# meanwhile and 16 slow readers; its hostile part alone takes about
# 1 h 15 min under TCG (60 to 320 transfers a second), the whole about
# 1 h 45 min on a quiet machine. Ends with
#   usb_vsock stress: N passed, N failed
# where failed also counts, as 1 each, a build failure, a VM that hung or
# died, a module that failed to load, kernel splats, a taint or a checker
# switched off (guest_health in tests/vm/lib.sh), and each test of
# stress.tests that did not run, ran twice or is not listed there.
#
# Environment: USB_VSOCK_LOGDIR, VM_TIMEOUT (see run-vm.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
vm=$top/tests/vm
mode=${1:-short}
case "$mode" in
short | long) ;;
*) echo "usage: $0 [short|long]" >&2; exit 2 ;;
esac
target=debug
# shellcheck source=tests/vm/lib.sh
. "$vm/lib.sh"
vm_run_setup stress "stress-$mode" stress
use_host_programs
prepare "$target" "$bin" "$buildlog" || { problem "cannot build"; finish; }
if [ "$mode" = long ]; then
	cat > "$bin/stress.conf" <<-EOC
	PARSE=150000
	HOSTILE=20000
	MIX=150000
	UNPLUGS=100
	KILLS=20
	CONNS=1000
	BIG=1073741824
	RBIG=67108864
	SLOW=16
	SLOW_BYTES=1048576
	FLOOD=30
	HELD=64
	TT=86400
	EOC
	timeout=${VM_TIMEOUT:-86400}
else
	cat > "$bin/stress.conf" <<-EOC
	PARSE=100
	HOSTILE=100
	MIX=2000
	UNPLUGS=2
	KILLS=2
	CONNS=32
	BIG=4194304
	RBIG=4194304
	SLOW=4
	SLOW_BYTES=393216
	FLOOD=30
	HELD=8
	TT=300
	EOC
	timeout=${VM_TIMEOUT:-1800}
fi

echo "stress: running the VM (console: $console)" >&2
t0=$(date +%s)
vm_ok=1
VM_TIMEOUT=$timeout "$vm/run-vm.sh" "$kb" "$here/stress-guest.sh" \
	"$console" "$bin/module/usb_vsock.ko" "$bin/usb_vsock_emu" \
	"$bin/vsock_tool" "$bin/stress.conf" "$vm/guest-lib.sh" || vm_ok=0
echo "stress: VM took $(($(date +%s) - t0)) s" >&2

count_tests stress "$console" "$here/stress.tests"
guest_verdict "$console" "$vm_ok" "$splats" "$kb"
finish
