#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The usb_vsock stress tests, inside the VM (see stress.sh): a hostile
# emulated device (dev0, dummy_udc.0) and a well-behaved one (dev1,
# dummy_udc.1) that must keep serving echo all along. Each test prints
#   USB_VSOCK_TEST <name> PASS|FAIL
# and the host counts them. The sizes come from /root/stress.conf.

# shellcheck source=/dev/null
. /root/stress.conf
# stress.sh sets them all; a missing one ends the guest without its done
# marker, which the host counts as a failure.
: "${PARSE:?}" "${HOSTILE:?}" "${MIX:?}" "${UNPLUGS:?}" "${KILLS:?}" \
	"${CONNS:?}" "${BIG:?}" "${RBIG:?}" "${SLOW:?}" "${SLOW_BYTES:?}" \
	"${TT:?}"
rc=0

GUEST_TAG=usb_vsock-stress
SYNC_WAIT=60
# shellcheck source=tests/vm/guest-lib.sh
. /root/guest-lib.sh

cid0() { cat "$(intf 1)/cid"; }
cid1() { cat "$(intf 2)/cid"; }

meminfo() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }

# The most Slab (kB) seen, sampled every 2 s in the background.
mem_sampler() {
	echo 0 > /tmp/slab.max
	(
		while [ ! -e /tmp/bg.stop ]; do
			v=$(meminfo Slab)
			[ "$v" -gt "$(cat /tmp/slab.max)" ] && echo "$v" > /tmp/slab.max
			sleep 2
		done
	) &
	mem_pid=$!
}

# dev1 serves echo in the background all along; failures go to a file.
bg_echo() {
	: > /tmp/bg.fail
	(
		n=0
		while [ ! -e /tmp/bg.stop ]; do
			$TOOL echo "$(cid1)" 5001 1000 4096 > /tmp/bg.last 2>&1 ||
				{ echo "round $n:"; cat /tmp/bg.last; } >> /tmp/bg.fail
			n=$((n + 1))
			# Renamed into place: a reader never sees it empty.
			echo $n > /tmp/bg.rounds.new
			mv /tmp/bg.rounds.new /tmp/bg.rounds
		done
	) &
	bg_pid=$!
}

dev1_ok() {
	r=$(cat /tmp/bg.rounds 2> /dev/null || echo 0)
	[ -s /tmp/bg.fail ] && { cat /tmp/bg.fail; return 1; }
	# It must still be making progress.
	wait_for 30 file_gt /tmp/bg.rounds "$r" ||
		{ echo "dev1 echo stalled"; return 1; }
	$TOOL echo "$(cid1)" 5001 1 1024 65536
}

# After a hostile run dev0 must synchronize again and serve echo.
dev0_recovers() {
	ctl dev0 wait-sync 120 || { dev0_report; return 1; }
	wait_for 30 iface_up 1
	cat "$(intf 1)/state"
	$TOOL echo "$(cid0)" 5001 1 1000 4096
}

# What both ends of dev0 think, when it did not recover.
dev0_report() {
	echo "host: state=$(stat0 state) cid=$(stat0 cid)" \
		"resyncs=$(stat0 resyncs) rx_errors=$(stat0 rx_errors)" \
		"tx_errors=$(stat0 tx_errors) tx_packets=$(stat0 tx_packets)"
	ctl dev0 stats | grep -E -e '^(proto_errors|err_[a-z_]+|syncs|resyncs)=' \
		-e '^(handshake_restarts|echo_timeouts|forged_sync_restarts)=' \
		-e '^(rx|tx)_(sync|transfers|errors)='
	dmesg | grep -E 'usb_vsock|1-1' | tail -n 20
	tail -n 20 /tmp/dev0.log
}

# hostile_wait COUNT: until dev0 sent COUNT hostile transfers. Under TCG
# on the debug kernel it sends 60 (Connect floods) to 320 a second; the
# limit assumes 25. On failure, the rest is called off, so that the next
# tests start from a well-behaved device.
hostile_wait() {
	ctl dev0 wait-hostile $(($1 / 25 + 600)) && return 0
	ctl dev0 hostile none 0
	return 1
}

# stat0 NAME: a counter of dev0's interface.
stat0() { cat "$(intf 1)/$1"; }

