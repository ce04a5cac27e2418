#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# stock-kernel.sh SERIES: prepare Debian's stock kernel of SERIES (6.1 or
# 6.12, the flavour whose headers install-deps.sh installs) for run-vm.sh,
# and print its directory: arch/x86/boot/bzImage, the few modules the tests
# need (uncompressed, with their dependencies) under kmod/, and a "headers"
# link to the matching header package for building against it.
# Cached outside the repository, keyed by the package version and the
# module list.
set -euo pipefail

series=$1
cache=${USB_VSOCK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usb_vsock}
want=(dummy_hcd libcomposite usb_f_fs configfs vsock vsock_diag
      vsock_loopback vhost_vsock usb_f_ncm cdc_ncm)

case "$series" in
6.1) hdr=$(ls -d /usr/src/linux-headers-6.1.*-amd64 | sort -V | tail -n 1) ;;
6.12) hdr=$(ls -d /usr/src/linux-headers-6.12.*+deb12-amd64 | sort -V |
	    tail -n 1) ;;
*) echo "stock-kernel: unknown series $series" >&2; exit 2 ;;
esac
kver=${hdr#/usr/src/linux-headers-}
pkg=linux-image-$kver-unsigned
ver=$(dpkg-query -W -f='${Version}' "linux-headers-$kver")
# Keyed by the module list too, so that a longer list makes a new one.
out=$cache/stock-$kver-$ver-$(echo "${want[*]}" | sha256sum | cut -c1-8)

if [ -f "$out/.usb_vsock-ready" ]; then
	echo "$out"
	exit 0
fi

echo "stock-kernel: preparing $pkg $ver" >&2
rm -rf "$out"
mkdir -p "$out/deb" "$out/kmod" "$out/arch/x86/boot"
(cd "$out/deb" && apt-get download -q "$pkg=$ver" >&2)
dpkg-deb -x "$out"/deb/*.deb "$out/root"
cp "$out/root/boot/vmlinuz-$kver" "$out/arch/x86/boot/bzImage"
moddir=$out/root/lib/modules/$kver

# Each wanted module and, recursively, what it depends on.
declare -A seen=()
add() {
	local name=$1 f dep
	[ -z "${seen[$name]:-}" ] || return 0
	seen[$name]=1
	f=$(find "$moddir" -name "$name.ko" -o -name "$name.ko.xz" |
	    head -n 1)
	if [ -z "$f" ]; then
		f=$(find "$moddir" -name "${name//_/-}.ko" \
			-o -name "${name//_/-}.ko.xz" | head -n 1)
	fi
	[ -n "$f" ] || { echo "stock-kernel: no module $name" >&2; exit 1; }
	case "$f" in
	*.xz) xz -dc "$f" > "$out/kmod/$(basename "$f" .xz)" ;;
	*) cp "$f" "$out/kmod/" ;;
	esac
	for dep in $(modinfo -F depends "$f" | tr , ' '); do
		add "${dep//-/_}"
	done
}
for m in "${want[@]}"; do
	add "$m"
done
rm -rf "$out/root" "$out/deb"
ln -s "$hdr" "$out/headers"
touch "$out/.usb_vsock-ready"
echo "$out"
