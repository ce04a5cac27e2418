#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The harness judged on forged input, without a VM: each way a part, a
# suite or a guest can go wrong must make the verdict fail, and a clean
# run must pass. Covers tests/check-lib.sh (how make check adds up its
# parts), tests/vm/lib.sh (manifests, the guest's health line, the done
# marker), tests/vm/check-log.sh (kernel splats) and emu_clean in
# tests/vm/guest-lib.sh (the emulator's violation counters).
# Ends with "usb_vsock harness: N passed, N failed".
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAILED: $*"; }
# expect NAME WANT GOT: the check under test said GOT, it should say WANT.
expect() {
	if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$3', want '$2'"; fi
}

# --- make check's parts (check-lib.sh) ---------------------------------
# shellcheck source=tests/check-lib.sh
. "$here/check-lib.sh"

# fake_part STATUS OUTPUT: a part that prints OUTPUT and exits STATUS.
fake_part() { printf '%s\n' "$2"; return "$1"; }

# part_verdict STATUS OUTPUT: "pass" or "fail", as check.sh judges it.
part_verdict() {
	check_init "$tmp"
	part driver x fake_part "$1" "$2" > /dev/null
	if check_summary > /dev/null; then echo pass; else echo fail; fi
}

expect "part: a clean part passes" pass \
	"$(part_verdict 0 'usb_vsock x: 3 passed, 0 failed')"
expect "part: a failed test fails" fail \
	"$(part_verdict 1 'usb_vsock x: 3 passed, 1 failed')"
expect "part: non-zero exit with 0 failed fails" fail \
	"$(part_verdict 1 'usb_vsock x: 3 passed, 0 failed')"
expect "part: no summary line fails" fail "$(part_verdict 0 'all good')"
expect "part: 0 passed, 0 failed fails" fail \
	"$(part_verdict 0 'usb_vsock x: 0 passed, 0 failed')"
expect "part: a trailing skip count is no summary" fail \
	"$(part_verdict 0 'usb_vsock x: 3 passed, 0 failed, 2 skipped')"

check_init "$tmp"
part rig lint fake_part 0 'usb_vsock lint: 5 passed, 0 failed' > /dev/null
part driver kunit fake_part 0 'usb_vsock kunit: 7 passed, 0 failed' > /dev/null
part driver stress fake_part 3 'usb_vsock stress: 2 passed, 0 failed' > /dev/null
check_summary > "$tmp/summary"
expect "summary: the rig on its own line" \
	"usb_vsock rig: 5 passed, 0 failed" "$(grep '^usb_vsock rig:' "$tmp/summary")"
expect "summary: the driver's line last, with the exit counted" \
	"usb_vsock: 9 passed, 1 failed" "$(tail -n 1 "$tmp/summary")"

# --- suites' results against their manifests (lib.sh) -----------------
# shellcheck source=tests/vm/lib.sh
. "$here/vm/lib.sh"
run_what=forged
problem() { problems=$((problems + 1)); }

printf '%s\n' '# a comment' a 'b-c' 'D e' '' > "$tmp/manifest"

# tally CMD...: "passed failed problems" after CMD, which counts into
# them; called in $(...), so the counts stay in that subshell.
tally() {
	passed=0 failed=0 problems=0
	"$@" 2> /dev/null
	echo "$passed $failed $problems"
}

# results INPUT...: the tally of count_results on the lines INPUT.
results() {
	tally count_results forged "$tmp/manifest" < <(printf '%s\n' "$@")
}

expect "manifest: all ran and passed" "3 0 0" \
	"$(results 'a PASS' 'b-c PASS' 'D e PASS')"
expect "manifest: a FAIL whose name has a hyphen counts" "2 1 0" \
	"$(results 'a PASS' 'b-c FAIL' 'D e PASS')"
expect "manifest: a missing test fails" "2 0 1" \
	"$(results 'a PASS' 'D e PASS')"
