#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot a kernel build under qemu (TCG) with a throwaway busybox initramfs
# and run one guest script in it.
#
# usage: run-vm.sh KERNEL_BUILD_DIR GUEST_SCRIPT LOG [FILE...]
#
# Guest layout:
#   /guest.sh       GUEST_SCRIPT, run with sh by /init; then /init waits 6 s
#                   for deferred work, scans for leaks (kmemleak), prints
#                   "USB_VSOCK_HEALTH tainted=N debug_locks=N|none
#                   kmemleak=ok|failed|none" (see guest_health in lib.sh)
#                   and reboots
#   /root/NAME      each FILE, by basename (the guest's working directory)
#   /root/kmod/*.ko every module of the kernel build (vsock, dummy_hcd, ...)
#   /bin/modload    "modload NAME..." insmods modules from /root/kmod and
#                   /root with their dependencies first (no modprobe/depmod)
# Mounted by /init: proc, sysfs, devtmpfs, debugfs (/sys/kernel/debug),
# configfs (/sys/kernel/config), tmpfs on /tmp.
#
# Kernel messages carry printk timestamps ("[    1.234567] ") so that
# check-log.sh can tell them from guest output; userspace can put lines in
# that stream, in order with kernel messages, by writing to /dev/kmsg.
#
# The whole serial console goes to LOG. Exit status: 0 if qemu exited by
# itself within VM_TIMEOUT seconds (default 600), non-zero otherwise. Test
# verdicts are the caller's business.
#
# Environment: VM_TIMEOUT (s), VM_MEM (default 2G), VM_SMP (default 2),
# VM_APPEND (extra kernel command line), BUSYBOX (default /bin/busybox),
# VM_HOST_BINS (dynamically linked host programs or libraries, e.g.
# /usr/bin/socat, copied to the same path with the libraries ldd names for
# them).
set -euo pipefail

usage() {
	echo "usage: $0 KERNEL_BUILD_DIR GUEST_SCRIPT LOG [FILE...]" >&2
	exit 2
}
[ $# -ge 3 ] || usage
kb=$(cd "$1" && pwd)
guest=$2
log=$3
shift 3

timeout_s=${VM_TIMEOUT:-600}
busybox=${BUSYBOX:-/bin/busybox}
bzimage=$kb/arch/x86/boot/bzImage

die() { echo "run-vm: $*" >&2; exit 1; }
[ -f "$bzimage" ] || die "no $bzimage"
[ -f "$guest" ] || die "no guest script $guest"
# A dynamically linked busybox would find no libc in the initramfs.
readelf -l "$busybox" 2>/dev/null | grep -q INTERP &&
	die "$busybox is not static (install busybox-static)"
command -v modinfo >/dev/null || die "modinfo (kmod) is needed"

mkdir -p "$(dirname "$log")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# gen_init_cpio (built with every kernel that has BLK_DEV_INITRD) takes a
# file list, so nothing needs root: no mknod, no chown.
gen=$kb/usr/gen_init_cpio
if [ ! -x "$gen" ]; then
	# A stock kernel comes without its build tree: use the source's.
	cc -O2 -o "$tmp/gen_init_cpio" \
		"$("$(dirname "$0")/kernel-source.sh")/usr/gen_init_cpio.c" ||
		die "cannot build gen_init_cpio"
	gen=$tmp/gen_init_cpio
fi

list=$tmp/list
# gen_init_cpio's list is whitespace separated: refuse names it would split.
noblank() {
	case "$1" in *[[:space:]]*) die "file name with blanks: $1" ;; esac
}

cat > "$tmp/init" <<'EOF'
#!/bin/sh
# PID 1 of the test VM: mount the usual filesystems, run the guest script,
# reboot (qemu runs with -no-reboot, so that ends qemu).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t configfs configfs /sys/kernel/config
mount -t tmpfs tmpfs /tmp
cd /root
sh /guest.sh
echo "run-vm: guest.sh exited with status $?"
# The same end for every guest. Deferred work of what the guest unloaded
# (RCU callbacks, work items, timers) may still splat: give it time, which
# also lets kmemleak see the objects (it ignores those younger than 5 s).
# A second scan catches objects whose contents changed during the first.
sleep 6
kml=none
if [ -e /sys/kernel/debug/kmemleak ]; then
	kml=ok
	echo scan > /sys/kernel/debug/kmemleak || kml=failed
	echo scan > /sys/kernel/debug/kmemleak || kml=failed
	cat /sys/kernel/debug/kmemleak || kml=failed
fi
locks=$(sed -n 's/^ *debug_locks: *//p' /proc/lockdep_stats 2>/dev/null)
echo "USB_VSOCK_HEALTH tainted=$(cat /proc/sys/kernel/tainted)" \
	"debug_locks=${locks:-none} kmemleak=$kml" > /dev/kmsg
# Console output through the tty is transmitted asynchronously: let it drain
# before the reset throws it away.
sleep 1
reboot -f
EOF

cat > "$tmp/modload" <<'EOF'
#!/bin/sh
# modload NAME...: insmod each module after its dependencies, as listed by
# the host in /root/kmod/modules.deps ("name path dep..."). Modules already
# present (/sys/module/NAME) are skipped.
deps=/root/kmod/modules.deps
load() {
	local n line path d
	n=$(echo "$1" | tr - _)
	[ -d "/sys/module/$n" ] && return 0
	# -m1: a FILE module shadows the kernel build's one of the same name.
	line=$(grep -m1 "^$n " "$deps") || { echo "modload: no module $n" >&2; return 1; }
	set -- $line
	path=$2
	shift 2
	for d in "$@"; do
		load "$d" || return 1
	done
	insmod "$path" || { echo "modload: insmod $path failed" >&2; return 1; }
}
rc=0
for m in "$@"; do
	load "$m" || rc=1
