// SPDX-License-Identifier: GPL-2.0
/*
 * usb_vsock sysfs attributes and uevents, on the bridged interface, so
 * that scripts can find a device's CID.
 */

#include <linux/device.h>
#include <linux/jiffies.h>
#include <linux/kobject.h>
#include <linux/sysfs.h>
#include <linux/usb.h>

#include "usb_vsock/link.h"

/* The shortest time between two link-up uevents of one link. */
#define USB_VSOCK_UEVENT_GAP	HZ

static struct usb_vsock_link *usb_vsock_dev_link(struct device *dev)
{
	return usb_get_intfdata(to_usb_interface(dev));
}

static ssize_t cid_show(struct device *dev, struct device_attribute *attr,
			char *buf)
{
	struct usb_vsock_link *link = usb_vsock_dev_link(dev);

	if (!link || READ_ONCE(link->state) != USB_VSOCK_UP)
		return sysfs_emit(buf, "none\n");
	return sysfs_emit(buf, "%u\n", READ_ONCE(link->cid));
}
static DEVICE_ATTR_RO(cid);

static ssize_t protocol_version_show(struct device *dev,
				     struct device_attribute *attr, char *buf)
{
	struct usb_vsock_link *link = usb_vsock_dev_link(dev);

	if (!link || READ_ONCE(link->state) != USB_VSOCK_UP)
		return sysfs_emit(buf, "none\n");
	return sysfs_emit(buf, "%d\n", READ_ONCE(link->version));
}
static DEVICE_ATTR_RO(protocol_version);

static ssize_t state_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct usb_vsock_link *link = usb_vsock_dev_link(dev);

	return sysfs_emit(buf, "%s\n", usb_vsock_state_name(link ?
			  READ_ONCE(link->state) : USB_VSOCK_GONE));
}
static DEVICE_ATTR_RO(state);

static ssize_t tx_packets_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	struct usb_vsock_link *link = usb_vsock_dev_link(dev);
	u64 packets;

	if (!link)
		return -ENODEV;
	spin_lock_irq(&link->tx.lock);
	packets = link->tx.packets;
	spin_unlock_irq(&link->tx.lock);
	return sysfs_emit(buf, "%llu\n", packets);
}
static DEVICE_ATTR_RO(tx_packets);

/* A counter of struct usb_vsock_stats, by its offset there. */
struct usb_vsock_stat_attr {
	struct device_attribute attr;
	size_t offset;
};

static ssize_t usb_vsock_stat_show(struct device *dev,
				   struct device_attribute *attr, char *buf)
{
	struct usb_vsock_link *link = usb_vsock_dev_link(dev);
	size_t offset = container_of(attr, struct usb_vsock_stat_attr,
				     attr)->offset;

	if (!link)
		return -ENODEV;
	return sysfs_emit(buf, "%lld\n",
			  (s64)atomic64_read((atomic64_t *)((u8 *)&link->stats +
							    offset)));
}

#define USB_VSOCK_STAT(_name, _offset) {				\
	.attr = __ATTR(_name, 0444, usb_vsock_stat_show, NULL),		\
	.offset = (_offset),						\
}

static struct usb_vsock_stat_attr usb_vsock_stats[] = {
	USB_VSOCK_STAT(rx_packets,
		       offsetof(struct usb_vsock_stats, rx_packets)),
	USB_VSOCK_STAT(rx_bytes, offsetof(struct usb_vsock_stats, rx_bytes)),
	USB_VSOCK_STAT(tx_bytes, offsetof(struct usb_vsock_stats, tx_bytes)),
	USB_VSOCK_STAT(rx_errors, offsetof(struct usb_vsock_stats, rx_errors)),
	USB_VSOCK_STAT(rx_dropped,
		       offsetof(struct usb_vsock_stats, rx_dropped)),
	USB_VSOCK_STAT(tx_errors, offsetof(struct usb_vsock_stats, tx_errors)),
	USB_VSOCK_STAT(tx_dropped,
		       offsetof(struct usb_vsock_stats, tx_dropped)),
	USB_VSOCK_STAT(resyncs, offsetof(struct usb_vsock_stats, resyncs)),
	USB_VSOCK_STAT(syncs, offsetof(struct usb_vsock_stats, syncs)),
	USB_VSOCK_STAT(dev_resets, offsetof(struct usb_vsock_stats, dev_resets)),
	USB_VSOCK_STAT(restarts_paced,
		       offsetof(struct usb_vsock_stats, restarts_paced)),
	USB_VSOCK_STAT(rx_queued, offsetof(struct usb_vsock_stats, rx_queued)),
	USB_VSOCK_STAT(rx_queued_max,
		       offsetof(struct usb_vsock_stats, rx_queued_max)),
	USB_VSOCK_STAT(rx_overruns,
		       offsetof(struct usb_vsock_stats, rx_overruns)),
	USB_VSOCK_STAT(orphans, offsetof(struct usb_vsock_stats, orphans)),
};

