#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The usb_vsock integration tests, inside the VM (see integration.sh):
# emulated Fuchsia devices (usb_vsock_emu) on dummy_hcd, AF_VSOCK clients
# (vsock_tool) on the host side. Each test prints one line
#   USB_VSOCK_TEST <name> PASS|FAIL
# and the host counts them. BIG (bytes for the long transfers) and GEN_BIG
# (for those of each device generation) come from /root/itest.conf.

BIG=67108864
GEN_BIG=$BIG
# shellcheck source=/dev/null
. /root/itest.conf
GUEST_TAG=usb_vsock-itest
TT=600
SYNC_WAIT=30
# shellcheck source=tests/vm/guest-lib.sh
. /root/guest-lib.sh
rc=0

cid_matches() {
	[ "$(cat "$(intf "$1")/state")" = up ] &&
	[ "$(cat "$(intf "$1")/cid")" = "$(ctl "$2" get cid)" ] &&
	[ "$(cat "$(intf "$1")/protocol_version")" = "$3" ]
}

# accept_from_device [NAME]: a host listener takes a connection from
# emulator NAME (dev0) and reads what it sends.
accept_from_device() {
	spawn /tmp/accept.log $TOOL accept 7000 1 recv 300000
	pid=$spawned
	if ! wait_line /tmp/accept.log $pid listening 60 ||
	   ! ctl "${1:-dev0}" connect 7000 source 300000; then
		kill $pid
		return 1
	fi
	wait $pid
}

# close_host_side [NAME CID]: the host closes; the device (dev0) must see
# the connection end.
close_host_side() {
	$TOOL echo "${2:-$CID}" 5001 1000 && ctl "${1:-dev0}" wait-idle 10
}

# A Connect the device never answers: connect() times out, the host
# aborts the connection on the wire with a Reset, and the link stays up.
# The device takes packets in order: once it has the Reset, it has
# counted the Connect. The device kept no state for the Connect, so it
# counts the Reset in stray_pkts: the one stray packet of dev0's run
# (emu_clean_dev0 expects it), checked here to be exactly one.
connect_timeout() {
	unanswered=$(ctl dev0 get unanswered)
	resets=$(ctl dev0 get host_resets)
	stray=$(ctl dev0 get stray_pkts)
	$TOOL timeout "$CID" 5006 500 || return 1
	wait_for 60 emu_ge dev0 host_resets $((resets + 1)) ||
		{ echo "no Reset after the timeout"; return 1; }
	stray=$(($(ctl dev0 get stray_pkts) - stray))
	echo "stray packets: $stray"
	[ "$(ctl dev0 get unanswered)" -eq $((unanswered + 1)) ] &&
	[ $stray -eq 1 ] &&
	$TOOL echo "$CID" 5001 1000
}

# socket_filled BUS: the sockets of the device on dummy_hcd instance BUS
# hold more than a socket buffer (256 KiB) unread, within a minute.
socket_filled() {
	wait_for 60 file_gt "$(intf "$1")/rx_queued" 262144
}

# slow_reader CID BYTES VERSION EMU BUS: read BYTES from the source
# service slowly, after the socket has filled past its buffer (256 KiB),
# so that the host has had to hold the device back however fast the
# link is: version 1 by pausing it, version 0 (no Pause) by no longer
# reading the link. The bytes must all arrive, in order and intact
# (vsock_tool checks the pattern and the EOF after them), and no Pause
# may break the protocol (bad_pause: any Pause on v0, a malformed one
# on v1).
# On version 0 the device must have seen it: all its IN writes queued,
# none taken, for half a second at least (in_stalls), while no Pause
# came at all; and the host must have stopped in time: rx_queued_max,
# the most the link ever held unread (this is the only connection of
# dev1's link), stays within the socket buffer plus what was in flight
# when the socket filled (16 IN URBs of 512 bytes, 8 device writes of
# 1024: 64 KiB is ample), where a host that went on reading would take
# in all of BYTES.
slow_reader() {
	p0=$(ctl "$4" get paused_by_host)
	b0=$(ctl "$4" get bad_pause)
	s0=$(ctl "$4" get in_stalls)
	rm -f /tmp/slow.go
	$TOOL source "$1" 5003 "$2" 20 /tmp/slow.go &
	pid=$!
	filled=0
	socket_filled "$5" && filled=1
	touch /tmp/slow.go
	wait $pid || return 1
	[ $filled = 1 ] || { echo "the socket never filled"; return 1; }
	pauses=$(($(ctl "$4" get paused_by_host) - p0))
	bad=$(($(ctl "$4" get bad_pause) - b0))
	stalls=$(($(ctl "$4" get in_stalls) - s0))
	qmax=$(cat "$(intf "$5")/rx_queued_max")
	echo "$pauses Pause(1) from the host, $bad bad Pause"
	echo "$stalls IN stalls (longest $(ctl "$4" get in_stall_max_ms) ms)"
	echo "rx_queued_max $qmax"
	say "slow_reader v$3: $pauses Pause(1), $bad bad Pause, $stalls IN" \
		"stalls (longest $(ctl "$4" get in_stall_max_ms) ms)," \
		"rx_queued_max $qmax"
	[ $bad -eq 0 ] || return 1
	if [ "$3" = 1 ]; then
		[ $pauses -gt 0 ]
	else
		[ $pauses -eq 0 ] && [ $stalls -gt 0 ] &&
		[ "$qmax" -le $((262144 + 65536)) ]
	fi
}

