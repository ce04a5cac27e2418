#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build (or reuse) the debug test kernel from Debian's linux-source-6.12.
# The build lives outside the repository, keyed by the Debian source
# version and the hash of the config fragment, so a warm run costs nothing.
# Prints the build directory on stdout; everything else goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${USB_VSOCK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usb_vsock}
frag=$here/kernel.config

srcver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
key=$( (echo "$srcver"; cat "$frag") | sha256sum | cut -c1-16)
out=$cache/kernel-$key

if [ -f "$out/.usb_vsock-built" ]; then
	echo "$out"
	exit 0
fi

src=$("$here/kernel-source.sh")

echo "build-kernel: building $out" >&2
rm -rf "$out"
mkdir -p "$out"
make -s -C "$src" O="$out" allnoconfig >&2
"$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "$frag" >&2
make -s -C "$src" O="$out" olddefconfig >&2

# merge_config.sh does not fail when a dependency drops an option: check.
bad=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=n) opt=${line%%=*}
		if grep -q "^$opt=" "$out/.config"; then
			echo "build-kernel: $opt should be off" >&2; bad=1
		fi ;;
	CONFIG_*=*)
		if ! grep -qx "$line" "$out/.config"; then
			echo "build-kernel: $line did not stick" >&2; bad=1
		fi ;;
	esac
done < "$frag"
[ $bad -eq 0 ] || exit 1

make -s -C "$src" O="$out" -j"$(nproc)" bzImage modules >&2
touch "$out/.usb_vsock-built"
echo "$out"
