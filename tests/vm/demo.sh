#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: boot Debian's stock 6.12 kernel in a VM with usb_vsock and an
# emulated Fuchsia device on dummy_hcd, and show a socat session over the
# USB link. DEMO_KERNEL=debug or 6.1 picks another kernel.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# shellcheck source=tests/vm/lib.sh
. "$here/lib.sh"
use_host_programs

echo "demo: building usb_vsock and the device emulator"
prepare "${DEMO_KERNEL:-6.12}" "$dir" "$dir/build.log"

cat > "$dir/guest.sh" <<'GUEST'
#!/bin/sh
show() { echo "demo| $*"; }
if [ -f /root/kmod/usbcore.ko ]; then
	modload usbcore udc_core configfs
	mount -t configfs configfs /sys/kernel/config
fi
modload dummy_hcd libcomposite usb_f_fs vsock vsock_diag
show "# insmod usb_vsock.ko"
insmod /root/usb_vsock.ko
show "# usb_vsock_emu &      (an emulated Fuchsia device on dummy_hcd)"
/root/usb_vsock_emu > /tmp/emu.log 2>&1 &
sleep 1
/root/usb_vsock_emu ctl /tmp/usbvsock0.sock wait-sync 30 > /dev/null
dev=$(ls -d /sys/bus/usb/drivers/usb_vsock/*:1.0)
show "# cat $dev/usb_vsock/{state,cid,protocol_version}"
for f in state cid protocol_version; do
	show "$(cat "$dev/usb_vsock/$f")"
done
cid=$(cat "$dev/usb_vsock/cid")
show "# (echo 'hello, device'; sleep 2) | socat - VSOCK-CONNECT:$cid:5001"
(echo 'hello, device'; sleep 2) | socat - "VSOCK-CONNECT:$cid:5001" |
	while read -r line; do show "$line"; done
show "# dmesg | grep usb_vsock"
dmesg | grep usb_vsock | while read -r line; do show "$line"; done
/root/usb_vsock_emu ctl /tmp/usbvsock0.sock quit > /dev/null
GUEST

echo "demo: booting the VM (about a minute under TCG)"
VM_TIMEOUT=300 "$here/run-vm.sh" "$kb" "$dir/guest.sh" "$dir/console.log" \
	"$dir/module/usb_vsock.ko" "$dir/usb_vsock_emu" "$dir/vsock_tool"
tr -d '\r' < "$dir/console.log" | sed -n 's/^demo| //p'
