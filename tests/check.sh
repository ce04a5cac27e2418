#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The test command (make check): builds the test kernel if it is not cached,
# runs the harness's self-test and the clean-build checks, the KUnit
# suites, the emulator's self-test and the integration tests on the debug
# kernel and on Debian's stock 6.1 and 6.12 kernels, and the short stress
# run (hostile device, unplug cycles, load) on the debug kernel, each in a
# VM. Every part runs even when an earlier one fails. How parts are judged
# and summed up: tests/check-lib.sh. The last line counts what tests the
# driver:
#   usb_vsock: N passed, N failed
# and the exit status is 0 only if no part failed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
logdir=${USB_VSOCK_LOGDIR:-/tmp/usb_vsock-logs}
mkdir -p "$logdir"
export USB_VSOCK_LOGDIR=$logdir
# shellcheck source=tests/check-lib.sh
. "$here/check-lib.sh"
check_init "$logdir"

start=$(date +%s)
part rig harness "$here/harness-selftest.sh"
if KB=$("$here/vm/build-kernel.sh"); then
	export KB
	part rig lint "$here/lint.sh"
	part rig dkms "$here/dkms.sh"
	part driver kunit "$here/vm/kunit.sh"
	part rig emu-selftest "$here/emu/selftest.sh"
	for k in debug 6.1 6.12; do
		part driver "integration-$k" "$here/vm/integration.sh" "$k"
	done
	part driver stress "$here/stress/stress.sh" short
else
	echo "check: the test kernel did not build"
	part rig lint "$here/lint.sh"
	bad_parts+=(kernel)
	total[driver.f]=$((total[driver.f] + 1))
fi

echo "check: took $(($(date +%s) - start)) s; logs in $logdir"
check_summary
