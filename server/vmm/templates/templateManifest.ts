import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { checksumPattern, namingLegacySha256 } from '../qemu/stateChecksum';
import type { VmTemplate } from '../VmmDriver';
import { templateInputsSchema } from './templateKey';

export const TEMPLATE_MANIFEST_FILE = 'manifest.json';

/**
 * `templates/<key>/manifest.json`: written last, so a directory without it is not a template.
 * Manifests written before checksums named their algorithm carry a bare `stateSha256`.
 */
export const templateManifestSchema = z.preprocess(
  namingLegacySha256('stateSha256', 'stateChecksum'),
  z.object({
    key: z.string(),
    inputs: templateInputsSchema,
    /** File names inside the template directory. */
    memoryFile: z.string(),
    diskFile: z.string(),
    stateFile: z.string(),
    stateSizeBytes: z.number().int().nonnegative(),
    /** `algorithm:hex`, see stateChecksum.ts. */
    stateChecksum: z.string().regex(checksumPattern),
    migrationCapabilities: z.array(z.string()),
    /** When the build finished, in milliseconds since the epoch. */
    builtAt: z.number(),
    /** How long the build took (boot, wait for ready, save), in milliseconds. */
    buildMs: z.number(),
  }),
);
export type TemplateManifest = z.infer<typeof templateManifestSchema>;

/** The manifest in `dir`, `undefined` if there is none, or an Error if it does not parse. */
export function readTemplateManifest(dir: string): TemplateManifest | undefined | Error {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, TEMPLATE_MANIFEST_FILE), 'utf8');
  } catch {
    return undefined;
  }

  try {
    return templateManifestSchema.parse(JSON.parse(text));
  } catch (error) {
    return error as Error;
  }
}

/**
 * The template the manifest in `dir` describes, or the reason it cannot be used: a file is
 * missing, or has another size than recorded (the state file's checksum is checked per clone).
 */
export function templateFromManifest(dir: string, manifest: TemplateManifest): VmTemplate | string {
  const memoryPath = path.join(dir, manifest.memoryFile);
  const diskPath = path.join(dir, manifest.diskFile);
  const statePath = path.join(dir, manifest.stateFile);
  const expectedSizes: Array<[string, number | undefined]> = [
    [memoryPath, manifest.inputs.memoryMiB * 1024 * 1024],
    [diskPath, undefined],
    [statePath, manifest.stateSizeBytes],
  ];
  for (const [file, sizeBytes] of expectedSizes) {
    let actual: number;
    try {
      actual = fs.statSync(file).size;
    } catch {
      return `template file ${file} is missing`;
    }
    if (sizeBytes !== undefined && actual !== sizeBytes) {
      return `template file ${file} has ${actual} bytes, expected ${sizeBytes}`;
    }
  }

  return {
    key: manifest.key,
    memoryPath,
    diskPath,
    snapshot: {
      statePath,
      sizeBytes: manifest.stateSizeBytes,
      checksum: manifest.stateChecksum,
      durationMs: 0,
      migrationCapabilities: manifest.migrationCapabilities,
    },
    memoryMiB: manifest.inputs.memoryMiB,
    vcpus: manifest.inputs.vcpus,
    egress: manifest.inputs.egress,
  };
}
