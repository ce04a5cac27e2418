# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# How make check (tests/check.sh) judges its parts; sourced, also by
# tests/harness-selftest.sh, which feeds it forged parts.
#
# check_init LOGDIR: start a run whose parts log to LOGDIR.
check_init() {
	check_logdir=$1
	declare -gA total=([driver.p]=0 [driver.f]=0 [rig.p]=0 [rig.f]=0)
	bad_parts=()
	summary=()
}

# part KIND NAME CMD...: run a part (KIND driver or rig), show its output,
# and add up its "usb_vsock PART: N passed, N failed" line. A part fails
# if it exits non-zero, prints no such line, reports a failure or passes
# nothing; a failure its line does not count still counts once.
part() {
	local kind=$1 name=$2 out=$check_logdir/part-$2.out line p=0 f=0 st
	local why=""
	shift 2
	"$@" 2>&1 | tee "$out"
	st=${PIPESTATUS[0]}
	line=$(grep -E '^usb_vsock [^:]+: [0-9]+ passed, [0-9]+ failed$' \
		"$out" | tail -n 1)
	if [ -z "$line" ]; then
		why="printed no summary line"
	else
		p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
		f=$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$line")
		if [ "$f" -gt 0 ]; then
			why="$f failed"
		elif [ "$p" -eq 0 ]; then
			why="passed nothing"
		elif [ "$st" -ne 0 ]; then
			why="exited with status $st"
		fi
	fi
	if [ -n "$why" ]; then
		bad_parts+=("$name")
		[ "$f" -gt 0 ] || f=1
		why=" FAILED: $why"
	fi
	total[$kind.p]=$((total[$kind.p] + p))
	total[$kind.f]=$((total[$kind.f] + f))
	summary+=("$(printf 'check: %-18s %-6s %4d passed, %d failed%s' \
		"$name" "$kind" "$p" "$f" "$why")")
}

# check_summary: a line per part, the rig's total, and last the driver's:
#   usb_vsock rig: N passed, N failed   lint, DKMS, the emulator self-test
#   usb_vsock: N passed, N failed       KUnit, integration, stress
# Returns 0 only if no part failed.
check_summary() {
	printf '%s\n' "${summary[@]}"
	[ ${#bad_parts[@]} -eq 0 ] || echo "check: FAILED: ${bad_parts[*]}"
	echo "usb_vsock rig: ${total[rig.p]} passed, ${total[rig.f]} failed"
	echo "usb_vsock: ${total[driver.p]} passed, ${total[driver.f]} failed"
	[ ${#bad_parts[@]} -eq 0 ]
}
