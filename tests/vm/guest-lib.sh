# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=sh
#
# Helpers of the guest test scripts (integration-guest.sh, stress-guest.sh),
# copied into the VM as /root/guest-lib.sh and sourced. Set before sourcing:
# GUEST_TAG (prefix of progress lines), TT (seconds a test may take),
# SYNC_WAIT (seconds an emulator may take to synchronize).

# shellcheck disable=SC2034 # used by the scripts that source this
EMU=/root/usb_vsock_emu
# shellcheck disable=SC2034
TOOL=/root/vsock_tool
DRV=/sys/bus/usb/drivers/usb_vsock

say() { echo "$GUEST_TAG: $*" > /dev/kmsg; }
ctl() { n=$1; shift; $EMU ctl "/tmp/$n.sock" "$@"; }

# t NAME CMD...: run a test (a command or a function) with a time limit;
# print "USB_VSOCK_TEST NAME PASS|FAIL" for the host to count.
t() {
	name=$1
	shift
	say "test $name"
	("$@") > "/tmp/$name.out" 2>&1 &
	pid=$!
	(sleep "$TT"; echo "timed out" >> "/tmp/$name.out"
	 kill "$pid") 2> /dev/null &
	dog=$!
	wait "$pid"
	st=$?
	kill "$dog" 2> /dev/null
	if [ $st -eq 0 ]; then
		echo "USB_VSOCK_TEST $name PASS" > /dev/kmsg
	else
		echo "USB_VSOCK_TEST $name FAIL" > /dev/kmsg
		sed "s/^/    $name: /" "/tmp/$name.out"
	fi
}

# wait_for SEC CMD...: until CMD succeeds; fails after SEC seconds. Every
# caller waits for something that must happen: SEC only keeps a broken run
# from hanging, it does not time the driver.
wait_for() {
	wf_end=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -lt $wf_end ] || return 1
		sleep 0.1
	done
}

# start_emu NAME UDC [OPTION...]: run an emulator, wait for its handshake.
start_emu() {
	n=$1
	udc=$2
	shift 2
	$EMU -n "$n" -u "$udc" "$@" > "/tmp/$n.log" 2>&1 &
	wait_for 30 test -S "/tmp/$n.sock"
	ctl "$n" wait-sync "$SYNC_WAIT" > /dev/null && return 0
	echo "emulator $n did not come up:"
	cat "/tmp/$n.log"
	return 1
}

stop_emu() {
	ctl "$1" quit > /dev/null 2>&1
	wait_for 5 test ! -S "/tmp/$1.sock"
}

# spawn LOG CMD...: starts CMD in the background with its output in LOG
# and its process in $spawned. LOG is emptied before spawn returns, so a
# wait_line on it never reads the lines a previous run left there.
spawn() {
	sp_log=$1
	shift
	: > "$sp_log"
	"$@" >> "$sp_log" 2>&1 &
	spawned=$!
}

# wait_line FILE PID WORD SEC: until FILE has WORD; fails if PID ends
# first or after SEC seconds.
wait_line() {
	wait_for "$4" line_or_exit "$1" "$2" "$3" && grep -q "$3" "$1"
}

# line_or_exit FILE PID WORD: FILE has WORD, or PID is gone.
line_or_exit() {
	grep -q "$3" "$1" || ! kill -0 "$2" 2> /dev/null
}

# exited PID: the process has ended.
exited() { ! kill -0 "$1" 2> /dev/null; }

# emu_ge NAME COUNTER N: the emulator's COUNTER has reached N.
emu_ge() { [ "$(ctl "$1" get "$2" 2> /dev/null || echo -1)" -ge "$3" ]; }

# file_gt FILE N: the number FILE holds is above N (false while FILE is
# missing or holds no number).
file_gt() {
	fg_v=$(cat "$1" 2> /dev/null) && [ "$fg_v" -gt "$2" ] 2> /dev/null
}

# iface_up BUS: the device on dummy_hcd instance BUS is bound and up.
iface_up() {
	[ "$(cat "$(intf "$1")/state" 2> /dev/null)" = up ]
}

# The interface of the device on dummy_hcd instance BUS.
intf() { echo "$DRV/$1-1:1.0/usb_vsock"; }

# uevent_listen: a busybox uevent listener appends each uevent's DEVPATH
# and USB_VSOCK_* variables as a line to /tmp/uevents; $spawned is its pid.
# It is up once it hears a uevent of our own making.
uevent_listen() {
	: > /tmp/uevents
	uevent sh -c 'env | grep -E "^(ACTION|DEVPATH|USB_VSOCK_[A-Z]+)=" |
		sort | tr "\n" " " >> /tmp/uevents; echo >> /tmp/uevents' &
	spawned=$!
	wait_for 60 heard_null && return 0
	kill $spawned
	echo "no uevent listener"
	return 1
}

# heard_null: the uevent listener has heard /dev/null's change uevent;
# if not, make one more.
heard_null() {
	grep -q "DEVPATH=/devices/virtual/mem/null" /tmp/uevents && return 0
	echo change > /sys/devices/virtual/mem/null/uevent
	return 1
}

# The emulator's counters of protocol violations by the host: a driver
# that keeps the protocol leaves every one at 0.
VIOLATIONS="proto_errors dup_connect bad_pause stray_pkts data_after_finish
	overflow_resets err_sync_not_last gave_up bad_final_cid long_sync"

# emu_clean NAME [COUNTER=N...]: the emulator NAME counted no violation
# by the host since its counters were last zeroed, or exactly N of those
# named; prints each counter that differs.
emu_clean() {
	ec_n=$1
	shift
	ec_bad=0
	for ec_c in $VIOLATIONS; do
		ec_want=0
		for ec_kv in "$@"; do
			[ "${ec_kv%%=*}" = "$ec_c" ] && ec_want=${ec_kv#*=}
		done
		ec_got=$(ctl "$ec_n" get "$ec_c") ||
			{ echo "$ec_n: no counter $ec_c"; ec_bad=1; continue; }
		echo "$ec_n: $ec_c=$ec_got (want $ec_want)"
		[ "$ec_got" = "$ec_want" ] || ec_bad=1
	done
	return $ec_bad
}

# guest_done: tell the host that the guest finished, with its status $rc
# (run-vm.sh's /init then waits for deferred work and scans for leaks).
guest_done() {
	# shellcheck disable=SC2154 # rc is the sourcing script's
	echo "USB_VSOCK_GUEST_DONE rc=$rc" > /dev/kmsg
}
