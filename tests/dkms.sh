#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Check that DKMS can add, build and install usb_vsock for Debian's 6.1
# and 6.12 kernels from their installed headers, in private DKMS, source
# and install trees: nothing is written to /lib/modules and nothing is
# loaded. Prints "usb_vsock dkms: N passed, N failed".
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
logdir=${USB_VSOCK_LOGDIR:-/tmp/usb_vsock-logs}
mkdir -p "$logdir"
passed=0
failed=0

if ! command -v dkms > /dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends dkms > "$logdir/dkms-apt.log" 2>&1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' "$top/dkms.conf")
src=$tmp/src/usb_vsock-$ver
mkdir -p "$src"
cp -r "$top/Kbuild" "$top/Makefile" "$top/dkms.conf" "$top/drivers" \
	"$top/include" "$top/tests" "$src/"
mkdir -p "$tmp/dkms" "$tmp/install"
trees=(--dkmstree "$tmp/dkms" --sourcetree "$tmp/src"
       --installtree "$tmp/install")

check() {	# name, command...
	local name=$1 log
	shift
	log=$logdir/dkms-${name//\//_}.log
	if "$@" > "$log" 2>&1; then
		passed=$((passed + 1))
		echo "ok: $name"
	else
		failed=$((failed + 1))
		echo "FAILED: $name (see $log)"
		tail -n 20 "$log"
	fi
}

check add dkms add "${trees[@]}" "usb_vsock/$ver"
for hdr in /usr/src/linux-headers-6.1.*-amd64 \
	   /usr/src/linux-headers-6.12.*+deb12-amd64; do
	k=${hdr#/usr/src/linux-headers-}
	# DKMS installs only for kernels whose module tree exists.
	mkdir -p "$tmp/install/$k/kernel"
	check "build $k" dkms build "${trees[@]}" "usb_vsock/$ver" -k "$k" \
		--kernelsourcedir "$hdr"
	check "install $k" dkms install "${trees[@]}" "usb_vsock/$ver" \
		-k "$k" --kernelsourcedir "$hdr" --no-depmod
	# Compressed where the kernel compresses its modules (6.12).
	check "installed $k" ls "$tmp/install/$k/updates/dkms/usb_vsock.ko"*
done

echo "usb_vsock dkms: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
