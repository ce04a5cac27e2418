# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Shared by the scripts that boot a VM: kunit.sh, integration.sh, demo.sh,
# stress.sh and bench.sh (sourced, not run).
#
# vm_run_setup WHAT KEY TITLE: for a run of guest tests, sets logdir (from
# USB_VSOCK_LOGDIR), buildlog, console, splats and bin (a fresh directory),
# named KEY-*, and zeroes passed and failed; problem() then reports a
# failure as WHAT, and finish() prints the summary line
# "usb_vsock TITLE: N passed, N failed" and exits, 0 only if nothing failed
# and something passed.
vm_run_setup() {
	run_what=$1
	run_title=$3
	logdir=${USB_VSOCK_LOGDIR:-/tmp/usb_vsock-logs}
	mkdir -p "$logdir"
	logdir=$(cd "$logdir" && pwd)
	buildlog=$logdir/$2-build.log
	console=$logdir/$2-console.log
	splats=$logdir/$2-splats.txt
	bin=$logdir/$2-bin
	rm -rf "$buildlog" "$console" "$splats" "$bin"
	mkdir -p "$bin"
	passed=0
	failed=0
	# Defined here, not at the top level, so that a script with its own
	# (kunit.sh) keeps them wherever it sources this file.
	# shellcheck disable=SC2317 # called by the sourcing script
	problem() { echo "$run_what: $*" >&2; failed=$((failed + 1)); }
	# shellcheck disable=SC2317
	finish() {
		[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ] ||
			echo "$run_what: logs in $logdir" >&2
		echo "usb_vsock $run_title: $passed passed, $failed failed"
		[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
		exit
	}
}

#
# prepare TARGET DIR LOG: get the kernel of TARGET (debug, 6.1 or 6.12) and
# build, in DIR, usb_vsock.ko for it, the test modules (tests/modules)
# and the static test programs (usb_vsock_emu, vsock_tool). Sets kb to the kernel directory for
# run-vm.sh. Returns non-zero, with the reason on stderr, on failure.
prepare() {
	local target=$1 dir=$2 log=$3 vm top kmake
	vm=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	top=$(cd "$vm/../.." && pwd)

	case "$target" in
	debug)
		kb=$("$vm/build-kernel.sh" 2>>"$log") ||
			{ echo "kernel build failed (see $log)" >&2; return 1; }
		kmake=(-C "$(readlink -f "$kb/source")" O="$kb")
		;;
	6.1 | 6.12)
		kb=$("$vm/stock-kernel.sh" "$target" 2>>"$log") ||
			{ echo "no stock kernel (see $log)" >&2; return 1; }
		kmake=(-C "$(readlink -f "$kb/headers")")
		;;
	*)
		echo "unknown kernel $target: debug, 6.1 or 6.12" >&2
		return 2
		;;
	esac

	# A copy per kernel, so that builds for different kernels do not mix.
	mkdir -p "$dir/module"
	cp -r "$top/Kbuild" "$top/drivers" "$top/include" "$top/tests" \
		"$dir/module/"
	if ! make "${kmake[@]}" M="$dir/module" -j"$(nproc)" \
		USB_VSOCK_TEST_MODULES=m modules >>"$log" 2>&1; then
		tail -n 30 "$log" >&2
		echo "module build failed (see $log)" >&2
		return 1
	fi
	if ! make -C "$top/tests/emu" O="$dir" >>"$log" 2>&1 ||
	   ! gcc -static -O2 -Wall -Wextra -Werror -pthread \
		-I"$top/include/uapi" -o "$dir/vsock_tool" \
		"$top/tests/tools/vsock_tool.c" >>"$log" 2>&1; then
		tail -n 30 "$log" >&2
		echo "test programs build failed (see $log)" >&2
		return 1
	fi
}

# The dynamically linked programs the integration guests use, for
# run-vm.sh: clients, ss, and kmod (depmod and modprobe by modalias);
# ncat loads OpenSSL's legacy provider at start.
use_host_programs() {
	VM_HOST_BINS="/usr/bin/socat /usr/bin/ncat /usr/bin/ss /usr/bin/kmod
		/usr/lib/x86_64-linux-gnu/ossl-modules/legacy.so"
	export VM_HOST_BINS
}

# Taint flags (/proc/sys/kernel/tainted) a test run may leave: O
# (out-of-tree module) and E (unsigned module) for usb_vsock itself; a
# KUnit run adds N (test module) to these.
TAINT_OK=$(((1 << 12) | (1 << 13)))
TAINT_OK_KUNIT=$((TAINT_OK | (1 << 18)))