# flood_answered N: connect_flood's N Connects have had their Accept or
# Reset, or had the reply dropped; a, r and d say how many of each since
# a0, r0 and d0.
flood_answered() {
	a=$(($(ctl dev0 get rx_accept) - a0))
	r=$(($(ctl dev0 get rx_reset) - r0))
	d=$(($(stat0 tx_dropped) - d0))
	[ $((a + r + d)) -ge "$1" ]
}

# connect_flood COUNT: COUNT transfers packed with Connects, half to the
# host listener on port 7000 (its backlog fills), half to closed ports.
# They are valid packets: the link must not resync, and every Connect
# gets an Accept or a Reset unless the reply was dropped (tx_dropped)
# because too many were waiting.
connect_flood() {
	c0=$(ctl dev0 get hostile_connects)
	a0=$(ctl dev0 get rx_accept)
	r0=$(ctl dev0 get rx_reset)
	d0=$(stat0 tx_dropped)
	s0=$(stat0 resyncs)
	ctl dev0 hostile connect "$1" 7000 || return 1
	hostile_wait "$1" || return 1
	n=$(($(ctl dev0 get hostile_connects) - c0))
	sent "$1"
	wait_for 30 flood_answered "$n"
	echo "$n Connects: $a Accepts, $r Resets, $d replies dropped; resyncs $s0 -> $(stat0 resyncs)"
	say "connect flood: $n Connects: $a Accepts, $r Resets, $d replies dropped"
	[ "$(stat0 resyncs)" = "$s0" ] && [ $((a + r + d)) -eq "$n" ] &&
		[ "$a" -ge 1 ] && [ "$r" -ge 1 ] || return 1
	dev0_recovers && dev1_ok
}

# sent N: add N to the hostile transfers of the run (dev0's emulator
# restarts, and its own count with it).
echo 0 > /tmp/hostile.total
sent() { echo $(($(cat /tmp/hostile.total) + $1)) > /tmp/hostile.total; }

# hostile MODE COUNT: dev0 sends COUNT hostile transfers; the driver stays
# up, dev0 comes back, dev1 keeps serving.
hostile() {
	before=$(ctl dev0 get hostile_transfers)
	ctl dev0 hostile "$1" "$2" 7000 || return 1
	hostile_wait "$2" || return 1
	after=$(ctl dev0 get hostile_transfers)
	ctl dev0 get forged_sync_restarts > /tmp/forged.count
	echo "$1: $((after - before)) hostile transfers;" \
		"forged Syncs answered so far: $(cat /tmp/forged.count)"
	sent $((after - before))
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
	wait_line /tmp/pstream.log $pid connected 60 || return 1
	ctl dev0 hostile pause 50 && ctl dev0 wait-hostile 600 || return 1
	sent 50
	sleep 3
	kill -0 $pid || { echo "stream ended while paused"; cat /tmp/pstream.log; return 1; }
	ctl dev0 resync || return 1
	wait $pid
	st=$?
	cat /tmp/pstream.log
	[ $st -eq 0 ] && dev0_recovers && dev1_ok
}

# A device that stops reading the link while it floods a listener with
# Connects, whose connections are accepted and closed at once: the host
# queues an Accept and a Finish for each until it counts the device as
# wedged and resynchronizes the link, which frees the queue. The flood is
# not counted in the hostile total: how many transfers it takes depends on
# how fast the listener accepts.
wedged_link() {
	s0=$(stat0 resyncs)
	d0=$(stat0 tx_dropped)
	c0=$(ctl dev0 get hostile_connects)
	$TOOL accept 7001 100000000 close > /tmp/wedge.log 2>&1 &
	pid=$!
	wait_line /tmp/wedge.log $pid listening 60 || return 1
	ctl dev0 hold-out 1 && ctl dev0 hostile connect 100000000 7001 ||
		return 1
	wait_for 600 file_gt "$(intf 1)/resyncs" "$s0"
	st=$?
	ctl dev0 hostile none 0
	ctl dev0 hold-out 0
	kill $pid
	msg="$(($(ctl dev0 get hostile_connects) - c0)) Connects,"
	msg="$msg $(($(stat0 tx_dropped) - d0)) packets dropped,"
	msg="$msg resyncs $s0 -> $(stat0 resyncs)"
	echo "$msg"
	dmesg | grep "leaves the link unread" | tail -n 1
	say "wedged link: $msg"
	[ $st -eq 0 ] && dev0_recovers && dev1_ok
}