# shut_rd CID BUS: a connection whose unread data stalls a version 0 link
# (BUS) is shut down for reading: its data is dropped and the link goes
# on, so echo on the same device works while the socket stays open.
shut_rd() {
	rm -f /tmp/shut.go /tmp/shut.done
	spawn /tmp/shut.log \
		$TOOL shutrd "$1" 5003 8388608 /tmp/shut.go /tmp/shut.done
	pid=$spawned
	if ! socket_filled "$2"; then
		echo "the socket never filled"
		kill $pid
		return 1
	fi
	touch /tmp/shut.go
	if ! wait_line /tmp/shut.log $pid shut 60; then
		cat /tmp/shut.log
		kill $pid
		return 1
	fi
	$TOOL echo "$1" 5001 1000
	st=$?
	echo "rx_queued $(cat "$(intf "$2")/rx_queued") with the socket open"
	touch /tmp/shut.done
	wait $pid && [ $st -eq 0 ]
}

# v0_stall_bounded CID BUS: on a version 0 link (no Pause), a socket of an
# unprivileged user (uid 65534) with a tiny buffer that never reads stops
# the link only for rx_stall_ms (2 s here): then its connection alone is
# reset with ENOBUFS (rx_overruns), and echo on the same device, started
# while the link stood still, completes.
v0_stall_bounded() {
	p=/sys/module/usb_vsock/parameters/rx_stall_ms
	o0=$(cat "$(intf "$2")/rx_overruns")
	echo 2000 > $p
	rm -f /tmp/hog.done
	spawn /tmp/hog.log $TOOL user 65534 hog "$1" 5003 8388608 0 \
		/tmp/hog.done
	pid=$spawned
	if wait_line /tmp/hog.log $pid connected 60; then
		t0=$(date +%s)
		$TOOL echo "$1" 5001 1000
		st=$?
		echo "echo took $(($(date +%s) - t0)) s"
	else
		st=1
	fi
	touch /tmp/hog.done
	wait $pid
	echo 5000 > $p
	cat /tmp/hog.log
	o=$(($(cat "$(intf "$2")/rx_overruns") - o0))
	echo "$o connections reset"
	[ $st -eq 0 ] && [ $o -eq 1 ] && grep -q "then ENOBUFS" /tmp/hog.log
}

# memcg_charged CID BUS: what a socket holds unread is charged to its
# owner's memory cgroup, although reception runs in a kernel worker. A
# process of cgroup "hog" (uid 65534) asks the source service for 8 MiB
# on a socket of 1 MiB and never reads; once the device is paused, the
# cgroup's memory.current must be at least the bytes the socket holds
# (rx_queued; the process itself is charged a few hundred KiB at most).
memcg_charged() {
	cg=/sys/fs/cgroup
	if [ ! -e $cg/cgroup.controllers ]; then
		mount -t cgroup2 none $cg || return 1
	fi
	echo +memory > $cg/cgroup.subtree_control || return 1
	mkdir -p $cg/hog
	rm -f /tmp/hog.done
	spawn /tmp/hog.log sh -c "echo \$\$ > $cg/hog/cgroup.procs &&
		exec $TOOL user 65534 hog $1 5003 8388608 1048576 /tmp/hog.done"
	pid=$spawned
	st=1
	if wait_line /tmp/hog.log $pid connected 60 &&
		wait_for 60 file_gt "$(intf "$2")/rx_queued" 1048575; then
		sleep 1
		q=$(cat "$(intf "$2")/rx_queued")
		m=$(cat $cg/hog/memory.current)
		echo "the socket holds $q bytes; its cgroup is charged $m"
		say "memcg_charged: socket holds $q bytes, cgroup charged $m"
		[ "$m" -ge "$q" ] && st=0
	fi
	touch /tmp/hog.done
	wait $pid
	cat /tmp/hog.log
	rmdir $cg/hog
	return $st
}

# feed LINE FILE: print LINE, then keep the pipe open until FILE holds
# it (a minute at most). The wire has no half-close: stdin's EOF makes a
# client send Finish, which ends the whole connection, so its input stays
# open until the echo is back.
feed() {
	echo "$1"
	wait_for 60 grep -qs "^$1\$" "$2"
}

# shellcheck disable=SC2094 # feed waits for what the client writes
socat_client() {
	feed hello-socat /tmp/socat.out |
		socat -t 10 - "VSOCK-CONNECT:$CID:5001" > /tmp/socat.out
	out=$(cat /tmp/socat.out)
	echo "socat said: $out"
	[ "$out" = hello-socat ]
}

# shellcheck disable=SC2094
ncat_client() {
	feed hello-ncat /tmp/ncat.out |
		ncat --vsock "$CID" 5001 > /tmp/ncat.out
	out=$(cat /tmp/ncat.out)
	echo "ncat said: $out"
	[ "$out" = hello-ncat ]
}