done
exit $rc
EOF

{
	echo "dir /bin 755 0 0"
	echo "dir /sbin 755 0 0"
	echo "dir /usr 755 0 0"
	echo "dir /usr/bin 755 0 0"
	echo "dir /usr/sbin 755 0 0"
	for d in dev proc sys tmp root root/kmod; do
		echo "dir /$d 755 0 0"
	done
	echo "nod /dev/console 600 0 0 c 5 1"
	echo "nod /dev/null 666 0 0 c 1 3"
	noblank "$busybox"
	echo "file /bin/busybox $busybox 755 0 0"
	# The applet links, made here rather than by "busybox --install" at boot.
	"$busybox" --list-full | while read -r a; do
		[ "$a" = bin/busybox ] || echo "slink /$a /bin/busybox 777 0 0"
	done
	echo "file /init $tmp/init 755 0 0"
	echo "file /bin/modload $tmp/modload 755 0 0"
	noblank "$guest"
	echo "file /guest.sh $(cd "$(dirname "$guest")" && pwd)/$(basename "$guest") 755 0 0"
} > "$list"

deps=$tmp/modules.deps
: > "$deps"
# One "name path dep..." line per module, for modload.
add_dep() {
	local ko=$1 dest=$2 name d
	name=$(basename "$ko" .ko | tr - _)
	d=$(modinfo -F depends "$ko" | tr , ' ')
	echo "$name $dest${d:+ $d}" >> "$deps"
}

declare -A seen=()
for f in "$@"; do
	[ -f "$f" ] || die "no file $f"
	noblank "$f"
	b=$(basename "$f")
	[ -z "${seen[$b]:-}" ] || die "two FILEs named $b"
	seen[$b]=1
	abs=$(cd "$(dirname "$f")" && pwd)/$b
	echo "file /root/$b $abs 755 0 0" >> "$list"
	case "$b" in *.ko) add_dep "$abs" "/root/$b" ;; esac
done

# All the kernel build's own modules: few (allnoconfig base) and small
# enough, and the guest picks what it needs with modload.
while IFS= read -r ko; do
	noblank "$ko"
	b=$(basename "$ko")
	echo "file /root/kmod/$b $ko 644 0 0" >> "$list"
	add_dep "$ko" "/root/kmod/$b"
done < <(find "$kb" -name '*.ko' -type f | sort)
echo "file /root/kmod/modules.deps $deps 644 0 0" >> "$list"

# Host programs and their shared libraries, at their own paths.
declare -A have=()
for d in /bin /sbin /usr /usr/bin /usr/sbin /dev /proc /sys /tmp /root; do
	have[$d]=1
done
add_path() {	# an absolute file, with its parent directories
	local f=$1 d=""
	local IFS=/
	for part in $(dirname "$f"); do
		[ -n "$part" ] || continue
		d+=/$part
		[ -n "${have[$d]:-}" ] || echo "dir $d 755 0 0" >> "$list"
		have[$d]=1
	done
	[ -z "${have[$f]:-}" ] || return 0
	have[$f]=1
	echo "file $f $(readlink -f "$f") 755 0 0" >> "$list"
}
for b in ${VM_HOST_BINS:-}; do
	[ -f "$b" ] || die "no program or library $b"
	add_path "$b"
	for l in $(ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }
				   $1 ~ /^\// { print $1 }'); do
		add_path "$l"
	done
done

"$gen" "$list" | gzip -1 > "$tmp/initrd.gz"

# oops=panic + panic=-1 + -no-reboot: an oops ends qemu at once instead of
# leaving a hung VM for the timeout. printk.time: see above.
# printk.devkmsg=on: no rate limit on guest lines written to /dev/kmsg.
# kmemleak.verbose: leak reports also go to the console as kernel messages.
# kasan_multi_shot: report every KASAN error, not only the first.
# hung_task_timeout_secs: 120 s default is long against VM_TIMEOUT.
append="console=ttyS0 reboot=t panic=-1 oops=panic printk.time=1"
append+=" printk.devkmsg=on kmemleak.verbose=1 kasan_multi_shot"
append+=" sysctl.kernel.hung_task_timeout_secs=60"
[ -z "${VM_APPEND:-}" ] || append+=" $VM_APPEND"

# la57=off: with 5-level paging, an interrupt in the window where the
# boot CPU's identify_cpu() has cleared its feature bits makes KASAN see
# every direct-map address as wild (pgtable_l5_enabled() reads the
# cleared LA57 bit); seen once as a boot-time splat storm on 6.12.117.
status=0
timeout -k 10 "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max,la57=off \
	-m "${VM_MEM:-2G}" -smp "${VM_SMP:-2}" -nographic -no-reboot -nic none \
	-kernel "$bzimage" -initrd "$tmp/initrd.gz" -append "$append" \
	< /dev/null > "$log" 2>&1 || status=$?

if [ $status -eq 124 ] || [ $status -eq 137 ]; then
	echo "run-vm: qemu killed after ${timeout_s}s timeout (console: $log)" >&2
	exit 1
elif [ $status -ne 0 ]; then
	echo "run-vm: qemu failed with status $status (console: $log)" >&2
	tail -n 5 "$log" >&2
	exit 1
fi