# Unplug dev0 with 16 connections in flight, COUNT times: every socket
# must wake with ECONNRESET (vsock_tool streams exits 0 then) within 30 s.
unplug_cycles() {
	c=0
	while [ $c -lt "$1" ]; do
		: > /tmp/us.log
		$TOOL streams 16 "$(cid0)" 5001 >> /tmp/us.log 2>&1 &
		pid=$!
		if ! wait_line /tmp/us.log $pid "connected 16" 60; then
			echo "cycle $c: the streams did not connect:"
			cat /tmp/us.log
			kill $pid 2> /dev/null
			return 1
		fi
		ctl dev0 unplug || return 1
		if ! wait_for 30 exited $pid; then
			echo "cycle $c: sockets still blocked 30 s after the unplug"
			kill $pid
			return 1
		fi
		wait $pid || { echo "cycle $c:"; cat /tmp/us.log; return 1; }
		ctl dev0 replug && ctl dev0 wait-sync 60 > /dev/null || return 1
		wait_for 30 iface_up 1
		c=$((c + 1))
	done
	echo "$c unplug cycles, 16 sockets woken with ECONNRESET in each"
	dev0_recovers && dev1_ok
}

# Kill dev0's emulator (SIGKILL, as a crash or an unload would) while the
# host waits for the answer to its Sync, COUNT times: a --mute emulator
# never answers. The first time, wait for the host's second Sync, so that
# its retry to a silent device is seen too. The interface must go away,
# and a normal emulator must then synchronize and serve.
emu_kills() {
	stop_emu dev0
	c=0
	while [ $c -lt "$1" ]; do
		want=1
		[ $c -eq 0 ] && want=2
		rm -f /tmp/dev0.sock
		$EMU -n dev0 -u dummy_udc.0 --mute > /tmp/dev0.log 2>&1 &
		pid=$!
		if ! wait_for 30 emu_ge dev0 rx_sync $want; then
			echo "cycle $c: no Sync from the host"
			cat /tmp/dev0.log
			return 1
		fi
		st=$(stat0 state)
		[ "$st" = syncing ] || { echo "cycle $c: state $st, not syncing"; return 1; }
		kill -9 $pid
		wait $pid 2> /dev/null
		wait_for 30 test ! -d "$DRV/1-1:1.0" ||
			{ echo "cycle $c: the interface stayed bound"; return 1; }
		c=$((c + 1))
	done
	echo "$c emulators killed mid-handshake, the host's Sync retry seen"
	rm -f /tmp/dev0.sock
	start_emu dev0 dummy_udc.0 && dev0_recovers && dev1_ok
}

# The BIG bytes sent to dev1's sink since the start must arrive, checked.
big_done() {
	while [ ! -e /tmp/big.rc ]; do
		sleep 1
	done
	cat /tmp/big.log
	echo "$BIG bytes to dev1, exit status $(cat /tmp/big.rc)"
	[ "$(cat /tmp/big.rc)" = 0 ]
}

# COUNT connections to dev0's echo service open at once, each echoing 4 KiB
# of checked data.
many_conns() {
	$TOOL many "$1" "$(cid0)" 5001 4096
}

# COUNT readers of BYTES each from dev0's source service. They read
# nothing until the device has filled every socket past its buffer (256
# KiB by default) and the host has paused each connection, so the flood
# does not depend on how fast the emulated link is; then they take 4 KiB
# every 500 ms. Nothing may be lost, and the received bytes the sockets
# hold (rx_queued_max, on an interface bound afresh by emu_kills) must
# stay within twice their buffer size each, plus what the IN URBs had in
# flight; nothing may stay queued at the end.
slow_readers() {
	q0=$(stat0 rx_queued_max)
	p0=$(ctl dev0 get paused_by_host)
	rm -f /tmp/slow.go
	pids=
	k=0
	while [ $k -lt "$1" ]; do
		$TOOL source "$(cid0)" 5003 "$2" 500 /tmp/slow.go \
			> "/tmp/slow$k.log" 2>&1 &
		pids="$pids $!"
		k=$((k + 1))
	done
	# A bound on the wait so that a device that never floods fails the
	# test instead of hanging it; filling 16 x 256 KiB takes seconds.
	wait_for 300 emu_ge dev0 paused_by_host $((p0 + $1))
	filled=$(($(ctl dev0 get paused_by_host) - p0))
	touch /tmp/slow.go
	bad=0
	for p in $pids; do
		wait "$p" || bad=$((bad + 1))
	done
	[ $bad -eq 0 ] || { cat /tmp/slow*.log; return 1; }
	max=$(stat0 rx_queued_max)
	limit=$(($1 * 2 * 262144 + 65536))
	pauses=$(($(ctl dev0 get paused_by_host) - p0))
	echo "rx_queued_max $q0 -> $max bytes (limit $limit), rx_queued $(stat0 rx_queued), $filled of $1 connections paused before reading, $pauses Pause packets"
	say "slow readers: rx_queued_max $max bytes, limit $limit, $pauses Pause packets"
	[ "$filled" -ge "$1" ] && [ "$max" -le $limit ] &&
		[ "$(stat0 rx_queued)" -eq 0 ] || return 1
	dev1_ok
}

