#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The usb_vsock stress tests, inside the VM (see stress.sh): a hostile
# emulated device (dev0, dummy_udc.0) and a well-behaved one (dev1,
# dummy_udc.1) that must keep serving echo all along. Each test prints
#   USB_VSOCK_TEST <name> PASS|FAIL
# and the host counts them. The sizes come from /root/stress.conf.

HOSTILE=100
MIX=2000
UNPLUGS=2
CONNS=32
BIG=4194304
SLOW=4
SLOW_BYTES=262144
TT=3600
# shellcheck source=/dev/null
. /root/stress.conf
rc=0

GUEST_TAG=usb_vsock-stress
SYNC_WAIT=60
# shellcheck source=tests/vm/guest-lib.sh
. /root/guest-lib.sh

cid0() { cat "$(intf 1)/cid"; }
cid1() { cat "$(intf 2)/cid"; }

meminfo() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }

# dev1 serves echo in the background all along; failures go to a file.
bg_echo() {
	: > /tmp/bg.fail
	(
		n=0
		while [ ! -e /tmp/bg.stop ]; do
			$TOOL echo "$(cid1)" 5001 1000 4096 > /tmp/bg.last 2>&1 ||
				{ echo "round $n:"; cat /tmp/bg.last; } >> /tmp/bg.fail
			n=$((n + 1))
			echo $n > /tmp/bg.rounds
		done
	) &
	bg_pid=$!
}

dev1_ok() {
	r=$(cat /tmp/bg.rounds 2> /dev/null || echo 0)
	[ -s /tmp/bg.fail ] && { cat /tmp/bg.fail; return 1; }
	# It must still be making progress.
	i=0
	while [ "$(cat /tmp/bg.rounds)" = "$r" ] && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ "$(cat /tmp/bg.rounds)" != "$r" ] || { echo "dev1 echo stalled"; return 1; }
	$TOOL echo "$(cid1)" 5001 1 1024 65536
}

