#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The clean-build checks: checkpatch --strict and kernel-doc on every C
# source and header, and a W=1 + sparse (C=1) build against Debian's 6.1
# and 6.12 headers, and against the test kernel when KB names its build.
# Any message fails the check. Prints "usb_vsock lint: N passed, N failed".
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
here=$top/tests
logdir=${USB_VSOCK_LOGDIR:-/tmp/usb_vsock-logs}
mkdir -p "$logdir"
src=$("$here/vm/kernel-source.sh") || exit 1
passed=0
failed=0

result() {	# name, log file, status
	if [ "$3" -eq 0 ] && [ ! -s "$2" ]; then
		passed=$((passed + 1))
		echo "ok: $1"
	else
		failed=$((failed + 1))
		echo "FAILED: $1 (status $3)"
		sed 's/^/    /' "$2"
	fi
}

cd "$top" || exit 1
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.c' '*.h' | sort)
mapfile -t kdoc < <(printf '%s\n' "${files[@]}" | grep -E '^(drivers|include)/')

for f in "${files[@]}"; do
	log=$logdir/checkpatch-${f//\//_}.log
	"$src/scripts/checkpatch.pl" --strict --no-tree --terse -q -f "$f" \
		>"$log.raw" 2>&1
	st=$?
	grep -v '^total: 0 errors, 0 warnings, 0 checks' "$log.raw" >"$log"
	result "checkpatch $f" "$log" $st
done

log=$logdir/kernel-doc.log
"$src/scripts/kernel-doc" -none -Wall "${kdoc[@]}" >"$log" 2>&1
result "kernel-doc" "$log" $?

# Build a copy, so that every file is compiled (and checked) afresh.
build() {	# name, kernel build directory
	local tmp log st
	tmp=$(mktemp -d)
	log=$logdir/build-$1.log
	cp -r Kbuild drivers include tests "$tmp/"
	make -s -C "$2" M="$tmp" W=1 C=1 USB_VSOCK_TEST_MODULES=m modules \
		>"$log.raw" 2>&1
	st=$?
	# Only the compiler's, sparse's and modpost's words count (modpost
	# says "WARNING:" and "ERROR:").
	grep -Ei 'warning:|error:|note:' "$log.raw" >"$log"
	[ $st -eq 0 ] || cat "$log.raw" >>"$log"
	result "W=1 C=1 build, $1" "$log" $st
	rm -rf "$tmp"
}

for kdir in /usr/src/linux-headers-6.1.*-amd64 \
	    /usr/src/linux-headers-6.12.*+deb12-amd64; do
	[ -d "$kdir" ] || { echo "FAILED: no $kdir"; failed=$((failed + 1)); continue; }
	build "${kdir#/usr/src/linux-headers-}" "$kdir"
done
if [ -n "${KB:-}" ]; then
	build test-kernel "$KB"
fi

echo "usb_vsock lint: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
