#!/bin/sh
# /sbin/agentvm-init: PID 1 of the root filesystem until it execs tini. Busybox is used for every
# tool so this script does not depend on what debootstrap happened to install.
bb=/opt/agentvm/busybox

# Debian's busybox has no mountpoint applet, so probe for a file each file system provides.
[ -e /proc/self ] || $bb mount -t proc -o nosuid,nodev,noexec proc /proc
[ -e /sys/kernel ] || $bb mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
$bb grep -q '^[^ ]* /dev ' /proc/mounts || $bb mount -t devtmpfs devtmpfs /dev

# devtmpfs has no /dev/fd links; bash process substitution and many tools rely on them.
$bb ln -sfn /proc/self/fd /dev/fd
$bb ln -sfn /proc/self/fd/0 /dev/stdin
$bb ln -sfn /proc/self/fd/1 /dev/stdout
$bb ln -sfn /proc/self/fd/2 /dev/stderr
$bb mkdir -p /dev/pts /dev/shm
$bb mount -t devpts -o nosuid,noexec,gid=5,mode=620,ptmxmode=666 devpts /dev/pts
$bb mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm
$bb mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs /run
$bb mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp

$bb hostname agentvm
$bb ip link set lo up

# eth0 reaches only the broker's egress proxy (QEMU user networking, restrict=on). Configured
# here, before any template snapshot, so a clone's task does not wait for it.
if [ -e /sys/class/net/eth0 ]; then
  $bb ip link set eth0 up
  $bb ip addr replace 10.0.2.15/24 dev eth0
  $bb ip route replace default via 10.0.2.2
fi

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
export LANG=C.UTF-8
# The guest agent blocks libuv pool threads on reads from the virtio-serial port; the default
# pool of 4 would leave file system calls waiting behind them.
export UV_THREADPOOL_SIZE=16

# One console line, so console logs show how long boot took up to this point.
echo "agentvm-init: starting guest agent at uptime $($bb cut -d' ' -f1 /proc/uptime)s"

# If the guest agent exits, tini exits and the kernel panics; with panic=-1 and -no-reboot the
# VM process ends, which is how the broker learns the guest is gone.
# --no-lazy compiles the whole guest agent now (≈1 s of cold boot) instead of function by function
# on first call, which after a template restore would land on the way to the agent command (≈250 ms
# under TCG); --no-flush-bytecode keeps V8 from dropping that code again while it sits idle.
# --jitless: after a restore QEMU's translation cache is empty, and every function V8 had compiled
# to machine code in the template is new code that TCG must translate on its first call, while
# interpreted functions share the interpreter's handlers, translated once. The guest agent moves
# data but computes little. --single-threaded: no V8 helper threads to wake and schedule on the
# guest's one vCPU. Together ≈60–90 ms of a clone's start (BENCHMARKS.md, seventh session).
exec /usr/bin/tini -s -- /usr/bin/node --jitless --single-threaded --no-flush-bytecode --no-lazy \
  /opt/agentvm/guest-agent.js