# taint_flags MASK: the letters of MASK's taint flags, as in oops reports.
taint_flags() {
	local letters=PFSRMBUDAWCIOELKXTN i out=""
	for ((i = 0; i < ${#letters}; i++)); do
		(($1 & (1 << i))) && out+=${letters:i:1}
	done
	((($1 >> ${#letters}) == 0)) || out+="+bit${#letters}.."
	echo "$out"
}

# guest_health CONSOLE KB ALLOWED: judge the USB_VSOCK_HEALTH line that
# run-vm.sh's /init prints after the guest script, each failure reported
# through the caller's problem(): no taint outside the ALLOWED mask; on a
# kernel KB built with lockdep, lockdep still on (debug_locks=1: it
# switches itself off for good at its first report or an unannotated
# lock, and checks nothing after); on a kernel with kmemleak, both scans
# done (a disabled kmemleak fails them, and would otherwise read as "no
# leaks").
guest_health() {
	local console=$1 kb=$2 allowed=$3 line tainted locks kml
	line=$(tr -d '\r' < "$console" |
	       grep -o 'USB_VSOCK_HEALTH tainted=[0-9]* debug_locks=[a-z0-9]* kmemleak=[a-z]*' |
	       tail -n 1 || true)
	if [ -z "$line" ]; then
		problem "no USB_VSOCK_HEALTH line: the guest's end did not run"
		return
	fi
	echo "$run_what: $line" >&2
	read -r tainted locks kml < <(sed -E \
		's/.*tainted=([0-9]+) debug_locks=([a-z0-9]+) kmemleak=([a-z]+)/\1 \2 \3/' \
		<<<"$line")
	(((tainted & ~allowed) == 0)) ||
		problem "kernel tainted $tainted ($(taint_flags "$tainted")), allowed $(taint_flags "$allowed")"
	if grep -q '^CONFIG_PROVE_LOCKING=y' "$kb/.config" 2>/dev/null; then
		[ "$locks" = 1 ] ||
			problem "lockdep switched itself off (debug_locks=$locks)"
	fi
	if grep -q '^CONFIG_DEBUG_KMEMLEAK=y' "$kb/.config" 2>/dev/null; then
		[ "$kml" = ok ] || problem "kmemleak scan: $kml"
	fi
}

# guest_verdict CONSOLE VM_OK SPLATS KB [ALLOWED_TAINT]: the checks every
# VM run ends with, each failure reported through the caller's problem():
# the guest's done marker (a missing one means a hang or a panic) and its
# status, qemu's exit, the guest's health line (guest_health, with
# ALLOWED_TAINT, default TAINT_OK) and kernel splats in the console log
# (listed in SPLATS).
guest_verdict() {
	local console=$1 vm_ok=$2 splats=$3 kb=$4 done_line
	done_line=$(tr -d '\r' < "$console" |
		    grep -o 'USB_VSOCK_GUEST_DONE rc=[0-9]*' | tail -n 1 || true)
	if [ -z "$done_line" ]; then
		problem "no USB_VSOCK_GUEST_DONE marker: the VM hung, panicked or timed out"
		tail -n 40 "$console" >&2
	elif [ "$vm_ok" -eq 0 ]; then
		problem "the VM did not exit after the guest was done"
	fi
	case "$done_line" in
	*" rc=0" | "") ;;
	*) problem "a module failed to load or unload in the guest ($done_line)" ;;
	esac
	[ -z "$done_line" ] || guest_health "$console" "$kb" "${5:-$TAINT_OK}"
	if ! "$(dirname "${BASH_SOURCE[0]}")/check-log.sh" "$console" \
		> "$splats"; then
		cat "$splats" >&2
		problem "kernel splats in the console log"
	fi
}

# count_results TAG MANIFEST: read "NAME VERDICT" lines (VERDICT the last
# word, PASS or FAIL; NAME anything) on stdin, add them to the caller's
# passed and failed, listing each on stderr, and hold them against
# MANIFEST, the tests the suite must run (one name a line; blank lines
# and lines starting with # ignored): a test of the manifest that did not
# run, one that ran twice, one the manifest lacks, or a verdict that is
# neither PASS nor FAIL fails the run.
count_results() {
	local tag=$1 manifest=$2 line name verdict
	local -A seen=() want=()
	while IFS= read -r name; do
		case "$name" in "" | "#"*) continue ;; esac
		want[$name]=1
	done < "$manifest"
	[ ${#want[@]} -gt 0 ] || problem "empty manifest $manifest"
	while IFS= read -r line; do
		name=${line% *}
		verdict=${line##* }
		echo "$tag: $name: $verdict" >&2
		case "$verdict" in
		PASS) passed=$((passed + 1)) ;;
		FAIL) failed=$((failed + 1)) ;;
		*) problem "test $name: verdict '$verdict'" ;;
		esac
		[ -z "${seen[$name]:-}" ] || problem "test $name ran twice"
		seen[$name]=1
		[ -n "${want[$name]:-}" ] ||
			problem "test $name is not in $manifest"
	done
	for name in "${!want[@]}"; do
		[ -n "${seen[$name]:-}" ] || problem "test $name did not run"
	done
}

# count_tests TAG CONSOLE MANIFEST: count_results for the guest's
# "USB_VSOCK_TEST NAME PASS|FAIL" lines, then the output of the failed
# ones on stderr.
count_tests() {
	local tag=$1 log
	log=$(tr -d '\r' < "$2")
	count_results "$tag" "$3" < <(sed -n 's/.*USB_VSOCK_TEST \(.*\)$/\1/p' <<<"$log")
	grep -E '^    [^ :]+: ' <<<"$log" >&2 || true
}
