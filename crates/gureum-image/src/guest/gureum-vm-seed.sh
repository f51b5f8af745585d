#!/bin/sh
# gureum-vm-seed: copies what the host put on a VM instance's seed disk into the root file
# system, every boot, before anything reads it (installed by gureum's VM recipes).
#
# The host attaches a small ext4 disk with serial `gureum-seed` (/dev/disk/by-id/
# virtio-gureum-seed) whose `root/` tree mirrors absolute paths in the guest: the guest agent's
# /var/lib/gureum files and the network configuration (/etc/systemd/network/10-gureum.network,
# /etc/resolv.conf), since a gureum VPC has no DHCP server.
set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
DEV=/dev/disk/by-id/virtio-gureum-seed
MNT=/run/gureum-seed
i=0
while [ ! -b "$DEV" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
if [ ! -b "$DEV" ]; then
	echo "gureum-vm-seed: no seed disk" >&2
	exit 0
fi
mkdir -p "$MNT"
mount -o ro "$DEV" "$MNT" || exit 1
if [ -d "$MNT/root" ]; then
	# /etc/resolv.conf may be a dangling link to a resolver that is not installed.
	[ -e "$MNT/root/etc/resolv.conf" ] && rm -f /etc/resolv.conf
	cp -a "$MNT/root/." /
fi
umount "$MNT"
# The root file system was made as small as its contents; grow it to the volume's size.
ROOT=$(findmnt -n -o SOURCE /)
case $ROOT in
/dev/vd*) resize2fs "$ROOT" >/dev/null 2>&1 || true ;;
esac
if systemctl -q is-active systemd-networkd.service; then
	networkctl reload || true
fi
exit 0
