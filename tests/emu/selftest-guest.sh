#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest part of tests/emu/selftest.sh, run by tests/vm/run-vm.sh with
# usb_vsock_emu and usbfs_host in /root: the emulator on dummy_udc, driven
# from the host side by usbfs_host through usbfs (no kernel driver).
# Every check appends "SELFTEST: ok NAME" or "SELFTEST: FAIL NAME" to the
# results, printed at the end before the "SELFTEST-DONE" marker.
cd /root || exit 1
# Kernel info messages (USB enumeration) off the console; warnings and
# worse (splats) stay.
dmesg -n 5

R=/tmp/results
: > $R
EMU=./usb_vsock_emu
HOST=./usbfs_host

ok() { echo "SELFTEST: ok $*" >> $R; }
fail() { echo "SELFTEST: FAIL $*" >> $R; }
check() {
	name=$1
	shift
	if "$@"; then ok "$name"; else fail "$name"; fi
}

# start_emu NAME UDC [OPTION...]: an emulator in the background, logging to
# /tmp/NAME.log, with its control socket /tmp/NAME.sock.
start_emu() {
	n=$1
	u=$2
	shift 2
	rm -f /tmp/$n.sock
	$EMU -n $n -u $u -s $n "$@" > /tmp/$n.log 2>&1 &
	eval "pid_$n=$!"
	i=0
	while [ ! -S /tmp/$n.sock ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -S /tmp/$n.sock ] || fail "$n: emulator did not start"
}

# stop_emu NAME: SIGTERM; it must exit 0 and remove its gadget and mount.
stop_emu() {
	eval "p=\$pid_$1"
	kill "$p"
	wait "$p"
	st=$?
	[ $st -eq 0 ] && [ ! -d /sys/kernel/config/usb_gadget/$1 ] &&
		! grep -q "/tmp/ffs-$1 " /proc/mounts
}

ctl() { $EMU ctl "$@"; }

# collect CASE FILE STATUS: results of one usbfs_host run.
collect() {
	sed -n -e "s/^ok [0-9]* - \(.*\)/SELFTEST: ok $1: \1/p" \
		-e "s/^not ok [0-9]* - \(.*\)/SELFTEST: FAIL $1: \1/p" \
		"$2" >> $R
	if grep -q "^usbfs_host: [0-9]* passed, 0 failed" "$2"; then
		grep -q "^ok [0-9]" "$2" || ok "$1"
	else
		fail "$1 (usbfs_host status $3)"
	fi
	echo "---- usbfs_host, $1"
	cat "$2"
}

# host CASE ARG...: run usbfs_host ARG... and collect its results.
host() {
	c=$1
	shift
	$HOST "$@" > /tmp/host.out 2>&1
	collect "$c" /tmp/host.out $?
}

