#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Self-test of the device emulator, without the usb_vsock driver: builds
# usb_vsock_emu and usbfs_host (static), boots the test kernel with
# run-vm.sh, and runs selftest-guest.sh there (dummy_hcd with two UDCs,
# libcomposite, usb_f_fs): protocol v1 and v0, no ZLPs, a packet split
# across OUT transfers, unplug/replug, two emulators at once, raw
# throughput. Any kernel splat in the console log, a taint or a checker
# switched off (guest_health in tests/vm/lib.sh), and each check of
# selftest.tests that did not run, ran twice or is not listed there
# count as failures.
#
# usage: tests/emu/selftest.sh
# Ends with "usb_vsock emu selftest: N passed, N failed"; exit 0 if all
# passed. The console log goes to $USB_VSOCK_LOGDIR (/tmp/usb_vsock-logs).
# Environment: KB (test kernel build dir, default: build-kernel.sh),
# VM_TIMEOUT (s, default 900).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
logdir=${USB_VSOCK_LOGDIR:-/tmp/usb_vsock-logs}
mkdir -p "$logdir"
log=$logdir/emu-selftest.log
passed=0
failed=0
# shellcheck source=tests/vm/lib.sh
. "$top/tests/vm/lib.sh"

finish() {
	echo "usb_vsock emu selftest: $passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
	exit
}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if ! make -s -C "$here" O="$out" || ! make -s -C "$top/tests/tools" O="$out"; then
	echo "selftest: build failed"
	failed=1
	finish
fi
if [ -z "${KB:-}" ] && ! KB=$("$top/tests/vm/build-kernel.sh"); then
	echo "selftest: no test kernel"
	failed=1
	finish
fi

start=$(date +%s)
if ! VM_TIMEOUT=${VM_TIMEOUT:-900} "$top/tests/vm/run-vm.sh" "$KB" \
	"$here/selftest-guest.sh" "$log" "$out/usb_vsock_emu" \
	"$out/usbfs_host"; then
	echo "selftest: the VM run failed"
	failed=$((failed + 1))
fi
echo "selftest: VM run took $(($(date +%s) - start)) s; console log $log"

# Each check once, as selftest.tests lists them (without usbfs_host's
# timings).
run_what=selftest
problem() { echo "selftest: $*"; failed=$((failed + 1)); }
count_results selftest "$here/selftest.tests" < <(tr -d '\r' < "$log" |
	sed -E -n -e 's/ \([0-9]+ ms\)$//' \
		  -e 's/^SELFTEST: ok (.*)/\1 PASS/p' \
		  -e 's/^SELFTEST: FAIL (.*)/\1 FAIL/p')
grep -E '^(raw-in|raw-out|out-probe|zlp-probe):' "$log" | tr -d '\r' |
	sed 's/^/selftest: /'
if ! tr -d '\r' < "$log" | grep -q '^SELFTEST-DONE'; then
	problem "the guest did not finish"
else
	guest_health "$log" "$KB" "$TAINT_OK"
fi
if ! "$top/tests/vm/check-log.sh" "$log"; then
	problem "kernel splats in the console log"
fi
finish
