// SPDX-License-Identifier: GPL-2.0
/*
 * A guest-to-host vsock transport that only owns a local CID, for the
 * integration tests: it makes the host look like a VM guest whose own CID
 * is @local_cid, as virtio-vsock does, without a hypervisor. It refuses
 * every socket, so nothing can be routed through it.
 */

#include <linux/errno.h>
#include <linux/module.h>
#include <net/af_vsock.h>

static uint local_cid = 3;
module_param(local_cid, uint, 0444);
MODULE_PARM_DESC(local_cid, "The CID this host owns as a guest [3]");

static int g2h_stub_init(struct vsock_sock *vsk, struct vsock_sock *psk)
{
	return -EOPNOTSUPP;
}

static u32 g2h_stub_get_local_cid(void)
{
	return local_cid;
}

static struct vsock_transport g2h_stub_transport = {
	.module = THIS_MODULE,
	.init = g2h_stub_init,
	.get_local_cid = g2h_stub_get_local_cid,
};

static int __init g2h_stub_load(void)
{
	return vsock_core_register(&g2h_stub_transport,
				   VSOCK_TRANSPORT_F_G2H);
}
module_init(g2h_stub_load);

static void __exit g2h_stub_unload(void)
{
	vsock_core_unregister(&g2h_stub_transport);
}
module_exit(g2h_stub_unload);

MODULE_DESCRIPTION("usb_vsock tests: a guest-to-host vsock transport stub");
MODULE_LICENSE("GPL");
