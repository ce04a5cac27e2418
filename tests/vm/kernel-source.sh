#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Extract Debian's linux-source-6.12 once, outside the repository, and print
# the directory. The build checks use its scripts (checkpatch, kernel-doc);
# the VM rig builds the test kernel from it.
set -euo pipefail

cache=${USB_VSOCK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usb_vsock}
tarball=/usr/src/linux-source-6.12.tar.xz
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
src=$cache/src/linux-source-$srcver

if [ ! -f "$src/.usb_vsock-extracted" ]; then
	echo "kernel-source: extracting $tarball" >&2
	rm -rf "$src"
	mkdir -p "$src"
	tar -xf "$tarball" -C "$src" --strip-components=1
	touch "$src/.usb_vsock-extracted"
fi
echo "$src"