# gone SERIAL: the device has left the host side within 5 s.
gone() {
	i=0
	while grep -qs "^$1\$" /sys/bus/usb/devices/*/serial; do
		[ $i -ge 50 ] && return 1
		sleep 0.1
		i=$((i + 1))
	done
}

# unplug_failure STATUS: the unplug failed usbfs_host (status STATUS,
# output /tmp/unplug.out) the one way it must: after the handshake, its
# transfers failed because the device went away in the middle of the
# source test (status 3, "the device is gone"); not, e.g., because it
# could not find or open the device, or bytes came wrong (status 1).
unplug_failure() {
	[ "$1" -eq 3 ] &&
	grep -q "^usbfs_host: the device is gone" /tmp/unplug.out &&
	grep -q "^ok 1 - sync" /tmp/unplug.out &&
	grep -q "^not ok 2 - source" /tmp/unplug.out
}

t0=$(date +%s)
if ! insmod /root/kmod/dummy_hcd.ko num=2 ||
   ! modload libcomposite usb_f_fs; then
	fail "loading dummy_hcd, libcomposite, usb_f_fs"
fi

# 1. Protocol v1 with zero-length packets (the defaults).
start_emu emu0 dummy_udc.0 -p 0xa026
host v1 --serial emu0 --ctl /tmp/emu0.sock proto
host "v1 zlp-probe" --serial emu0 --in-size 4096 --expect-zlp 1 zlp-probe
check "v1: ZLPs sent" [ "$(ctl /tmp/emu0.sock get tx_zlp)" -gt 0 ]
ctl /tmp/emu0.sock reset-stats
host "v1 device, v0 host" --serial emu0 --ctl /tmp/emu0.sock --version 0 \
	--tests echo,slow-sink,device-connect proto

# Unplug in the middle of a transfer, then replug: as soon as data flows,
# with far more to come than could be moved before the unplug.
ctl /tmp/emu0.sock reset-stats
$HOST --serial emu0 --size 20000000 --tests source proto > /tmp/unplug.out 2>&1 &
hp=$!
i=0
while [ "$(ctl /tmp/emu0.sock get tx_data_bytes)" -eq 0 ] && [ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
check "unplug: command" ctl /tmp/emu0.sock unplug
wait $hp
st=$?
echo "---- usbfs_host, unplugged"
cat /tmp/unplug.out
check "unplug: usbfs_host saw the device go" unplug_failure $st
check "unplug: device gone" gone emu0
check "unplug: link down counted" [ "$(ctl /tmp/emu0.sock get link_downs)" -ge 1 ]
check "replug: command" ctl /tmp/emu0.sock replug
host replug --serial emu0 --ctl /tmp/emu0.sock \
	--tests echo,source,device-connect proto
check "v1: emulator exits cleanly" stop_emu emu0

# 2. A v0 device: no Pause, a slow service stalls the reader.
start_emu emu0 dummy_udc.0 --version 0
host v0 --serial emu0 --ctl /tmp/emu0.sock --expect-version 0 \
	proto
check "v0: no Pause sent" [ "$(ctl /tmp/emu0.sock get tx_pause)" = 0 ]
check "v0: emulator exits cleanly" stop_emu emu0

# 3. A device that never sends zero-length packets.
start_emu emu0 dummy_udc.0 --no-zlp
host no-zlp --serial emu0 --ctl /tmp/emu0.sock proto
host "no-zlp zlp-probe" --serial emu0 --in-size 4096 --expect-zlp 0 zlp-probe
host "no-zlp zlp-probe 1024" --serial emu0 --in-size 1024 --expect-zlp 0 \
	zlp-probe
check "no-zlp: no ZLP sent" [ "$(ctl /tmp/emu0.sock get tx_zlp)" = 0 ]
check "no-zlp: emulator exits cleanly" stop_emu emu0

# 4. Two emulators on two UDCs at once.
start_emu emu1 dummy_udc.0 -p 0xa026 -c 5
start_emu emu2 dummy_udc.1 -p 0xa027 -c 7
$HOST --serial emu1 --ctl /tmp/emu1.sock proto > /tmp/h1.out 2>&1 &
h1=$!
$HOST --serial emu2 --ctl /tmp/emu2.sock proto > /tmp/h2.out 2>&1 &
h2=$!
wait $h1
st1=$?
wait $h2
st2=$?
collect "two devices, 1st" /tmp/h1.out $st1
collect "two devices, 2nd" /tmp/h2.out $st2
check "two devices: 1st got cid 5" [ "$(ctl /tmp/emu1.sock get cid)" = 5 ]
check "two devices: 2nd got cid 7" [ "$(ctl /tmp/emu2.sock get cid)" = 7 ]
check "two devices: 1st exits cleanly" stop_emu emu1
check "two devices: 2nd exits cleanly" stop_emu emu2

# 5. Raw bulk throughput, and how OUT transfers end on the device.
start_emu raw0 dummy_udc.0 --raw --raw-size 16384 --no-zlp --in-reqs 8 \
	--out-reqs 8
host raw-in --serial raw0 --in-urbs 8 --size 16384 --seconds 3 --verify raw-in
host raw-out --serial raw0 --ctl /tmp/raw0.sock --out-urbs 8 --size 16384 \
	--seconds 3 raw-out
check "raw: emulator exits cleanly" stop_emu raw0
start_emu raw1 dummy_udc.0 --raw --raw-size 1024
host out-probe --serial raw1 --ctl /tmp/raw1.sock out-probe
check "out-probe: emulator exits cleanly" stop_emu raw1

# 6. The three Fuchsia device generations (--generation; usbfs_gen.c):
# the handshake of each, the newest one's hazards, ZLPs, and the protocol
# tests with a v1 host.
PT=echo-ping,echo,sink,source,refuse,unknown-data,host-reset,concurrent,pause
PT=$PT,slow-sink,device-connect,resync
for g in v0 v2-echo v2; do
	e=gen$(echo $g | tr -d -)	# a shell name: start_emu sets pid_$e
	s=/tmp/$e.sock
	start_emu $e dummy_udc.0 --generation $g
	check "gen $g: generation key" [ "$(ctl $s get generation)" = $g ]
	host "gen $g" --serial $e --ctl $s --generation $g gen
	ev=1
	[ $g = v0 ] && ev=0
	host "gen $g proto" --serial $e --ctl $s --expect-version $ev \
		--tests $PT proto
	ctl $s reset-stats
	if [ $g = v2 ]; then
		host "gen $g zlp-probe" --serial $e --in-size 1024 \
			--expect-zlp 1 zlp-probe
		check "gen $g: ZLPs sent" [ "$(ctl $s get tx_zlp)" -gt 0 ]
	else
		host "gen $g zlp-probe" --serial $e --in-size 4096 \
			--expect-zlp 0 zlp-probe
		check "gen $g: no ZLP sent" [ "$(ctl $s get tx_zlp)" = 0 ]
	fi
	check "gen $g: emulator exits cleanly" stop_emu $e
	echo "---- /tmp/$e.log"
	cat /tmp/$e.log
done
# A service that starts 8 s after the function: a host Sync waits.
start_emu slow0 dummy_udc.0 --generation v2 --slow-start 8
host "gen v2 slow-start" --serial slow0 --ctl /tmp/slow0.sock \
	--generation v2 --tests slow-start gen
check "gen v2 slow-start: emulator exits cleanly" stop_emu slow0

for f in /tmp/emu0.log /tmp/emu1.log /tmp/emu2.log /tmp/raw0.log \
	 /tmp/raw1.log /tmp/slow0.log; do
	echo "---- $f (last run)"
	cat $f
done
echo "==== results ($(($(date +%s) - t0)) s)"
cat $R
echo "SELFTEST-DONE"
