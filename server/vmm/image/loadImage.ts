import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AgentvmError } from '../../../protocol/errors';
import { dataDir, imagesDir } from '../../config/paths';
import type { GuestImage } from '../VmmDriver';
import {
  defaultImageSources,
  hashImageInputs,
  type ImageInputs,
  type ImageSources,
} from './imageInputs';
import { readImageManifest, type ImageManifest } from './imageManifest';

/**
 * The built image for the current inputs (this host's kernel and busybox, this checkout's
 * guest/rootfs scripts and dist/guest bundles). Throws IMAGE_MISSING when it was never built or
 * the inputs changed since (the message names the changed inputs), and IMAGE_CORRUPT when its
 * manifest is unreadable or a file is missing or has another size than the manifest records.
 */
export function loadImage(root: string = dataDir(), sources?: ImageSources): GuestImage {
  return loadImageFor(imagesDir(root), hashImageInputs(sources ?? defaultImageSources()));
}

/** {@link loadImage} for already hashed inputs. */
export function loadImageFor(imagesRoot: string, inputs: ImageInputs): GuestImage {
  const imageDir = path.join(imagesRoot, inputs.key);
  let manifest: ImageManifest | undefined;
  try {
    manifest = readImageManifest(imageDir);
  } catch (error) {
    throw new AgentvmError(
      'IMAGE_CORRUPT',
      `The manifest of image ${inputs.key} is unreadable: ${(error as Error).message}`,
    );
  }
  if (!manifest) throw missingImageError(imagesRoot, inputs);

  if (manifest.key !== inputs.key) {
    throw new AgentvmError(
      'IMAGE_CORRUPT',
      `The manifest in ${imageDir} is for key ${manifest.key}, not ${inputs.key}.`,
    );
  }

  for (const file of Object.values(manifest.files)) {
    const filePath = path.join(imageDir, file.name);
    let sizeBytes: number;
    try {
      sizeBytes = fs.statSync(filePath).size;
    } catch {
      throw new AgentvmError('IMAGE_CORRUPT', `Image file ${filePath} is missing.`);
    }
    if (sizeBytes !== file.sizeBytes) {
      throw new AgentvmError(
        'IMAGE_CORRUPT',
        `Image file ${filePath} is ${sizeBytes} bytes; its manifest says ${file.sizeBytes}.`,
      );
    }
    if (file.sha256 && cachedSha256(filePath) !== file.sha256) {
      throw new AgentvmError('IMAGE_CORRUPT', `Image file ${filePath} fails its sha256 check.`);
    }
  }

  return {
    key: inputs.key,
    kernelPath: path.join(imageDir, manifest.files.kernel.name),
    initramfsPath: path.join(imageDir, manifest.files.initramfs.name),
    rootfsPath: path.join(imageDir, manifest.files.rootfs.name),
  };
}

const verifiedHashes = new Map<string, { stamp: string; sha256: string }>();

/**
 * sha256 of an image file, hashed again only when its size or modification time changed: images
 * are loaded at every VM start, and a same-size bit flip in the kernel or initramfs would
 * otherwise surface as a boot timeout instead of IMAGE_CORRUPT.
 */
function cachedSha256(filePath: string): string {
  const stat = fs.statSync(filePath);
  const stamp = `${stat.size}:${stat.mtimeMs}:${stat.ino}`;
  const cached = verifiedHashes.get(filePath);
  if (cached?.stamp === stamp) return cached.sha256;

  const sha256 = crypto.createHash('sha256').update(fs.readFileSync(filePath)).digest('hex');
  verifiedHashes.set(filePath, { stamp, sha256 });
  return sha256;
}

/** IMAGE_MISSING, saying whether no image exists or which inputs changed since the newest one. */
function missingImageError(imagesRoot: string, inputs: ImageInputs): AgentvmError {
  const newest = newestManifest(imagesRoot);
  if (!newest) {
    return new AgentvmError('IMAGE_MISSING', `No guest image has been built in ${imagesRoot}.`);
  }

  const names = new Set([...Object.keys(newest.inputs), ...Object.keys(inputs.hashes)]);
  const changed = [...names].filter((name) => newest.inputs[name] !== inputs.hashes[name]).sort();
  const why =
    changed.length > 0 ? `changed inputs: ${changed.join(', ')}` : 'the image builder changed';
  return new AgentvmError(
    'IMAGE_MISSING',
    `The guest image is out of date (${why}; newest image ${newest.key.slice(0, 12)} built ${newest.builtAt}).`,
  );
}

function newestManifest(imagesRoot: string): ImageManifest | undefined {
  let names: string[];
  try {
    names = fs.readdirSync(imagesRoot);
  } catch {
    return undefined;
  }

  let newest: ImageManifest | undefined;
  for (const name of names) {
    if (!/^[0-9a-f]{64}$/.test(name)) continue;

    try {
      const manifest = readImageManifest(path.join(imagesRoot, name));
      if (manifest && (!newest || manifest.builtAt > newest.builtAt)) newest = manifest;
    } catch {
      // A corrupt neighbour says nothing about why the wanted image is missing.
    }
  }
  return newest;
}
