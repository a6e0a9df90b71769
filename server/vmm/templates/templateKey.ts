import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { z } from 'zod';
import type { Accelerator, GuestImage } from '../VmmDriver';

/**
 * Bumped whenever the way a template is built changes (boot arguments, what the guest does before
 * `ready`, the files kept), so templates from an older builder are never cloned.
 */
export const TEMPLATE_BUILDER_VERSION = 2;

/** What a VM must have in common with a template to be cloned from it. */
export interface TemplateShape {
  image: GuestImage;
  memoryMiB: number;
  vcpus: number;
  /** Whether the VM has the egress network device (the device layout must match). */
  egress: boolean;
}

/** Everything a template's key hashes; kept in its manifest so a stale one can say why. */
export const templateInputsSchema = z.object({
  builderVersion: z.number().int(),
  imageKey: z.string(),
  memoryMiB: z.number().int().positive(),
  vcpus: z.number().int().positive(),
  egress: z.boolean(),
  accel: z.enum(['kvm', 'tcg']),
  /** `qemu-system-x86_64 --version`, first line: device state does not cross QEMU versions. */
  qemuVersion: z.string(),
});
export type TemplateInputs = z.infer<typeof templateInputsSchema>;

let cachedQemuVersion: string | undefined;

/** First line of `qemu --version`, read once per process. */
export function qemuVersion(qemuBinary = 'qemu-system-x86_64'): string {
  cachedQemuVersion ??= execFileSync(qemuBinary, ['--version'], { encoding: 'utf8' }).split(
    '\n',
  )[0];
  return cachedQemuVersion;
}

/** The inputs of the template for `shape` on this host. */
export function templateInputs(shape: TemplateShape, accel: Accelerator): TemplateInputs {
  return {
    builderVersion: TEMPLATE_BUILDER_VERSION,
    imageKey: shape.image.key,
    memoryMiB: shape.memoryMiB,
    vcpus: shape.vcpus,
    egress: shape.egress,
    accel,
    qemuVersion: qemuVersion(),
  };
}

/** sha256 (hex, first 32 characters) of the inputs in a fixed key order. */
export function templateKey(inputs: TemplateInputs): string {
  const ordered = Object.keys(inputs)
    .sort()
    .map((name) => [name, inputs[name as keyof TemplateInputs]]);
  return crypto.createHash('sha256').update(JSON.stringify(ordered)).digest('hex').slice(0, 32);
}