static struct attribute *usb_vsock_attrs[] = {
	&dev_attr_cid.attr,
	&dev_attr_protocol_version.attr,
	&dev_attr_state.attr,
	&dev_attr_tx_packets.attr,
	&usb_vsock_stats[0].attr.attr,
	&usb_vsock_stats[1].attr.attr,
	&usb_vsock_stats[2].attr.attr,
	&usb_vsock_stats[3].attr.attr,
	&usb_vsock_stats[4].attr.attr,
	&usb_vsock_stats[5].attr.attr,
	&usb_vsock_stats[6].attr.attr,
	&usb_vsock_stats[7].attr.attr,
	&usb_vsock_stats[8].attr.attr,
	&usb_vsock_stats[9].attr.attr,
	&usb_vsock_stats[10].attr.attr,
	&usb_vsock_stats[11].attr.attr,
	&usb_vsock_stats[12].attr.attr,
	&usb_vsock_stats[13].attr.attr,
	&usb_vsock_stats[14].attr.attr,
	NULL
};

static const struct attribute_group usb_vsock_group = {
	.name = "usb_vsock",
	.attrs = usb_vsock_attrs,
};

const struct attribute_group *usb_vsock_groups[] = {
	&usb_vsock_group,
	NULL
};

/* A change uevent on the interface, with the link's state, CID and version. */
static void usb_vsock_uevent_send(struct usb_vsock_link *link)
{
	char cid[32], version[32];
	char *envp[4];

	envp[0] = "USB_VSOCK_STATE=up";
	envp[1] = cid;
	envp[2] = version;
	envp[3] = NULL;
	snprintf(cid, sizeof(cid), "USB_VSOCK_CID=%u", link->cid);
	snprintf(version, sizeof(version), "USB_VSOCK_VERSION=%d",
		 link->version);
	kobject_uevent_env(&link->intf->dev.kobj, KOBJ_CHANGE, envp);
	link->uevent_at = jiffies;
}

/* The link came up again while the last uevent was recent. */
static void usb_vsock_uevent_work(struct work_struct *work)
{
	struct usb_vsock_link *link =
		container_of(to_delayed_work(work), struct usb_vsock_link,
			     uevent_work);

	mutex_lock(&link->mutex);
	if (link->state == USB_VSOCK_UP)
		usb_vsock_uevent_send(link);
	mutex_unlock(&link->mutex);
}

/**
 * usb_vsock_uevent_init() - set up the link-up uevents of a new link
 * @link: the link, before anything can run on it
 */
void usb_vsock_uevent_init(struct usb_vsock_link *link)
{
	INIT_DELAYED_WORK(&link->uevent_work, usb_vsock_uevent_work);
	link->uevent_at = jiffies - USB_VSOCK_UEVENT_GAP;
}

/**
 * usb_vsock_uevent_up() - tell userspace a device's link is up
 * @link: the link, just synchronized; called with its mutex held
 *
 * A device that restarts the link in a loop must not flood udev: at most
 * one uevent goes out per USB_VSOCK_UEVENT_GAP. One that comes too soon
 * is held back until then, and goes out only if the link is still up, so
 * that the last one always tells the link's current CID and version.
 */
void usb_vsock_uevent_up(struct usb_vsock_link *link)
{
	unsigned long next = link->uevent_at + USB_VSOCK_UEVENT_GAP;

	if (time_after_eq(jiffies, next))
		usb_vsock_uevent_send(link);
	else
		schedule_delayed_work(&link->uevent_work, next - jiffies);
}
