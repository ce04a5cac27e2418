#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# KUnit runner: build the debug kernel (cached), build usb_vsock.ko and
# tests/kunit/usb_vsock_test.ko against it, load them in a VM (the suites
# run at module load and print KTAP), unload, let kmemleak scan, then judge
# on the host. Ends with exactly one line
#   usb_vsock kunit: N passed, N failed
# where failed also counts, as 1 each: a build failure, a VM that hung or
# died (no done marker), a module that failed to load or unload, a failed
# KTAP parse, kernel splats (check-log.sh), a taint or a checker switched
# off (guest_health in lib.sh), and each case of tests/kunit/kunit.tests
# that did not run, was skipped, ran twice or is not listed there.
# Exit status 0 only if failed == 0 and passed > 0.
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
cases=$logdir/kunit-cases.txt
splats=$logdir/kunit-splats.txt
guest=$logdir/kunit-guest.sh
rm -f "$buildlog" "$console" "$ktap" "$parsed" "$json" "$cases" "$splats" \
	"$guest"

# shellcheck source=tests/vm/lib.sh
. "$here/lib.sh"

passed=0 failed=0
run_what=kunit
problem() { echo "kunit: $*" >&2; failed=$((failed + 1)); }
finish() {
	local bad=0
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ] || bad=1
	[ $bad -eq 0 ] || echo "kunit: logs in $logdir" >&2
	echo "usb_vsock kunit: $passed passed, $failed failed"
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
# run-vm.sh's /init then waits for deferred work and scans for leaks.
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

# Leaf test cases from kunit.py's JSON, one "SUITE.CASE[.PARAM] STATUS"
# line each (suites are groups, cases leaves; parameterised cases are
# groups of their parameters), held against kunit.tests. A skipped case
# did not test anything: its SKIP is no PASS, and fails the run.
python3 - "$json" > "$cases" <<'EOF' ||
import json, sys
def walk(g, path):
    for t in g.get("test_cases", []):
        print(".".join(path + [t["name"]]), t["status"])
    for s in g.get("sub_groups", []):
        walk(s, path + [s["name"]])
with open(sys.argv[1]) as f:
    walk(json.load(f), [])
EOF
	problem "no results from kunit.py ($json)"
if [ $kunit_rc -ne 0 ] && ! grep -Eq ' (FAIL|ERROR)$' "$cases"; then
	# kunit.py also fails on its own when tests fail: count it only when
	# no test did, i.e. when the KTAP itself was broken.
	problem "kunit.py parse failed (status $kunit_rc, see $parsed)"
fi
count_results kunit "$here/../kunit/kunit.tests" < <(sed 's/ ERROR$/ FAIL/' "$cases")

guest_verdict "$console" "$vm_ok" "$splats" "$kb" "$TAINT_OK_KUNIT"

finish
