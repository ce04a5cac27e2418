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
# build, in DIR, usb_vsock.ko for it and the static test programs
# (usb_vsock_emu, vsock_tool). Sets kb to the kernel directory for
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
	if ! make "${kmake[@]}" M="$dir/module" -j"$(nproc)" modules \
		>>"$log" 2>&1; then
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

# guest_verdict CONSOLE VM_OK SPLATS: the checks every VM run ends with,
# each failure reported through the caller's problem(): the guest's done
# marker (a missing one means a hang or a panic) and its status, qemu's
# exit, and kernel splats in the console log (listed in SPLATS).
guest_verdict() {
	local console=$1 vm_ok=$2 splats=$3 done_line
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
	if ! "$(dirname "${BASH_SOURCE[0]}")/check-log.sh" "$console" \
		> "$splats"; then
		cat "$splats" >&2
		problem "kernel splats in the console log"
	fi
}

# count_tests TAG CONSOLE: add the guest's "USB_VSOCK_TEST name PASS|FAIL"
# lines to the caller's passed and failed, listing each on stderr with the
# output of the failed ones.
count_tests() {
	local tag=$1 log name verdict
	log=$(tr -d '\r' < "$2")
	while read -r name verdict; do
		echo "$tag: $name: $verdict" >&2
		if [ "$verdict" = PASS ]; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
		fi
	done < <(grep -o 'USB_VSOCK_TEST [a-z0-9_]* [A-Z]*' <<<"$log" |
		 cut -d' ' -f2-)
	grep -E '^    [a-z0-9_]+: ' <<<"$log" >&2 || true
}
