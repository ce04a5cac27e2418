#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install the Debian packages the build checks and the VM rig need.
# Idempotent: does nothing when everything is already there.
set -euo pipefail

pkgs=(build-essential flex bison bc libelf-dev libssl-dev sparse
      qemu-system-x86 busybox-static cpio xz-utils python3
      socat ncat iproute2 kmod dkms
      linux-source-6.12 linux-headers-amd64)

# The newest Debian 6.12 header set for the generic amd64 flavour.
hdr612() {
	apt-cache search --names-only '^linux-headers-6\.12\.[0-9]+\+deb12-amd64$' |
		awk '{print $1}' | sort -V | tail -n 1
}

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done
if ! ls -d /usr/src/linux-headers-6.12.*+deb12-amd64 >/dev/null 2>&1; then
	missing+=(HDR612)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
h=$(hdr612)
[ -n "$h" ] || { echo "install-deps: no linux-headers-6.12.*+deb12-amd64 package" >&2; exit 1; }
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" "$h"
