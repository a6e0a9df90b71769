import { CONTROL_PORT_NAME } from '../../../protocol/control';
import type { Accelerator, GuestImage } from '../VmmDriver';
import type { VmPaths } from './vmPaths';

/** Base kernel command line; `panic=-1` with `-no-reboot` turns a guest panic into a QEMU exit. */
export const KERNEL_CMDLINE = 'console=ttyS0 root=/dev/vda rw panic=-1 quiet';

/** Everything that decides a QEMU command line. Save and restore must use equal plans. */
export interface QemuLaunchPlan {
  id: string;
  paths: VmPaths;
  image: GuestImage;
  accel: Accelerator;
  memoryMiB: number;
  vcpus: number;
  /** Start paused, waiting for `migrate-incoming` (restore from a snapshot or template). */
  incoming?: boolean;
  /**
   * Guest RAM from a file instead of anonymous memory: `share: true` for a template that clones
   * map, `share: false` for a clone (copy-on-write over the template's pages).
   */
  memoryFile?: { path: string; share: boolean };
  /**
   * Anonymous guest RAM, but as a backend named `mem` like {@link memoryFile}'s: for restoring the
   * review snapshot of a clone, whose stream names its RAM `mem`.
   */
  namedRam?: boolean;
  /** Extra words for the kernel command line. */
  kernelArgs?: string[];
  /** `-netdev ... -device virtio-net-device,...` for the egress path; a restore needs the same. */
  networkArgs?: string[];
}

/**
 * The argument vector for `qemu-system-x86_64 -M microvm`. The device order is fixed because a
 * restored VM needs exactly the device layout it was saved with.
 */
export function buildQemuArgs(plan: QemuLaunchPlan): string[] {
  const { paths } = plan;
  const named = plan.memoryFile !== undefined || plan.namedRam === true;
  const machine = named ? 'microvm,memory-backend=mem' : 'microvm';
  const cpu = plan.accel === 'kvm' ? 'host' : 'max';
  const cmdline = [KERNEL_CMDLINE, ...(plan.kernelArgs ?? [])].join(' ');
  const options: Array<[flag: string, value?: string]> = [
    ['-name', `agentvm-${opt(plan.id)}`],
    ['-M', machine],
    ['-accel', plan.accel],
    ['-cpu', cpu],
    ['-m', `${plan.memoryMiB}M`],
    ['-smp', String(plan.vcpus)],
    ['-nodefaults'],
    ['-no-user-config'],
    ['-nographic'],
    ['-display', 'none'],
    ['-no-reboot'],
  ];

  if (plan.memoryFile) {
    const share = plan.memoryFile.share ? 'on' : 'off';
    const backend = `memory-backend-file,id=mem,size=${plan.memoryMiB}M,mem-path=${opt(plan.memoryFile.path)},share=${share}`;
    options.push(['-object', backend]);
  } else if (plan.namedRam) {
    options.push(['-object', `memory-backend-ram,id=mem,size=${plan.memoryMiB}M`]);
  }

  options.push(
    ['-kernel', plan.image.kernelPath],
    ['-initrd', plan.image.initramfsPath],
    ['-append', cmdline],
    ['-chardev', `file,id=console,path=${opt(paths.consoleLog)},append=on`],
    ['-serial', 'chardev:console'],
    ['-drive', `id=root,file=${opt(paths.overlay)},format=qcow2,if=none,discard=unmap`],
    ['-device', 'virtio-blk-device,drive=root'],
    ['-device', 'virtio-serial-device,id=serial0'],
    ['-chardev', `socket,id=control,path=${opt(paths.controlSocket)},server=on,wait=off`],
    ['-device', `virtserialport,bus=serial0.0,chardev=control,name=${CONTROL_PORT_NAME}`],
    ['-object', 'rng-random,id=rng0,filename=/dev/urandom'],
    ['-device', 'virtio-rng-device,rng=rng0'],
  );

  const network = plan.networkArgs ?? [];
  for (let index = 0; index + 1 < network.length; index += 2) {
    options.push([network[index], network[index + 1]]);
  }

  options.push(
    ['-chardev', `socket,id=qmp,path=${opt(paths.qmpSocket)},server=on,wait=off`],
    ['-mon', 'chardev=qmp,mode=control'],
    ['-pidfile', paths.pidFile],
  );

  if (plan.incoming) options.push(['-S'], ['-incoming', 'defer']);
  return options.flatMap(([flag, value]) => (value === undefined ? [flag] : [flag, value]));
}

/**
 * How guest RAM is set up, read from a QEMU command line (ours, or a running QEMU's when the
 * broker reattaches to it): `named` when it is the backend `mem` (see
 * SnapshotInfo.namedMemoryBackend); `split` when it is private to the VM (a clone's copy-on-write
 * mapping, or named anonymous RAM), so that a snapshot writes it to its own file.
 */
export function memoryLayout(args: readonly string[]): {
  named: boolean;
  split: boolean;
  /** The file a private RAM maps copy-on-write, if it is one (a template's memory, say). */
  privateFile?: string;
} {
  const privateFileArg = args.find(
    (arg) => arg.startsWith('memory-backend-file,id=mem,') && arg.endsWith(',share=off'),
  );
  const pathAt = privateFileArg?.indexOf(',mem-path=') ?? -1;
  const privateFile =
    privateFileArg && pathAt >= 0
      ? privateFileArg.slice(pathAt + ',mem-path='.length, -',share=off'.length).replace(/,,/g, ',')
      : undefined;
  return {
    named: args.some((arg) => arg.includes('memory-backend=mem')),
    split: args.some((arg) => arg.startsWith('memory-backend-ram,id=mem,')) || !!privateFileArg,
    ...(privateFile ? { privateFile } : {}),
  };
}

/** Escape a value inside a QEMU `key=value,...` option, where a literal comma is written twice. */
function opt(value: string): string {
  return value.replace(/,/g, ',,');
}
