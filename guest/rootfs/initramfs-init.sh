#!/bin/sh
# /init of the agentvm initramfs: load the virtio drivers, mount the root filesystem, hand over.
# Any failure ends this script, which panics the kernel; with panic=-1 and QEMU's -no-reboot the
# VM process exits instead of hanging, so the broker sees the failure at once.
/bin/busybox --install -s /bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

while read -r module; do
  [ -n "$module" ] || continue
  insmod "/lib/modules/$module.ko" || echo "agentvm-initramfs: insmod $module failed"
done < /etc/agentvm-modules

root=/dev/vda
for word in $(cat /proc/cmdline); do
  case "$word" in
    root=/dev/*) root="${word#root=}" ;;
  esac
done

# virtio_blk probes asynchronously; give the device node up to 5 s to appear.
tries=0
while [ ! -b "$root" ] && [ "$tries" -lt 100 ]; do
  usleep 50000
  tries=$((tries + 1))
done

if ! mount -t ext4 -o rw "$root" /newroot; then
  echo "agentvm-initramfs: cannot mount $root as ext4"
  exit 1
fi

if [ ! -x /newroot/sbin/agentvm-init ]; then
  echo "agentvm-initramfs: $root has no /sbin/agentvm-init"
  exit 1
fi

mount --move /dev /newroot/dev
umount /sys
umount /proc
exec switch_root /newroot /sbin/agentvm-init
