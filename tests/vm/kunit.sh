#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# KUnit runner: build the debug kernel (cached), build usb_vsock.ko and
# tests/kunit/usb_vsock_test.ko against it, load them in a VM (the suites
# run at module load and print KTAP), unload, let kmemleak scan, then judge
# on the host. Ends with exactly one line
#   usb_vsock kunit: N passed, N failed[, N skipped]
# where failed also counts, as 1 each: a build failure, a VM that hung or
# died (no done marker), a module that failed to load or unload, no test
# run, a failed KTAP parse, kernel splats (check-log.sh). Skipped tests fail
# the run too unless USB_VSOCK_KUNIT_ALLOW_SKIP=1.
# Exit status 0 only if failed == 0, passed > 0 and no disallowed skip.
#
# Environment: USB_VSOCK_LOGDIR (default /tmp/usb_vsock-logs), VM_TIMEOUT
# (see run-vm.sh), USB_VSOCK_MODDIR (module tree to build, default the
# repository root; for testing the rig itself).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
moddir=$(cd "${USB_VSOCK_MODDIR:-$here/../..}" && pwd)
logdir=${USB_VSOCK_LOGDIR:-/tmp/usb_vsock-logs}
mkdir -p "$logdir"
logdir=$(cd "$logdir" && pwd)	# kunit.py chdirs: paths must be absolute

buildlog=$logdir/kunit-build.log
console=$logdir/kunit-console.log
ktap=$logdir/kunit-ktap.log
parsed=$logdir/kunit-parse.txt
json=$logdir/kunit-results.json
splats=$logdir/kunit-splats.txt
guest=$logdir/kunit-guest.sh
rm -f "$buildlog" "$console" "$ktap" "$parsed" "$json" "$splats" "$guest"

# shellcheck source=tests/vm/lib.sh
. "$here/lib.sh"

passed=0 failed=0 skipped=0
problem() { echo "kunit: $*" >&2; failed=$((failed + 1)); }
finish() {
	local line="usb_vsock kunit: $passed passed, $failed failed"
	[ "$skipped" -eq 0 ] || line+=", $skipped skipped"
	local bad=0
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ] || bad=1
	[ "$skipped" -eq 0 ] || [ "${USB_VSOCK_KUNIT_ALLOW_SKIP:-0}" = 1 ] || bad=1
	[ $bad -eq 0 ] || echo "kunit: logs in $logdir" >&2
	echo "$line"
	exit $bad
}

echo "kunit: kernel build, if not cached (log: $buildlog)" >&2
kb=$("$here/build-kernel.sh" 2>>"$buildlog") || {
	problem "kernel build failed (see $buildlog)"; finish; }
src=$(readlink -f "$kb/source")

echo "kunit: building modules in $moddir against $kb" >&2
if ! make -C "$src" O="$kb" M="$moddir" -j"$(nproc)" modules \
	>>"$buildlog" 2>&1; then
	tail -n 30 "$buildlog" >&2
	problem "module build failed (see $buildlog)"
	finish
fi
mods=("$moddir/usb_vsock.ko" "$moddir/tests/kunit/usb_vsock_test.ko")
for m in "${mods[@]}"; do
	[ -f "$m" ] || { problem "build produced no $m"; finish; }
done

# vsock is loaded by name first: it must exist even before usb_vsock
# declares the dependency. modload (run-vm.sh) brings any other
# dependencies of our modules from the kernel build.
# Progress and markers go to /dev/kmsg: ordered with kernel messages, and
# not split by them on the console. KTAP_BEGIN/END frame the test module's
# KTAP (the built-in executor prints an empty "1..0" document at boot).
cat > "$guest" <<'EOF'
#!/bin/sh
rc=0
say() { echo "usb_vsock-guest: $*" > /dev/kmsg; }
step() { say "$*"; "$@" || { say "step failed: $*"; rc=1; }; }
step modload vsock
step modload usb_vsock
echo USB_VSOCK_KTAP_BEGIN > /dev/kmsg
step modload usb_vsock_test
echo USB_VSOCK_KTAP_END > /dev/kmsg
# Load addresses: kmemleak backtraces into unloaded modules are bare
# addresses, subtract these to find the function.
cat /proc/modules
step rmmod usb_vsock_test
step rmmod usb_vsock
# kmemleak only reports objects older than 5 s; a second scan catches
# objects whose contents changed during the first.
say "kmemleak: waiting 6 s"
sleep 6
say "kmemleak: scan 1"
echo scan > /sys/kernel/debug/kmemleak
say "kmemleak: scan 2"
echo scan > /sys/kernel/debug/kmemleak
say "kmemleak: scans done"
cat /sys/kernel/debug/kmemleak
echo "USB_VSOCK_GUEST_DONE rc=$rc" > /dev/kmsg
EOF

echo "kunit: running the VM (console: $console)" >&2
t0=$(date +%s)
vm_ok=1
"$here/run-vm.sh" "$kb" "$guest" "$console" "${mods[@]}" || vm_ok=0
echo "kunit: VM took $(($(date +%s) - t0)) s" >&2

tr -d '\r' < "$console" |
	sed -n '/USB_VSOCK_KTAP_BEGIN/,/USB_VSOCK_KTAP_END/p' > "$ktap"
kunit_rc=0
python3 "$src/tools/testing/kunit/kunit.py" parse --json="$json" \
	< "$ktap" > "$parsed" 2>&1 || kunit_rc=$?
cat "$parsed" >&2

# Leaf test cases from kunit.py's JSON (suites are groups, cases leaves;
# parameterised cases are groups of their parameters).
counts=$(python3 - "$json" <<'EOF' || echo "0 0 0 bad"
import json, sys
n = {}
def walk(g):
    for t in g.get("test_cases", []):
        n[t["status"]] = n.get(t["status"], 0) + 1
    for s in g.get("sub_groups", []):
        walk(s)
with open(sys.argv[1]) as f:
    walk(json.load(f))
print(n.pop("PASS", 0), n.pop("SKIP", 0), sum(n.values()))
EOF
)
read -r p s f bad <<< "$counts"
passed=$p skipped=$s failed=$((failed + f))
if [ -n "${bad:-}" ]; then
	problem "no results from kunit.py ($json)"
elif [ $kunit_rc -ne 0 ] && [ "$f" -eq 0 ]; then
	# kunit.py also fails on its own when tests fail: count it only when
	# no test did, i.e. when the KTAP itself was broken.
	problem "kunit.py parse failed (status $kunit_rc, see $parsed)"
fi
[ $((p + s + f)) -gt 0 ] || problem "no KUnit test ran"
[ "$s" -eq 0 ] || echo "kunit: $s skipped test(s)" >&2

guest_verdict "$console" "$vm_ok" "$splats"

finish