ss_lists_sockets() {
	spawn /tmp/ss-stream.log $TOOL stream "$CID" 5001
	pid=$spawned
	wait_line /tmp/ss-stream.log $pid connected 60 || return 1
	ss --vsock -a -n > /tmp/ss.out 2>&1
	st=$?
	kill $pid
	cat /tmp/ss.out
	[ $st -eq 0 ] && grep -q "$CID:5001" /tmp/ss.out
}

# unplug_mid_transfer [NAME BUS]: the device (dev0 on bus 1) goes away
# under a running stream, which must end cleanly, and comes back.
unplug_mid_transfer() {
	um_n=${1:-dev0}
	um_bus=${2:-1}
	spawn /tmp/stream.log $TOOL stream "$(cat "$(intf "$um_bus")/cid")" 5001
	pid=$spawned
	wait_line /tmp/stream.log $pid connected 60 || return 1
	ctl "$um_n" unplug || return 1
	wait $pid
	st=$?
	cat /tmp/stream.log
	[ $st -eq 0 ] || return 1
	ctl "$um_n" replug && ctl "$um_n" wait-sync 30 &&
	wait_for 30 iface_up "$um_bus" &&
	$TOOL echo "$(cat "$(intf "$um_bus")/cid")" 5001 5000
}

# The device restarts the link: connections die with ECONNRESET, the link
# synchronizes again with the same CID, and works.
resync_mid_stream() {
	n=$(ctl dev0 get syncs)
	spawn /tmp/resync.log $TOOL stream "$CID" 5001
	pid=$spawned
	wait_line /tmp/resync.log $pid connected 60 || return 1
	ctl dev0 resync || return 1
	wait $pid
	st=$?
	cat /tmp/resync.log
	[ $st -eq 0 ] && ctl dev0 wait-sync 30 $((n + 1)) &&
	[ "$(cat "$(intf 1)/cid")" = "$CID" ] &&
	[ "$(cat "$(intf 1)/resyncs")" -ge 1 ] &&
	$TOOL echo "$CID" 5001 5000
}

# The link coming up again after a device resync announces itself with a
# change uevent on the interface, carrying the state, CID and version.
uevent_on_sync() {
	st=0
	uevent_listen || return 1
	pid=$spawned
	n=$(ctl dev0 get syncs)
	want="ACTION=change DEVPATH=/.*/1-1:1\.0 USB_VSOCK_CID=$CID"
	want="$want USB_VSOCK_STATE=up USB_VSOCK_VERSION=1 "
	ctl dev0 resync && ctl dev0 wait-sync 30 $((n + 1)) || st=1
	wait_for 60 grep -q "^$want\$" /tmp/uevents
	kill $pid
	cat /tmp/uevents
	[ $st -eq 0 ] && grep -q "^$want\$" /tmp/uevents
}

# out_halt: dev0 halts the endpoint the host writes to. The host's next
# transfer fails (EPIPE, counted in tx_errors); the host clears the halt
# and resynchronizes, and the link comes back. A halt left set would fail
# every transfer after it, the handshake's too.
out_halt() {
	i=$(intf 1)
	e0=$(cat "$i/tx_errors")
	n=$(ctl dev0 get syncs)
	ctl dev0 halt-out || return 1
	# Something for the host to send: its Connect is what fails.
	$TOOL echo "$CID" 5001 100 > /tmp/halt.log 2>&1
	echo "echo while halted: exit $?, $(tail -n 1 /tmp/halt.log)"
	ctl dev0 wait-sync 30 $((n + 1)) > /dev/null || return 1
	e=$(($(cat "$i/tx_errors") - e0))
	echo "tx_errors +$e, resyncs $(cat "$i/resyncs")"
	[ "$e" -ge 1 ] && $TOOL echo "$CID" 5001 1 1024 65536
}

# hold N PORT [COUNT]: as an unprivileged user, connect to dev0's PORT
# (asking the source service for COUNT bytes) and keep the socket locked:
# write() from a page that userfaultfd leaves unfilled until
# /tmp/holdN.done exists (vsock_tool hold); $spawned.
hold() {
	rm -f "/tmp/hold$1.done"
	spawn "/tmp/hold$1.log" $TOOL user 65534 hold "$CID" "$2" \
		"/tmp/hold$1.done" $3
	wait_line "/tmp/hold$1.log" "$spawned" holding 60
}

# The host paused the source connection of dev0 that sends to a socket.
source_paused() { ctl dev0 conns | grep -q "svc=source.*host_paused=1"; }