unload() { rmmod usb_vsock 2> /tmp/rmmod.err; }

# An open socket pins the module; closing it lets rmmod go.
module_lifetime() {
	$TOOL stream "$(cid1)" 5001 > /tmp/pin.log 2>&1 &
	pid=$!
	wait_line /tmp/pin.log $pid connected 60 || return 1
	if unload; then
		echo "rmmod succeeded with a socket open"
		return 1
	fi
	cat /tmp/rmmod.err
	grep -Eiq "in use|busy|temporarily unavailable" /tmp/rmmod.err || return 1
	kill $pid
	wait $pid
	stop_emu dev1
	stop_emu dev0
	wait_for 60 unload
	cat /tmp/rmmod.err
	[ ! -d /sys/module/usb_vsock ]
}

# Slab and available memory must not have grown out of bounds, at the end
# or at any sample during the run. KASAN's quarantine alone may hold
# 1/32 of the memory (64 MiB) in freed slab objects.
memory_bounded() {
	echo 3 > /proc/sys/vm/drop_caches
	slab=$(meminfo Slab)
	avail=$(meminfo MemAvailable)
	peak=$(cat /tmp/slab.max)
	echo "Slab: $slab0 -> $slab kB (peak $peak), MemAvailable: $avail0 -> $avail kB"
	say "Slab: $slab0 -> $slab kB (peak $peak), MemAvailable: $avail0 -> $avail kB"
	[ $((slab - slab0)) -lt 98304 ] &&
	[ $((peak - slab0)) -lt 196608 ] &&
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
mem_sampler
# The big checksummed transfer goes to dev1 while dev0 is hostile and
# unplugged, so that it also shows dev1 served all along.
rm -f /tmp/big.rc
($TOOL sink "$(cid1)" 5002 "$BIG" > /tmp/big.log 2>&1; echo $? > /tmp/big.rc) &

echo 0 > /tmp/forged.count

# A host listener for the Connect floods; it takes one connection.
$TOOL accept 7000 1 echo > /tmp/listener.log 2>&1 &
listener=$!

# Garbage for the parser, the cheapest to send, makes the bulk of the
# long run's million transfers.
for m in random mutate magic length type; do
	t "hostile_$m" hostile $m "$PARSE"
done
t hostile_sync hostile sync "$HOSTILE"
t hostile_connect connect_flood "$HOSTILE"
for m in data echo lengths; do
	t "hostile_$m" hostile $m "$HOSTILE"
done
t hostile_lengths_all hostile lengths 2049
t hostile_mix hostile mix "$MIX"
t pause_forever pause_forever
t wedged_link wedged_link
kill $listener 2> /dev/null
t unplug_cycles unplug_cycles "$UNPLUGS"
t emu_kills emu_kills "$KILLS"
t slow_readers slow_readers "$SLOW" "$SLOW_BYTES"
t many_conns many_conns "$CONNS"
t receive_big $TOOL source "$(cid0)" 5003 "$RBIG"
t send_big_dev1 big_done
touch /tmp/bg.stop
wait $bg_pid $mem_pid
t dev1_all_along sh -c '! [ -s /tmp/bg.fail ] && cat /tmp/bg.rounds || { cat /tmp/bg.fail; false; }'
say "dev1 echo rounds: $(cat /tmp/bg.rounds); hostile transfers: $(cat /tmp/hostile.total);" \
	"forged Syncs the host answered: $(cat /tmp/forged.count)"
t hostile_total test "$(cat /tmp/hostile.total)" -eq $((5 * PARSE + 5 * HOSTILE + 2049 + MIX + 50))
t memory_bounded memory_bounded
t module_lifetime module_lifetime

guest_done
