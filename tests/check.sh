#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The test command (make check): builds the test kernel if it is not cached,
# runs the clean-build checks, the KUnit suites, the emulator's self-test
# and the integration tests on the debug kernel and on Debian's stock 6.1
# and 6.12 kernels, and the short stress run (hostile device, unplug
# cycles, load) on the debug kernel, each in a VM, and sums up their
# summary lines. Every part runs even when an earlier one fails.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
logdir=${USB_VSOCK_LOGDIR:-/tmp/usb_vsock-logs}
mkdir -p "$logdir"
export USB_VSOCK_LOGDIR=$logdir
passed=0
failed=0

# Run a part, show its output, and add up its "N passed, N failed" line.
part() {
	local out=$logdir/part-$1.out line p f
	shift
	"$@" 2>&1 | tee "$out"
	line=$(grep -E '^usb_vsock [^:]+: [0-9]+ passed, [0-9]+ failed' "$out" |
		tail -n 1)
	if [ -z "$line" ]; then
		echo "check: $* printed no summary line"
		failed=$((failed + 1))
		return
	fi
	p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
	f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
	passed=$((passed + p))
	failed=$((failed + f))
}

start=$(date +%s)
if KB=$("$here/vm/build-kernel.sh"); then
	export KB
	part lint "$here/lint.sh"
	part dkms "$here/dkms.sh"
	part kunit "$here/vm/kunit.sh"
	part emu "$here/emu/selftest.sh"
	for k in debug 6.1 6.12; do
		part "integration-$k" "$here/vm/integration.sh" "$k"
	done
	part stress "$here/stress/stress.sh" short
else
	echo "check: the test kernel did not build"
	failed=$((failed + 1))
	part lint "$here/lint.sh"
fi

echo "check: took $(( $(date +%s) - start )) s; logs in $logdir"
echo "usb_vsock: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
