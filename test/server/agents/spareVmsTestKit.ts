import fs from 'node:fs';
import path from 'node:path';
import { SpareVms, type SpareShape, type SpareVmsOptions } from '../../../server/agents/SpareVms';
import { agentDir } from '../../../server/config/paths';
import { silentLogger } from '../../../server/log';
import type { TemplateShape } from '../../../server/vmm/templates/templateKey';
import type { VmmDriver, VmSpec } from '../../../server/vmm/VmmDriver';

// What the SpareVms unit tests share: a driver that records spares, their shape, a template key
// and a SpareVms with no delay.

/** A driver that records spares as directories with a marker file, as a QEMU's files would be. */
export class RecordingSpareDriver implements Pick<
  VmmDriver,
  'name' | 'prepareSpare' | 'discardSpare'
> {
  readonly name = 'spares';
  readonly prepared: VmSpec[] = [];
  readonly discarded: string[] = [];
  /** Whether prepareSpare succeeds. */
  succeed = true;

  prepareSpare(spec: VmSpec): Promise<boolean> {
    this.prepared.push(spec);
    if (!this.succeed) return Promise.resolve(false);

    fs.mkdirSync(spec.vmDir, { recursive: true });
    fs.writeFileSync(path.join(spec.vmDir, 'qemu.pid'), '1');
    return Promise.resolve(true);
  }

  discardSpare(vmDir: string): Promise<boolean> {
    this.discarded.push(vmDir);
    return Promise.resolve(true);
  }
}

/** The shape of a one-vCPU, 512 MiB agent on image `imageKey`. */
export function spareShape(imageKey: string): SpareShape {
  return {
    image: {
      key: imageKey,
      kernelPath: '/nonexistent/kernel',
      initramfsPath: '/nonexistent/initramfs',
      rootfsPath: '/nonexistent/rootfs',
    },
    memoryMiB: 512,
    vcpus: 1,
    bootTimeoutMs: 60_000,
  };
}

/** A template key that is readable: `image/memory/vcpus/egress`. */
export const templateKeyOf = (of: TemplateShape) =>
  `${of.image.key}/${of.memoryMiB}/${of.vcpus}/${of.egress}`;

/** SpareVms over `driver` and `templates`, egress as the policy plans it, and no delay. */
export function newSpareVms(
  dataDir: string,
  driver: RecordingSpareDriver,
  templates: SpareVmsOptions['templates'],
): SpareVms {
  return new SpareVms({
    driver: driver as unknown as VmmDriver,
    templates,
    dataDir,
    logger: silentLogger,
    plannedEgress: (id) => ({
      guestAddress: '10.0.2.100',
      guestPort: 3128,
      socketPath: path.join(agentDir(id, dataDir), 'egress', 'proxy.sock'),
    }),
    delayMs: 0,
  });
}

/** Waits until the driver was asked for one more spare than `before`, and that call settled. */
export async function untilPrepared(driver: RecordingSpareDriver, before: number): Promise<void> {
  for (let waited = 0; driver.prepared.length === before && waited < 100; waited++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await new Promise((resolve) => setImmediate(resolve));
}
