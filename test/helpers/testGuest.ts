import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONTROL_PORT_NAME } from '../../protocol/control';
import type { GuestImage } from '../../server/vmm/VmmDriver';
import { cpioArchive, type CpioEntry } from '../../server/vmm/image/cpioArchive';
import { findCloudKernel, findStaticBusybox } from '../../server/vmm/image/hostArtifacts';
import { readModule } from '../../server/vmm/image/buildInitramfs';

/**
 * How the test guest behaves:
 * - `answering`: speaks the control protocol minimally (see {@link testGuestInit}).
 * - `silent`: boots, prints to the console, and never opens the control port.
 */
export type TestGuestMode = 'answering' | 'silent';

/** Modules the busybox init loads, in dependency order. */
const modules = [
  'kernel/drivers/virtio/virtio_ring.ko',
  'kernel/drivers/virtio/virtio.ko',
  'kernel/drivers/virtio/virtio_mmio.ko',
  'kernel/drivers/char/virtio_console.ko',
  'kernel/drivers/block/virtio_blk.ko',
  'kernel/drivers/char/hw_random/virtio-rng.ko',
];

/**
 * The init script of the test guest: a busybox shell that finds the control port by name and
 * answers every `hello` with `ready`, and every `request` with a response holding a token drawn
 * at boot and the number of hellos seen. Both live only in guest memory, so after a restore they
 * prove the VM's memory came back.
 */
export function testGuestInit(mode: TestGuestMode): string {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for name in ${modules.map((module) => path.basename(module)).join(' ')}; do
  insmod /lib/modules/$name || echo "testguest: insmod $name failed"
done
echo "testguest: modules loaded"
if [ "${mode}" = silent ]; then
  echo "testguest: silent mode, never answering"
  while true; do sleep 3600; done
fi
port=
tries=0
while [ -z "$port" ] && [ $tries -lt 200 ]; do
  for dir in /sys/class/virtio-ports/*; do
    [ -f "$dir/name" ] && [ "$(cat "$dir/name")" = "${CONTROL_PORT_NAME}" ] && port=/dev/\${dir##*/}
  done
  [ -n "$port" ] || { sleep 0.05; tries=$((tries + 1)); }
done
if [ -z "$port" ]; then echo "testguest: control port not found"; exec sleep 3600; fi
echo "testguest: control port $port"
token=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \\n')
hellos=0
ready() {
  uptime=$(awk '{ printf "%d", $1 * 1000 }' /proc/uptime)
  printf '{"type":"ready","version":"testguest","seq":0,"uptimeMs":%s,"hasTask":false}\\n' "$uptime" >&3
}
exec 3<>"$port"
ready
while true; do
  # A read returns end-of-file while no host is connected (after a snapshot, between brokers).
  while read -r line <&3; do
    case "$line" in
      *'"type":"hello"'*) hellos=$((hellos + 1)); ready ;;
      *'"type":"request"'*)
        id=\${line#*'"id":'}; id=\${id%%[!0-9]*}
        printf '{"type":"response","id":%s,"ok":true,"result":{"token":"%s","hellos":%s}}\\n' "$id" "$token" "$hellos" >&3 ;;
    esac
  done
  sleep 0.2
done
`;
}

/**
 * Build (once per input hash, cached under the OS temp dir) a tiny bootable guest: the host's cloud
 * kernel, a busybox initramfs running {@link testGuestInit}, and a 1 MiB raw disk as rootfs.
 */
export function buildTestGuest(mode: TestGuestMode = 'answering'): GuestImage {
  const kernel = findCloudKernel();
  const busybox = findStaticBusybox();
  if (!kernel || !busybox)
    throw new Error('test guest needs linux-image-cloud-amd64 and busybox-static');

  const init = testGuestInit(mode);
  const moduleDir = path.join('/lib/modules', kernel.release);
  const key = crypto
    .createHash('sha256')
    .update(JSON.stringify([init, kernel.path, fs.statSync(busybox).size, modules]))
    .digest('hex')
    .slice(0, 16);
  const dir = path.join(os.tmpdir(), 'agentvm-testguest', key);
  const image: GuestImage = {
    key: `testguest-${key}`,
    kernelPath: kernel.path,
    initramfsPath: path.join(dir, 'initramfs.img'),
    rootfsPath: path.join(dir, 'rootfs.raw'),
  };
  if (fs.existsSync(image.initramfsPath) && fs.existsSync(image.rootfsPath)) return image;

  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'lib', 'lib/modules', 'proc', 'sys', 'tmp'].map((dirPath): CpioEntry => ({
      kind: 'directory',
      path: dirPath,
      mode: 0o755,
    })),
    { kind: 'charDevice', path: 'dev/console', mode: 0o600, major: 5, minor: 1 },
    { kind: 'file', path: 'bin/busybox', mode: 0o755, data: fs.readFileSync(busybox) },
    { kind: 'file', path: 'init', mode: 0o755, data: Buffer.from(init) },
    ...modules.map((module): CpioEntry => ({
      kind: 'file',
      path: `lib/modules/${path.basename(module)}`,
      mode: 0o644,
      data: readModule(path.join(moduleDir, module)),
    })),
  ];

  // Built beside the final directory and renamed, so a concurrent or interrupted build never
  // leaves a half-written image that a later run would trust.
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const staging = fs.mkdtempSync(`${dir}.tmp-`);
  fs.writeFileSync(path.join(staging, 'initramfs.img'), cpioArchive(entries));
  fs.writeFileSync(path.join(staging, 'rootfs.raw'), Buffer.alloc(1 << 20));
  try {
    fs.renameSync(staging, dir);
  } catch {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  return image;
}