# held_lock: a socket whose owner keeps it locked for as long as it likes
# (a write() blocked in a page fault, as a FUSE mapping allows any user)
# costs nobody else. While one is held the device sends to it: the host
# pauses that connection, and the link serves the others. The device
# resyncs while one is held, and is unplugged while another is: the link
# comes back, and the driver lets go of the device, at once. The held
# write()s then end: the first with its 4096 bytes written, the others
# with ECONNRESET.
held_lock() {
	echo 1 > /proc/sys/vm/unprivileged_userfaultfd || return 1
	hold 3 5003 16777216 || return 1
	h3=$spawned
	wait_for 60 source_paused && echo "paused the held socket's source" &&
		$TOOL echo "$CID" 5001 5000
	st=$?
	touch /tmp/hold3.done
	wait $h3
	cat /tmp/hold3.log
	grep -q "^write: 4096" /tmp/hold3.log || st=1
	[ $st -eq 0 ] || return 1
	hold 1 5001 || return 1
	h1=$spawned
	n=$(ctl dev0 get syncs)
	ctl dev0 resync && ctl dev0 wait-sync 30 $((n + 1)) &&
		wait_for 30 iface_up 1 && $TOOL echo "$CID" 5001 5000 &&
		echo "resynced with a socket held" && hold 2 5001
	st=$?
	h2=$spawned
	if [ $st -eq 0 ]; then
		ctl dev0 unplug && wait_for 30 test ! -e "$DRV/1-1:1.0" &&
			echo "unplugged with a socket held"
		st=$?
		ctl dev0 replug && ctl dev0 wait-sync 30 &&
			wait_for 30 iface_up 1 || st=1
	fi
	touch /tmp/hold1.done /tmp/hold2.done
	wait $h1 || st=1
	[ "$h2" != "$h1" ] && { wait $h2 || st=1; }
	cat /tmp/hold1.log /tmp/hold2.log 2> /dev/null
	grep -q "^write: ECONNRESET" /tmp/hold1.log &&
		grep -q "^write: ECONNRESET" /tmp/hold2.log || st=1
	[ $st -eq 0 ] && $TOOL echo "$(cat "$(intf 1)/cid")" 5001 5000
}

# The device has a connection to host port PORT.
conn_to() { ctl dev0 conns | grep -q "host=2:$1 "; }

# held_listener: a listener whose owner keeps it locked (a setsockopt()
# blocked in a page fault) while the device connects to it. That Connect
# waits for the listener, and the device's Connect to another listener is
# accepted meanwhile. Let go, the listener accepts the one that waited.
held_listener() {
	echo 1 > /proc/sys/vm/unprivileged_userfaultfd || return 1
	rm -f /tmp/hl.done
	spawn /tmp/hl.log $TOOL user 65534 holdlisten 7100 /tmp/hl.done 300000
	hpid=$spawned
	wait_line /tmp/hl.log $hpid holding 60 || return 1
	spawn /tmp/hl2.log $TOOL accept 7101 1 recv 1000
	apid=$spawned
	wait_line /tmp/hl2.log $apid listening 60 || return 1
	# The device waits 5 s for an Accept: all of this must fit in them.
	ctl dev0 connect 7100 source 300000 > /tmp/hl.connect 2>&1 &
	cpid=$!
	# Its Connect is on the wire before the next one.
	wait_for 5 conn_to 7100 && ctl dev0 connect 7101 source 1000 &&
		echo "accepted by another listener while one was held"
	st=$?
	touch /tmp/hl.done
	wait $apid || st=1
	wait $cpid || st=1
	wait $hpid || st=1
	cat /tmp/hl.connect /tmp/hl.log
	[ $st -eq 0 ] && grep -q "^accepted" /tmp/hl.log
}

# dev1 never sends zero-length packets: transfers of 512 bytes (a 488-byte
# echo) must not wait in a half-filled URB.
two_devices() {
	# Ask for the CID dev0 holds: dev1 must get another one.
	start_emu dev1 dummy_udc.1 --cid "$CID" --no-zlp || return 1
	cid1=$(cat "$(intf 2)/cid")
	echo "dev0 CID $CID, dev1 CID $cid1"
	[ "$cid1" != "$CID" ] && cid_matches 2 dev1 1 &&
	$TOOL echo "$cid1" 5001 488 1000 1024 100000 &&
	$TOOL echo "$CID" 5001 100000
}

# Loading must fail cleanly while vhost_vsock holds the H2G slot.
h2g_conflict() {
	modload vhost_vsock || return 1
	if insmod /root/usb_vsock.ko 2> /tmp/h2g.err; then
		rmmod usb_vsock
		return 1
	fi
	# The module's init fails with EBUSY, vsock_core_register()'s.
	cat /tmp/h2g.err
	grep -q "Device or resource busy" /tmp/h2g.err &&
	dmesg | grep "another host-to-guest vsock transport" &&
	rmmod vhost_vsock
}

v0_device() {
	stop_emu dev1
	start_emu dev1 dummy_udc.1 --version 0 || return 1
	cid_matches 2 dev1 0
}

# link_once BUS NAME VERSION: the link to emulator NAME on BUS came up
# exactly once, at VERSION, with the CID the device holds, and never had
# to reset the device.
link_once() {
	lo_i=$(intf "$1")
	echo "host: syncs $(cat "$lo_i/syncs") resyncs $(cat "$lo_i/resyncs")" \
		"dev_resets $(cat "$lo_i/dev_resets") cid $(cat "$lo_i/cid");" \
		"device: syncs $(ctl "$2" get syncs) cid $(ctl "$2" get cid)"
	cid_matches "$1" "$2" "$3" &&
	[ "$(cat "$lo_i/syncs")" = 1 ] && [ "$(ctl "$2" get syncs)" = 1 ] &&
	[ "$(cat "$lo_i/resyncs")" = 0 ] && [ "$(cat "$lo_i/dev_resets")" = 0 ]
}