expect "manifest: a test not listed fails" "4 0 1" \
	"$(results 'a PASS' 'b-c PASS' 'D e PASS' 'new PASS')"
expect "manifest: a test run twice fails" "4 0 1" \
	"$(results 'a PASS' 'a PASS' 'b-c PASS' 'D e PASS')"
expect "manifest: a skipped test fails" "2 0 1" \
	"$(results 'a PASS' 'b-c SKIP' 'D e PASS')"

# count_tests on a console: stamps, carriage returns, any characters.
printf '%s\r\n' '[    1.000000] USB_VSOCK_TEST a PASS' \
	'x[    2.000000] USB_VSOCK_TEST b-c FAIL' \
	'[    3.000000] USB_VSOCK_TEST D e PASS' > "$tmp/console"
expect "console: results read whatever their names hold" "2 1 0" \
	"$(tally count_tests forged "$tmp/console" "$tmp/manifest")"

# --- the guest's end (guest_health, guest_verdict) ---------------------
mkdir -p "$tmp/debug" "$tmp/stock"
printf 'CONFIG_PROVE_LOCKING=y\nCONFIG_DEBUG_KMEMLEAK=y\n' > "$tmp/debug/.config"

# health KB LINE [ALLOWED]: the problems guest_health finds in LINE.
health() {
	problems=0
	echo "[    9.000000] USB_VSOCK_HEALTH $2" > "$tmp/console"
	guest_health "$tmp/console" "$1" "${3:-$TAINT_OK}" 2> /dev/null
	echo "$problems"
}
expect "health: debug kernel, clean" 0 \
	"$(health "$tmp/debug" "tainted=12288 debug_locks=1 kmemleak=ok")"
expect "health: a warning's taint (W) fails" 1 \
	"$(health "$tmp/debug" "tainted=4608 debug_locks=1 kmemleak=ok")"
expect "health: the test module's taint (N) outside KUnit fails" 1 \
	"$(health "$tmp/debug" "tainted=266240 debug_locks=1 kmemleak=ok")"
expect "health: the test module's taint (N) in KUnit passes" 0 \
	"$(health "$tmp/debug" "tainted=266240 debug_locks=1 kmemleak=ok" \
		"$TAINT_OK_KUNIT")"
expect "health: lockdep switched off fails" 1 \
	"$(health "$tmp/debug" "tainted=4096 debug_locks=0 kmemleak=ok")"
expect "health: a failed kmemleak scan fails" 1 \
	"$(health "$tmp/debug" "tainted=4096 debug_locks=1 kmemleak=failed")"
expect "health: a missing kmemleak fails on the debug kernel" 1 \
	"$(health "$tmp/debug" "tainted=4096 debug_locks=1 kmemleak=none")"
expect "health: a stock kernel has neither checker" 0 \
	"$(health "$tmp/stock" "tainted=8192 debug_locks=none kmemleak=none")"
problems=0
: > "$tmp/console"
guest_health "$tmp/console" "$tmp/debug" "$TAINT_OK" 2> /dev/null
expect "health: no health line fails" 1 "$problems"

# verdict LINES...: the problems guest_verdict finds in a console.
verdict() {
	problems=0
	printf '%s\n' "$@" > "$tmp/console"
	guest_verdict "$tmp/console" 1 "$tmp/splats" "$tmp/stock" \
		> /dev/null 2>&1
	echo "$problems"
}
healthy="[    9.000000] USB_VSOCK_HEALTH tainted=0 debug_locks=none kmemleak=none"
expect "verdict: a clean end passes" 0 \
	"$(verdict '[    8.000000] USB_VSOCK_GUEST_DONE rc=0' "$healthy")"
expect "verdict: no done marker fails" 1 "$(verdict "$healthy")"
expect "verdict: a failed load fails" 1 \
	"$(verdict '[    8.000000] USB_VSOCK_GUEST_DONE rc=1' "$healthy")"