# After a hostile run dev0 must synchronize again and serve echo.
dev0_recovers() {
	ctl dev0 wait-sync 120 || return 1
	i=0
	until [ "$(cat "$(intf 1)/state")" = up ] || [ $i -ge 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	cat "$(intf 1)/state"
	$TOOL echo "$(cid0)" 5001 1 1000 4096
}

# hostile MODE COUNT: dev0 sends COUNT hostile transfers; the driver stays
# up, dev0 comes back, dev1 keeps serving.
hostile() {
	before=$(ctl dev0 get hostile_transfers)
	ctl dev0 hostile "$1" "$2" 7000 || return 1
	ctl dev0 wait-hostile 3000 || return 1
	after=$(ctl dev0 get hostile_transfers)
	echo "$1: $((after - before)) hostile transfers"
	[ $((after - before)) -eq "$2" ] || return 1
	# Let the writer flush what it queued.
	sleep 1
	dev0_recovers && dev1_ok
}

# A Pause that never lifts: the host's writer must block, not fail or
# spin, and a device resync must wake it with an error.
pause_forever() {
	$TOOL stream "$(cid0)" 5001 > /tmp/pstream.log 2>&1 &
	pid=$!
	sleep 2
	grep -q connected /tmp/pstream.log || return 1
	ctl dev0 hostile pause 50 && ctl dev0 wait-hostile 600 || return 1
	sleep 3
	kill -0 $pid || { echo "stream ended while paused"; cat /tmp/pstream.log; return 1; }
	ctl dev0 resync || return 1
	wait $pid
	st=$?
	cat /tmp/pstream.log
	[ $st -eq 0 ] && dev0_recovers && dev1_ok
}

# wait_line FILE PID WORD SEC: until FILE has WORD; fails if PID ends
# first or after SEC seconds.
wait_line() {
	end=$(($(date +%s) + $4))
	until grep -q "$3" "$1"; do
		kill -0 "$2" 2> /dev/null || return 1
		[ "$(date +%s)" -lt $end ] || return 1
		sleep 0.2
	done
}

# alive PID...: the PIDs still running.
alive() {
	for p in "$@"; do
		kill -0 "$p" 2> /dev/null && echo "$p"
	done
}

# Unplug dev0 with 16 connections in flight, COUNT times: every socket
# must wake with ECONNRESET (vsock_tool stream exits 0 then) within 30 s.
# The connections are made one by one (a burst of 16 connect()s under TCG
# can outlast the 2 s connect timeout).
unplug_cycles() {
	c=0
	while [ $c -lt "$1" ]; do
		cid=$(cid0)
		pids=
		k=0
		while [ $k -lt 16 ]; do
			$TOOL stream "$cid" 5001 > "/tmp/us$k.log" 2>&1 &
			pids="$pids $!"
			if ! wait_line "/tmp/us$k.log" $! connected 30; then
				echo "cycle $c: stream $k did not connect:"
				cat "/tmp/us$k.log"
				# shellcheck disable=SC2086
				kill $pids 2> /dev/null
				return 1
			fi
			k=$((k + 1))
		done
		echo "cycle $c: 16 connected, unplugging"
		ctl dev0 unplug || return 1
		end=$(($(date +%s) + 30))
		# shellcheck disable=SC2086
		while [ -n "$(alive $pids)" ] && [ "$(date +%s)" -lt $end ]; do
			sleep 0.2
		done
		# shellcheck disable=SC2086
		left=$(alive $pids)
		if [ -n "$left" ]; then
			echo "cycle $c: sockets still blocked 30 s after the unplug: $left"
			# shellcheck disable=SC2086
			kill $pids 2> /dev/null
			return 1
		fi
		bad=0
		for p in $pids; do
			wait "$p" || bad=$((bad + 1))
		done
		[ $bad -eq 0 ] || { echo "cycle $c: $bad sockets did not end with ECONNRESET"; cat /tmp/us*.log; return 1; }
		ctl dev0 replug && ctl dev0 wait-sync 60 > /dev/null || return 1
		i=0
		until [ -d "$DRV/1-1:1.0" ] && [ "$(cat "$(intf 1)/state")" = up ] ||
		      [ $i -ge 300 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		c=$((c + 1))
	done
	echo "$c unplug cycles"
	dev0_recovers && dev1_ok
}

many_conns() {
	done_=0
	while [ $done_ -lt "$1" ]; do
		$TOOL parallel 16 "$(cid0)" 5001 4096 || return 1
		done_=$((done_ + 16))
	done
	echo "$done_ connections"
}

slow_readers() {
	pids=
	k=0
	while [ $k -lt "$1" ]; do
		$TOOL source "$(cid0)" 5003 "$2" 20 > "/tmp/slow$k.log" 2>&1 &
		pids="$pids $!"
		k=$((k + 1))
	done
	bad=0
	for p in $pids; do
		wait "$p" || bad=$((bad + 1))
	done
	[ $bad -eq 0 ] || { cat /tmp/slow*.log; return 1; }
	dev1_ok
}

# An open socket pins the module; closing it lets rmmod go.
module_lifetime() {
	$TOOL stream "$(cid1)" 5001 > /tmp/pin.log 2>&1 &
	pid=$!
	sleep 2
	grep -q connected /tmp/pin.log || return 1
	if rmmod usb_vsock 2> /tmp/rmmod.err; then
		echo "rmmod succeeded with a socket open"
		return 1
	fi
	cat /tmp/rmmod.err
	grep -Eiq "in use|busy|temporarily unavailable" /tmp/rmmod.err || return 1
	kill $pid
	wait $pid
	stop_emu dev1
	stop_emu dev0
	i=0
	until rmmod usb_vsock 2> /tmp/rmmod.err || [ $i -ge 50 ]; do
		sleep 0.2
		i=$((i + 1))
	done
	cat /tmp/rmmod.err
	[ ! -d /sys/module/usb_vsock ]
}

# Slab and available memory must not have grown out of bounds.
memory_bounded() {
	echo 3 > /proc/sys/vm/drop_caches
	slab=$(meminfo Slab)
	avail=$(meminfo MemAvailable)
	echo "Slab: $slab0 -> $slab kB, MemAvailable: $avail0 -> $avail kB"
	say "Slab: $slab0 -> $slab kB, MemAvailable: $avail0 -> $avail kB"
	[ $((slab - slab0)) -lt 65536 ] &&
	[ $((avail0 - avail)) -lt 131072 ]
}

insmod /root/kmod/dummy_hcd.ko num=2 || rc=1
modload libcomposite usb_f_fs vsock_diag || rc=1
modload usb_vsock || rc=1
start_emu dev0 dummy_udc.0 || rc=1
start_emu dev1 dummy_udc.1 || rc=1
t bind test -d "$DRV/1-1:1.0" -a -d "$DRV/2-1:1.0"
$TOOL echo "$(cid0)" 5001 1000 > /dev/null
$TOOL echo "$(cid1)" 5001 1000 > /dev/null
echo 3 > /proc/sys/vm/drop_caches
slab0=$(meminfo Slab)
avail0=$(meminfo MemAvailable)
bg_echo

# A host listener for the Connect floods; it takes one connection.
$TOOL accept 7000 1 echo > /tmp/listener.log 2>&1 &
listener=$!

for m in random mutate magic length type sync connect data echo lengths; do
	t "hostile_$m" hostile $m "$HOSTILE"
done
t hostile_lengths_all hostile lengths 2049
t hostile_mix hostile mix "$MIX"
t pause_forever pause_forever
kill $listener 2> /dev/null
t unplug_cycles unplug_cycles "$UNPLUGS"
t many_conns many_conns "$CONNS"
t send_big $TOOL sink "$(cid0)" 5002 "$BIG"
t receive_big $TOOL source "$(cid0)" 5003 "$BIG"
t slow_readers slow_readers "$SLOW" "$SLOW_BYTES"
touch /tmp/bg.stop
wait $bg_pid
t dev1_all_along sh -c '! [ -s /tmp/bg.fail ] && cat /tmp/bg.rounds || { cat /tmp/bg.fail; false; }'
say "dev1 echo rounds: $(cat /tmp/bg.rounds); dev0 hostile_transfers: $(ctl dev0 get hostile_transfers)"
t memory_bounded memory_bounded
t module_lifetime module_lifetime

guest_done
