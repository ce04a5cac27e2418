#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest part of tests/bench/bench.sh, run by tests/vm/run-vm.sh: on one
# dummy_hcd link, RUNS rounds of (1) raw bulk via usbfs against the
# emulator in --raw mode, (2) usb_vsock with default module parameters and
# (3) with ffx-like ones (tx_urbs=1 rx_urbs=2), the module reloaded between.
# Each result is one console line
#   BENCH ROW RUN key=value...
# for the host to take medians of. SECS and RUNS come from /root/bench.conf.
cd /root || exit 1
dmesg -n 1
EMU=./usb_vsock_emu
HOST=./usbfs_host
VB=./vsock_bench
DRV=/sys/bus/usb/drivers/usb_vsock
SECS=2
RUNS=3
# shellcheck source=/dev/null
. /root/bench.conf

# Busy jiffies (USER_HZ) of all CPUs.
cpu() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

start_emu() {
	n=$1
	shift
	rm -f "/tmp/$n.sock"
	$EMU -n "$n" -u dummy_udc.0 -s "$n" "$@" > "/tmp/$n.log" 2>&1 &
	i=0
	while [ ! -S "/tmp/$n.sock" ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}

stop_emu() {
	$EMU ctl "/tmp/$1.sock" quit > /dev/null 2>&1
	i=0
	while [ -S "/tmp/$1.sock" ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}

# raw RUN SIZE: usbfs bulk IN and OUT, 8 URBs of SIZE in flight.
raw() {
	r=$1
	sz=$2
	start_emu raw0 --raw --raw-size "$sz" --no-zlp --in-reqs 8 \
		--out-reqs 8
	for dir in in out; do
		c0=$(cpu)
		$HOST "raw-$dir" --serial raw0 --ctl /tmp/raw0.sock \
			--"$dir"-urbs 8 --size "$sz" --seconds "$SECS" \
			> /tmp/raw.out 2>&1
		c1=$(cpu)
		l=$(grep "^raw-$dir: [0-9]* bytes in" /tmp/raw.out)
		if [ -n "$l" ]; then
			echo "$l" | awk -v r="$r" -v row="raw_${dir}_$sz" \
				-v c="$((c1 - c0))" '{
				printf "BENCH %s %s bytes=%s secs=%s mbps=%s cpu_s_per_gib=%.2f\n",
					row, r, $2, $5, $8, c / 100 / ($2 / 1073741824) }'
		else
			echo "BENCH raw_${dir}_$sz $r error"
			sed 's/^/  raw: /' /tmp/raw.out
		fi
	done
	stop_emu raw0
}

# vs RUN CONF [PARAM...]: usb_vsock with module parameters PARAM.
vs() {
	r=$1
	conf=$2
	shift 2
	insmod /root/usb_vsock.ko "$@" || { echo "BENCH insmod failed"; return; }
	start_emu dev0
	$EMU ctl /tmp/dev0.sock wait-sync 30 > /dev/null
	sysd=$DRV/1-1:1.0/usb_vsock
	cid=$(cat "$sysd/cid")
	for dir in sink source; do
		for n in 1 8 64; do
			res=$($VB tput "$cid" "$dir" "$n" "$SECS" 2>&1 |
			      grep BENCHRES)
			echo "BENCH vs_${conf}_${dir}_$n $r ${res#BENCHRES }"
			sleep 0.5
		done
	done
	res=$($VB rtt "$cid" "$RTT_COUNT" 2>&1 | grep BENCHRES)
	echo "BENCH vs_${conf}_rtt $r ${res#BENCHRES }"
	res=$($VB connect "$cid" "$SECS" 2>&1 | grep BENCHRES)
	echo "BENCH vs_${conf}_connect $r ${res#BENCHRES }"
	if [ "$r" = 1 ]; then
		for f in "$sysd"/*; do
			[ -f "$f" ] && echo "STAT $conf $(basename "$f") $(tr '\n' ' ' < "$f" 2>/dev/null)"
		done
	fi
	stop_emu dev0
	rmmod usb_vsock
}

# The alternative: TCP over a CDC-NCM gadget on the same link, the gadget
# end (vsock_bench tcpserve) in network namespace g so that traffic
# crosses USB. Needs iproute2's ip (VM_HOST_BINS) and the NCM modules.
IP=/usr/sbin/ip
ncm_up() {
	[ -x $IP ] || { echo "BENCH-NCM n/a: no iproute2 ip"; return 1; }
	modload usb_f_ncm cdc_ncm ||
		{ echo "BENCH-NCM n/a: no NCM modules"; return 1; }
	g=/sys/kernel/config/usb_gadget/ncm
	mkdir $g || { echo "BENCH-NCM n/a: no configfs gadget"; return 1; }
	echo 0x1d6b > $g/idVendor
	echo 0x0104 > $g/idProduct
	mkdir $g/strings/0x409
	echo ncm > $g/strings/0x409/serialnumber
	mkdir $g/functions/ncm.usb0 $g/configs/c.1
	ln -s $g/functions/ncm.usb0 $g/configs/c.1/
	echo dummy_udc.0 > $g/UDC ||
		{ echo "BENCH-NCM n/a: cannot bind the NCM gadget"; return 1; }
	gif=$(cat $g/functions/ncm.usb0/ifname)
	hif=
	i=0
	while [ -z "$hif" ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
		for n in /sys/class/net/*; do
			case "$(readlink "$n/device/driver")" in
			*cdc_ncm) hif=$(basename "$n") ;;
			esac
		done
	done
	[ -n "$hif" ] || { echo "BENCH-NCM n/a: host cdc_ncm did not bind"; return 1; }
	mkdir -p /run/netns /var/run
	$IP netns add g || { echo "BENCH-NCM n/a: ip netns add failed"; return 1; }
	$IP link set "$gif" netns g ||
		{ echo "BENCH-NCM n/a: cannot move $gif to netns g"; return 1; }
	$IP netns exec g $IP addr add 10.9.0.2/24 dev "$gif"
	$IP netns exec g $IP link set "$gif" up
	$IP netns exec g $IP link set lo up
	$IP addr add 10.9.0.1/24 dev "$hif"
	$IP link set "$hif" up
	$IP netns exec g $VB tcpserve 5201 > /tmp/tcpserve.log 2>&1 &
	i=0
	until $VB tcp-rtt 10.9.0.2 1 > /dev/null 2>&1; do
		sleep 0.2
		i=$((i + 1))
		[ $i -lt 100 ] || { echo "BENCH-NCM n/a: no TCP to the gadget"; return 1; }
	done
	echo "BENCH-NCM up: host $hif, gadget $gif in netns g"
}

ncm() {
	r=$1
	for dir in out in; do
		for n in 1 8; do
			res=$($VB tcp-tput 10.9.0.2 "$dir" "$n" "$SECS" 2>&1 |
			      grep BENCHRES)
			echo "BENCH ncm_tcp_${dir}_$n $r ${res#BENCHRES }"
		done
	done
	res=$($VB tcp-rtt 10.9.0.2 "$RTT_COUNT" 2>&1)
	echo "BENCH ncm_rtt $r ${res#BENCHRES }"
}

if [ -f /root/kmod/usbcore.ko ]; then
	modload usbcore udc_core configfs
	mount -t configfs configfs /sys/kernel/config
fi
insmod /root/kmod/dummy_hcd.ko num=1
modload libcomposite usb_f_fs vsock

# Where the time goes (PROFILE=1): per case, a system-wide perf profile
# (cpu-clock samples; TCG has no PMU), context switches, and the USB
# transfers the emulator ($pemu) saw, per MiB moved.
ctxt() { awk '$1 == "ctxt" { print $2 }' /proc/stat; }

prof() {
	name=$1
	shift
	x0=$(ctxt)
	s0=$($EMU ctl "/tmp/$pemu.sock" stats)
	perf record -q -a -g -e cpu-clock -F 499 -o /tmp/perf.data -- "$@" \
		> /tmp/prof.out 2>&1
	x1=$(ctxt)
	s1=$($EMU ctl "/tmp/$pemu.sock" stats)
	res=$(grep BENCHRES /tmp/prof.out)
	echo "PROFILE $name ${res#BENCHRES }"
	mib=$(echo "$res" | sed -n 's/.* bytes=\([0-9]*\).*/\1/p')
	mib=$(( ${mib:-0} / 1048576 ))
	[ "$mib" -gt 0 ] || mib=1
	for k in rx_transfers tx_transfers; do
		a=$(echo "$s0" | awk -F= -v k="$k" '$1 == k { print $2 }')
		b=$(echo "$s1" | awk -F= -v k="$k" '$1 == k { print $2 }')
		echo "PROFILE $name $k per MiB: $(( (b - a) / mib ))"
	done
	echo "PROFILE $name context switches per MiB: $(( (x1 - x0) / mib ))"
	perf report -i /tmp/perf.data --stdio --no-children --sort comm \
		-g none --percent-limit 2 2> /dev/null | grep '%' |
		sed "s/^/PROFILE $name by process: /"
	# Samples land where interrupts come back on: charge them to the
	# caller of the irq-restoring unlock, i.e. the code that ran with
	# interrupts off.
	perf report -i /tmp/perf.data --stdio --no-children --sort sym \
		-g caller,0.5,callee,function,percent --max-stack 3 \
		--percent-limit 3 2> /dev/null | grep -v '^$' | grep -v '^#' |
		head -n 60 | sed "s/^/PROFILE $name by symbol: /"
}

profile() {
	echo 0 > /proc/sys/kernel/kptr_restrict
	echo -1 > /proc/sys/kernel/perf_event_paranoid
	pemu=raw0
	start_emu raw0 --raw --raw-size 1024 --no-zlp --in-reqs 8 --out-reqs 8
	prof raw_out_1024 sh -c "$HOST raw-out --serial raw0 --ctl /tmp/raw0.sock --out-urbs 8 --size 1024 --seconds $SECS | sed -n 's/^raw-out: \([0-9]*\) bytes in.*/BENCHRES bytes=\1/p'"
	stop_emu raw0
	pemu=dev0
	# shellcheck disable=SC2086 # PARAMS: module parameters, split
	insmod /root/usb_vsock.ko $PARAMS
	start_emu dev0
	$EMU ctl /tmp/dev0.sock wait-sync 30 > /dev/null
	cid=$(cat $DRV/1-1:1.0/usb_vsock/cid)
	for dir in sink source; do
		for n in 1 64; do
			prof "vs_${dir}_$n" $VB tput "$cid" "$dir" "$n" "$SECS"
		done
	done
	stop_emu dev0
	rmmod usb_vsock
}

if [ "${PROFILE:-0}" = 1 ]; then
	profile
	echo "BENCH-DONE"
	exit 0
fi

r=1
while [ $r -le "$RUNS" ]; do
	echo "BENCH-PROGRESS run $r"
	raw "$r" 512
	raw "$r" 1024
	raw "$r" 16384
	vs "$r" def
	vs "$r" ffx tx_urbs=1 rx_urbs=2
	r=$((r + 1))
done
if ncm_up; then
	r=1
	while [ $r -le "$RUNS" ]; do
		ncm "$r"
		r=$((r + 1))
	done
fi
echo "BENCH-DONE"