# --- kernel splats (check-log.sh) ---------------------------------------
splat() {
	printf '%s\n' 'boot' "$1" > "$tmp/log"
	if "$here/vm/check-log.sh" "$tmp/log" > /dev/null; then
		echo clean
	else
		echo found
	fi
}
expect "check-log: a clean log passes" clean \
	"$(splat '[    1.000000] usb_vsock: link up, cid 3')"
expect "check-log: guest output without a stamp is not a splat" clean \
	"$(splat 'BUG: in a test name')"
while IFS= read -r msg; do
	expect "check-log: $msg" found "$(splat "[    1.000000] $msg")"
done <<'EOM'
BUG: KASAN: slab-use-after-free in usb_vsock_rx+0x1/0x2
kernel BUG at drivers/link.c:10!
WARNING: CPU: 0 PID: 1 at drivers/link.c:10 f+0x1/0x2
WARNING: possible circular locking dependency detected
Oops: general protection fault, probably for non-canonical address
Kernel panic - not syncing: Fatal exception
INFO: task kworker/0:1:12 blocked for more than 60 seconds.
rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:
kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)
BUG: sleeping function called from invalid context at mm/slub.c:1
UBSAN: array-index-out-of-bounds in drivers/parser.c:42:3
ODEBUG: free active (active state 0) object: 0000 object type: timer_list hint: f
list_add corruption. prev->next should be next (ffff), but was 0000.
list_del corruption, ffff->next is LIST_POISON1 (dead000000000100)
refcount_t: underflow; use-after-free.
INFO: trying to register non-static key.
turning off the locking correctness validator.
kmemleak: Kernel memory leak detector disabled
kworker/0:1 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0
Out of memory: Killed process 42 (vsock_tool) total-vm:1kB
vsock_tool[42]: segfault at 0 ip 0000 sp 0000 error 4 in vsock_tool
EOM
expect "check-log: dropped console messages" found \
	"$(splat '** 12 printk messages dropped **')"
expect "check-log: kmemleak's record read back by the guest" found \
	"$(splat 'unreferenced object 0xffff888012345678 (size 64):')"

# --- the emulator's violation counters (emu_clean) ----------------------
# Sourced in a subshell with a forged emulator: NAME's counters from a
# "counter=value" file.
clean_verdict() {
	printf '%s\n' $1 > "$tmp/counters"
	shift
	(
		# shellcheck source=tests/vm/guest-lib.sh
		. "$here/vm/guest-lib.sh"
		ctl() { sed -n "s/^$3=//p" "$tmp/counters" | grep .; }
		if emu_clean dev0 "$@" > /dev/null; then
			echo pass
		else
			echo fail
		fi
	)
}
zero="proto_errors=0 dup_connect=0 bad_pause=0 stray_pkts=0"
zero="$zero data_after_finish=0 overflow_resets=0 err_sync_not_last=0"
zero="$zero gave_up=0 bad_final_cid=0 long_sync=0"
expect "emu_clean: no violation passes" pass "$(clean_verdict "$zero")"
expect "emu_clean: a violation fails" fail \
	"$(clean_verdict "${zero/bad_pause=0/bad_pause=1}")"
expect "emu_clean: an expected count passes" pass \
	"$(clean_verdict "${zero/stray_pkts=0/stray_pkts=2}" stray_pkts=2)"
expect "emu_clean: a count other than the expected one fails" fail \
	"$(clean_verdict "$zero" stray_pkts=2)"
expect "emu_clean: a missing counter fails" fail \
	"$(clean_verdict "${zero/dup_connect=0 /}")"
expect "emu_clean: a stale final Sync fails" fail \
	"$(clean_verdict "${zero/bad_final_cid=0/bad_final_cid=1}")"
expect "emu_clean: a device that gave up fails" fail \
	"$(clean_verdict "${zero/gave_up=0/gave_up=1}")"

echo "usb_vsock harness: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