# gen_sync GENERATION VERSION: a device of that generation on bus 2
# links once, at the best version it offers.
gen_sync() {
	start_emu dev1 dummy_udc.1 --generation "$1" &&
	wait_for 30 iface_up 2 && link_once 2 dev1 "$2"
}

# The device service starts 10 s after its USB function, as at boot: the
# host's Sync waits in the device all that time. The link comes up once,
# with the CID the newest device asks for on its first link (3), and no
# stale Sync ever becomes the final one (bad_final_cid, gave_up: the
# emulator's violation counters, checked by emu_clean).
boot_slow_start() {
	start_emu dev1 dummy_udc.1 --generation v2 --slow-start 10 &&
	wait_for 30 iface_up 2 || return 1
	i=$(intf 2)
	echo "host: syncs $(cat "$i/syncs") resyncs $(cat "$i/resyncs")" \
		"dev_resets $(cat "$i/dev_resets") cid $(cat "$i/cid");" \
		"device: syncs $(ctl dev1 get syncs) host_syncs" \
		"$(ctl dev1 get host_syncs)"
	[ "$(cat "$i/cid")" = 3 ] && [ "$(ctl dev1 get cid)" = 3 ] &&
	[ "$(cat "$i/syncs")" = 1 ] && [ "$(ctl dev1 get syncs)" = 1 ] &&
	[ "$(cat "$i/resyncs")" = 0 ] && emu_clean dev1 &&
	$TOOL echo "$(cat "$i/cid")" 5001 1000
}

# The newest device loses the host's Sync (its service read it, then
# restarted) and sends its reset Sync while the host waits for the
# answer. Another Sync could be a stale one, so the host gives the device
# a second to answer and then resets it, once, and links.
reset_sync_while_syncing() {
	i=$(intf 2)
	n=$(ctl dev1 get syncs)
	r=$(cat "$i/dev_resets")
	ctl dev1 drop-syncs 1 && ctl dev1 reset-sync || return 1
	wait_for 30 emu_ge dev1 dropped_syncs 1 || return 1
	ctl dev1 reset-sync && ctl dev1 wait-sync 30 $((n + 1)) &&
	wait_for 30 iface_up 2 || return 1
	echo "dev_resets $r -> $(cat "$i/dev_resets")," \
		"host Syncs seen by the device: $(ctl dev1 get host_syncs)"
	[ "$(cat "$i/dev_resets")" = $((r + 1)) ] &&
	$TOOL echo "$(cat "$i/cid")" 5001 1000
}

# A device that gave up on its link answers nothing: a host that binds to
# it must revive it with a device reset, and link.
revive_gave_up() {
	n=$(ctl dev1 get syncs)
	ctl dev1 give-up && echo 2-1:1.0 > $DRV/unbind &&
	echo 2-1:1.0 > $DRV/bind || return 1
	ctl dev1 wait-sync 60 $((n + 1)) && wait_for 30 iface_up 2 || return 1
	echo "dev_resets $(cat "$(intf 2)/dev_resets")"
	[ "$(cat "$(intf 2)/dev_resets")" -ge 1 ] &&
	$TOOL echo "$(cat "$(intf 2)/cid")" 5001 1000
}

# odd_packets: a device Connect with a payload is a Connect (Fuchsia
# ignores the payload), a Pause with a bad payload is dropped and counted;
# neither touches the connection streaming meanwhile.
odd_packets() {
	i=$(intf 2)
	c=$(cat "$i/cid")
	e=$(cat "$i/rx_errors")
	s=$(cat "$i/resyncs")
	spawn /tmp/odd-stream.log $TOOL stream "$c" 5001
	spid=$spawned
	spawn /tmp/odd-accept.log $TOOL accept 7001 1 recv 1000
	apid=$spawned
	wait_line /tmp/odd-stream.log $spid connected 60 &&
	wait_line /tmp/odd-accept.log $apid listening 60 &&
	ctl dev1 odd connect-payload 7001 source 1000 && wait $apid &&
	ctl dev1 odd bad-pause && wait_for 30 file_gt "$i/rx_errors" "$e"
	st=$?
	# A stream that ended (ECONNRESET) has been touched.
	sleep 1
	kill -0 $spid || { echo "the stream ended"; st=1; }
	kill $spid
	wait $spid
	cat /tmp/odd-accept.log /tmp/odd-stream.log
	echo "rx_errors $e -> $(cat "$i/rx_errors"), resyncs $s ->" \
		"$(cat "$i/resyncs")"
	[ $st -eq 0 ] && [ "$(cat "$i/rx_errors")" = $((e + 1)) ] &&
	[ "$(cat "$i/resyncs")" = "$s" ]
}

