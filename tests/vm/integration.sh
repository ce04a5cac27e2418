#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# integration.sh [debug|6.1|6.12]: integration tests in a VM running the
# debug test kernel (default) or Debian's stock 6.1 or 6.12 kernel, with
# that kernel's own dummy_hcd, libcomposite, usb_f_fs and vsock modules:
# usb_vsock.ko with emulated Fuchsia devices (tests/emu) on dummy_hcd,
# driven by integration-guest.sh. Ends with
#   usb_vsock integration (KERNEL): N passed, N failed
# where failed also counts, as 1 each, a build failure, a VM that hung or
# died, a module that failed to load, kernel splats (KASAN, lockdep,
# kmemleak...), a taint or a checker switched off (guest_health in lib.sh),
# and each test of integration.tests that did not run, ran twice or is
# not listed there. Exit status 0 only if nothing failed and something passed.
#
# Environment: USB_VSOCK_LOGDIR, VM_TIMEOUT (see run-vm.sh; default 1800 s,
# 2700 s on the debug kernel), BIG (bytes of the long transfers, default
# 64 MiB), GEN_BIG (of those against each device generation, the same).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
target=${1:-debug}
# shellcheck source=tests/vm/lib.sh
. "$here/lib.sh"
vm_run_setup integration "integration-$target" "integration ($target)"
use_host_programs
prepare "$target" "$bin" "$buildlog" || { problem "cannot build"; finish; }
big=${BIG:-67108864}
printf 'BIG=%s\nGEN_BIG=%s\n' "$big" "${GEN_BIG:-$big}" > "$bin/itest.conf"
# The debug kernel moves 64 MiB in up to two minutes under TCG, and the
# run holds eight such transfers: it takes over 20 minutes there.
timeout=1800
[ "$target" = debug ] && timeout=2700

echo "integration: running the VM (console: $console)" >&2
t0=$(date +%s)
vm_ok=1
VM_TIMEOUT=${VM_TIMEOUT:-$timeout} "$here/run-vm.sh" "$kb" \
	"$here/integration-guest.sh" "$console" "$bin/module/usb_vsock.ko" \
	"$bin/usb_vsock_emu" "$bin/vsock_tool" "$bin/itest.conf" \
	"$top/scripts/usb-vsock-list" "$here/guest-lib.sh" \
	"$bin/module/tests/modules/usb_vsock_g2h_stub.ko" || vm_ok=0
echo "integration: VM took $(($(date +%s) - t0)) s" >&2

count_tests integration "$console" "$here/integration.tests"
guest_verdict "$console" "$vm_ok" "$splats" "$kb"
finish
