import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { readTextIfPresent } from '../../readTextIfPresent';

const imageFileSchema = z.object({
  /** File name inside the image directory. */
  name: z.string(),
  sizeBytes: z.number().int().nonnegative(),
  /** sha256 (hex) of the contents; left out for the multi-gigabyte root filesystem. */
  sha256: z.string().optional(),
});

/**
 * `images/<key>/manifest.json`: written last, after every other file of the image is complete, so
 * its presence is what marks an image as usable.
 */
export const imageManifestSchema = z.object({
  formatVersion: z.literal(1),
  key: z.string(),
  /** ISO 8601 time the build finished. */
  builtAt: z.string(),
  builderVersion: z.number().int(),
  rootfsCacheKey: z.string(),
  /** sha256 of each input by name, to tell the user which input made an image out of date. */
  inputs: z.record(z.string(), z.string()),
  files: z.object({ kernel: imageFileSchema, initramfs: imageFileSchema, rootfs: imageFileSchema }),
  rootfs: z.object({ contentBytes: z.number().int(), freeBytes: z.number().int() }),
  timings: z.object({
    debootstrapReused: z.boolean(),
    initramfsMs: z.number(),
    stageMs: z.number(),
    mke2fsMs: z.number(),
    totalMs: z.number(),
  }),
});
export type ImageManifest = z.infer<typeof imageManifestSchema>;

export const manifestFileName = 'manifest.json';

/** Read and validate a manifest; undefined when the file does not exist. Throws when invalid. */
export function readImageManifest(imageDir: string): ImageManifest | undefined {
  const text = readTextIfPresent(path.join(imageDir, manifestFileName));
  return text === undefined ? undefined : imageManifestSchema.parse(JSON.parse(text));
}

export function writeImageManifest(imageDir: string, manifest: ImageManifest): void {
  const file = path.join(imageDir, manifestFileName);
  fs.writeFileSync(file, JSON.stringify(imageManifestSchema.parse(manifest), null, 2) + '\n');
}