# quad_in_use: a connection the device opened keeps its ports after the
# host's listener closed. Another user (uid 65534) binds the freed port
# and connect()s to the same device port: EADDRINUSE at once, nothing
# reaches the device (emu_clean would count a duplicate Connect), and the
# first user's connection is still open at both ends.
quad_in_use() {
	c=$(cat "$(intf 2)/cid")
	spawn /tmp/adopt.log $TOOL adopt 7002
	apid=$spawned
	wait_line /tmp/adopt.log $apid listening 60 || return 1
	out=$(ctl dev1 connect 7002 echo) || { kill $apid; return 1; }
	dport=${out##*device_port=}
	wait_line /tmp/adopt.log $apid adopted 60 &&
		$TOOL user 65534 refused "$c" "$dport" 98 7002
	st=$?
	ctl dev1 conns | tee /tmp/adopt.conns
	grep -q "state=open dev=$c:$dport host=2:7002 " /tmp/adopt.conns ||
		st=1
	kill -0 $apid || { echo "the first connection ended"; st=1; }
	kill $apid
	wait $apid
	cat /tmp/adopt.log
	[ $st -eq 0 ]
}

# port_reused: a connection the device ended frees its ports at once,
# although the host has not closed its socket yet: the device's next
# Connect from the same port reaches the listener.
port_reused() {
	spawn /tmp/reuse.log $TOOL accept 7003 2 keep 1000
	apid=$spawned
	wait_line /tmp/reuse.log $apid listening 60 &&
		ctl dev1 next-port 5555 && ctl dev1 connect 7003 source 1000 &&
		wait_line /tmp/reuse.log $apid "received 1" 60 &&
		ctl dev1 wait-idle 30 && ctl dev1 next-port 5555 &&
		ctl dev1 connect 7003 source 1000 && wait $apid
	st=$?
	kill $apid 2> /dev/null
	cat /tmp/reuse.log
	[ $st -eq 0 ]
}

# cid_not_local: on a host that is itself a VM guest, the CID the vsock
# core owns as the guest's (here a stub G2H transport's, tests/modules)
# is never a device's. The device holding it asks for it again at its
# next Sync and gets another; connect() to that one reaches the device.
cid_not_local() {
	i=$(intf 2)
	c=$(cat "$i/cid")
	n=$(ctl dev1 get syncs)
	insmod /root/usb_vsock_g2h_stub.ko local_cid="$c" || return 1
	ctl dev1 reset-sync && ctl dev1 wait-sync 30 $((n + 1)) &&
		wait_for 30 iface_up 2
	st=$?
	nc=$(cat "$i/cid")
	echo "the host's own CID $c; the device's now $nc"
	[ $st -eq 0 ] && [ "$nc" != "$c" ] && cid_matches 2 dev1 1 &&
		$TOOL echo "$nc" 5001 1000
	st=$?
	rmmod usb_vsock_g2h_stub || st=1
	[ $st -eq 0 ]
}

# Power management, against the emulator's own model on bus 2 with
# remote wakeup declared (without it, the host never autosuspends a
# device that could not reach it while suspended).
pm_device() {
	start_emu dev1 dummy_udc.1 --remote-wakeup &&
	wait_for 30 iface_up 2
}

runtime_is() {
	[ "$(cat /sys/bus/usb/devices/2-1/power/runtime_status)" = "$1" ]
}

# autosuspend: once allowed (power/control auto), an idle link lets its
# device suspend; connect() wakes it, and an open connection keeps it
# awake until it ends.
autosuspend() {
	p=/sys/bus/usb/devices/2-1/power
	c=$(cat "$(intf 2)/cid")
	echo 0 > $p/autosuspend_delay_ms && echo auto > $p/control || return 1
	st=1
	if ! wait_for 10 runtime_is suspended; then
		echo "an idle link never suspended"
	elif ! $TOOL echo "$c" 5001 1000; then
		echo "connect() to a suspended device failed"
	else
		spawn /tmp/as-stream.log $TOOL stream "$c" 5001
		spid=$spawned
		wait_line /tmp/as-stream.log $spid connected 60 && sleep 2 &&
			runtime_is active && kill -0 $spid && st=0
		echo "with a connection open: $(cat $p/runtime_status)"
		kill $spid
		wait $spid
		wait_for 10 runtime_is suspended ||
			{ echo "did not suspend again"; st=1; }
	fi
	echo on > $p/control
	echo "runtime_suspended_time $(cat $p/runtime_suspended_time) ms"
	[ $st -eq 0 ] && wait_for 10 runtime_is active &&
		$TOOL echo "$c" 5001 1000
}

# system_suspend: a suspend to idle, in the "devices" test mode (every
# device is suspended and resumed, the machine stays up), synchronous
# (pm_async 0) so that the host's side suspends before the emulated
# device's UDC. The driver stays bound across it (the kernel unbinds
# drivers without suspend support), and a connection open at the time
# either goes on (the device resumed with its state) or ends with an
# error rather than hanging (the UDC's suspend took the device off the
# bus, so it is reset on resume: this rig does that); either way the
# link comes back by itself and a new connection works.
system_suspend() {
	i=$(intf 2)
	n=$(cat "$i/syncs")
	down=$(dmesg | grep -c "usb_vsock link down")
	(echo before; sleep 8; echo after) |
		socat -t 5 - "VSOCK-CONNECT:$(cat "$i/cid"):5001" \
		> /tmp/susp.out 2>&1 &
	spid=$!
	sleep 2
	d=/sys/module/suspend/parameters/pm_test_delay
	[ -f $d ] && echo 1 > $d
	echo 0 > /sys/power/pm_async && echo devices > /sys/power/pm_test &&
		echo freeze > /sys/power/state
	st=$?
	echo none > /sys/power/pm_test
	echo 1 > /sys/power/pm_async
	wait $spid
	sst=$?
	down=$(($(dmesg | grep -c "usb_vsock link down") - down))
	echo "socat (exit $sst): $(tr '\n' ' ' < /tmp/susp.out)"
	echo "syncs $n -> $(cat "$i/syncs"), unbound $down times"
	[ $st -eq 0 ] && [ $down -eq 0 ] && wait_for 30 iface_up 2 &&
	$TOOL echo "$(cat "$i/cid")" 5001 1000 || return 1
	if [ $sst -eq 0 ]; then
		[ "$(tr '\n' ' ' < /tmp/susp.out)" = "before after " ]
	else
		[ "$(cat "$i/syncs")" -gt "$n" ]
	fi
}

# usb_reset: a reset through usbfs (usbreset) keeps the driver bound
# (pre_reset, post_reset). The device lost its state, so an open
# connection ends with ECONNRESET; the link comes back by itself and a
# new connection works.
usb_reset() {
	i=$(intf 2)
	c=$(cat "$i/cid")
	n=$(ctl dev1 get syncs)
	spawn /tmp/rst-stream.log $TOOL stream "$c" 5001
	spid=$spawned
	wait_line /tmp/rst-stream.log $spid connected 60 || return 1
	d=/sys/bus/usb/devices/2-1
	node=$(printf /dev/bus/usb/%03d/%03d "$(cat $d/busnum)" \
		"$(cat $d/devnum)")
	$TOOL usbreset "$node" || { kill $spid; return 1; }
	wait $spid
	st=$?
	cat /tmp/rst-stream.log
	[ $st -eq 0 ] && ctl dev1 wait-sync 30 $((n + 1)) &&
		wait_for 30 iface_up 2 &&
		$TOOL echo "$(cat "$i/cid")" 5001 1000
}

# tx_size over the 1024 bytes devices read is clamped, with a warning.
tx_size_clamped() {
	insmod /root/usb_vsock.ko tx_size=4096 || return 1
	st=0
	p=$(cat /sys/module/usb_vsock/parameters/tx_size)
	echo "tx_size=$p"
	[ "$p" = 1024 ] && dmesg | grep -q "tx_size 4096 is more than" &&
	start_emu dev1 dummy_udc.1 --generation v2 &&
	$TOOL echo "$(cat "$(intf 2)/cid")" 5001 1000 65536 || st=1
	stop_emu dev1
	rmmod usb_vsock && [ $st -eq 0 ]
}

# The way a distribution loads it: the device appears, its modalias
# uevent reaches mdev, and modprobe (kmod, over depmod's modules.alias)
# loads usb_vsock and vsock for it.
autoload_by_modalias() {
	mods=/lib/modules/$(uname -r)
	mkdir -p "$mods/extra" /usr/local/bin
	cp /root/kmod/*.ko "$mods/extra/" &&
	cp /root/usb_vsock.ko "$mods/extra/" &&
	ln -sf /usr/bin/kmod /usr/local/bin/depmod &&
	ln -sf /usr/bin/kmod /usr/local/bin/modprobe &&
	/usr/local/bin/depmod -a 2> /dev/null || return 1
	grep usb_vsock "$mods/modules.alias" || return 1
	echo '$MODALIAS=.* 0:0 660 @/usr/local/bin/modprobe -b "$MODALIAS"' \
		> /etc/mdev.conf
	mdev -d
	[ ! -d /sys/module/usb_vsock ] || { echo "loaded already"; return 1; }
	start_emu dev0 dummy_udc.0 || return 1
	lsmod | grep usb_vsock
}

# Every packet on the wire shows in the usb_vsock trace events.
trace_packets() {
	tr=/sys/kernel/tracing
	[ -d $tr/events ] || mount -t tracefs tracefs $tr || return 1
	echo 1 > $tr/events/usb_vsock/enable &&
	echo > $tr/trace &&
	$TOOL echo "$CID" 5001 100 || return 1
	echo 0 > $tr/events/usb_vsock/enable
	grep usb_vsock_ $tr/trace | head -20
	grep -q "usb_vsock_tx_pkt: 1-1:1.0 C device $CID:5001" $tr/trace &&
	grep -q "usb_vsock_rx_pkt: 1-1:1.0 A device $CID:5001" $tr/trace &&
	grep -q "usb_vsock_rx_pkt: 1-1:1.0 D device $CID:5001 .* len 100" \
		$tr/trace
}

list_devices() {
	/root/usb-vsock-list | tee /tmp/list.out
	grep -Eq "^1-1:1.0 +up +$CID +1 +dev0" /tmp/list.out
}

# Stock kernels have USB, the UDC core and configfs as modules.
if [ -f /root/kmod/usbcore.ko ]; then
	modload usbcore udc_core configfs || rc=1
	mount -t configfs configfs /sys/kernel/config || rc=1
fi
insmod /root/kmod/dummy_hcd.ko num=2 || rc=1
modload libcomposite usb_f_fs vsock_diag || rc=1

mkdir -p /etc
t autoload_by_modalias autoload_by_modalias
# Whatever that test did, the rest needs the module and dev0.
modload usb_vsock || rc=1
[ -S /tmp/dev0.sock ] || start_emu dev0 dummy_udc.0
t bind test -d "$DRV/1-1:1.0"
CID=$(cat "$(intf 1)/cid")
t list_devices list_devices
t trace_packets trace_packets
t cid_in_sysfs cid_matches 1 dev0 1
t echo_sizes $TOOL echo "$CID" 5001 1 7 1000 1023 1024 1025 4096 65536 \
	1048576
t send_big $TOOL sink "$CID" 5002 "$BIG"
t receive_big $TOOL source "$CID" 5003 "$BIG"
t parallel_64 $TOOL parallel 64 "$CID" 5001 65536
t accept_from_device accept_from_device
t close_host_side close_host_side
t refused_port $TOOL refused "$CID" 5004 111
t closed_port $TOOL refused "$CID" 6000 111
t connect_timeout connect_timeout
t no_device $TOOL refused 99 5001 101
t seqpacket_refused $TOOL type seqpacket "$CID" 5001
t dgram_refused $TOOL type dgram "$CID" 5001
t socat_client socat_client
t ncat_client ncat_client
t ss_lists_sockets ss_lists_sockets
t slow_reader_v1 slow_reader "$CID" 2097152 1 dev0 1
t memcg_charged memcg_charged "$CID" 1
# A slow device pauses a non-blocking writer, which poll() must wake.
t poll_writable $TOOL psink "$CID" 5005 1048576
t unplug_mid_transfer unplug_mid_transfer
CID=$(cat "$(intf 1)/cid")
t resync_mid_stream resync_mid_stream
t uevent_on_sync uevent_on_sync
t held_lock held_lock
CID=$(cat "$(intf 1)/cid")
t held_listener held_listener
t out_halt out_halt
t two_devices two_devices
# Before an emulator goes, it must have counted no protocol violation
# (guest-lib.sh, emu_clean).
t emu_clean_dev1 emu_clean dev1
t v0_device v0_device
t slow_reader_v0 slow_reader "$(cat "$(intf 2)/cid")" 1048576 0 dev1 2
t shut_rd_v0 shut_rd "$(cat "$(intf 2)/cid")" 2
t v0_stall_bounded v0_stall_bounded "$(cat "$(intf 2)/cid")" 2

t emu_clean_dev1_v0 emu_clean dev1
# connect_timeout's Reset of the Connect dev0 never answered.
t emu_clean_dev0 emu_clean dev0 stray_pkts=1
stop_emu dev1
stop_emu dev0

# The core cases against each device generation in the field (the
# emulator's --generation, ../shared/protocol.md): one device at a time on
# bus 2, with bus 1 empty so that the newest one gets CID 3.
for gen in v0 v2-echo v2; do
	g=$(echo "$gen" | tr -d -)
	v=1
	[ "$gen" = v0 ] && v=0
	t "gen_${g}_sync" gen_sync "$gen" "$v"
	c=$(cat "$(intf 2)/cid")
	t "gen_${g}_echo" $TOOL echo "$c" 5001 1 1000 1023 1024 4096 65536
	t "gen_${g}_send_big" $TOOL sink "$c" 5002 "$GEN_BIG"
	t "gen_${g}_receive_big" $TOOL source "$c" 5003 "$GEN_BIG"
	t "gen_${g}_accept" accept_from_device dev1
	t "gen_${g}_close" close_host_side dev1 "$c"
	t "gen_${g}_unplug" unplug_mid_transfer dev1 2
	t "gen_${g}_clean" emu_clean dev1
	stop_emu dev1
done
t boot_slow_start boot_slow_start
t reset_sync_while_syncing reset_sync_while_syncing
t revive_gave_up revive_gave_up
t odd_packets odd_packets
t quad_in_use quad_in_use
t port_reused port_reused
t cid_not_local cid_not_local
t emu_clean_v2 emu_clean dev1
stop_emu dev1
t pm_device pm_device
t pm_autosuspend autosuspend
t pm_system_suspend system_suspend
t pm_usb_reset usb_reset
stop_emu dev1
t module_unload rmmod usb_vsock
t tx_size_clamped tx_size_clamped
# Needs vhost_vsock (all three kernels have it: kernel.config).
if [ -f /root/kmod/vhost_vsock.ko ]; then
	t h2g_conflict h2g_conflict
fi

guest_done
