import fs from 'node:fs';
import path from 'node:path';
import { AgentvmError } from '../../../protocol/errors';
import { dataDir, imagesDir } from '../../config/paths';
import type { GuestImage } from '../VmmDriver';
import { buildInitramfs } from './buildInitramfs';
import { withBuildLock } from './buildLock';
import {
  defaultImageSources,
  hashFile,
  hashImageInputs,
  imageBuilderVersion,
  type ImageInputs,
  type ImageSources,
} from './imageInputs';
import { writeImageManifest, type ImageManifest } from './imageManifest';
import { loadImageFor } from './loadImage';
import { defaultFreeSpaceBytes, makeExt4Image } from './makeExt4Image';
import { ensureRootfsCache } from './rootfsCache';
import { removeTemplatesOfImage, unfinishedAgentsOnImage } from './pruneImages';
import { stageRootfs } from './stageRootfs';
import { makeTempDir, removeStaleTempDirs } from './tempDirs';

/** Options for {@link ensureImage}. */
export interface EnsureImageOptions {
  /** Data directory; `dataDir()` (AGENTVM_DATA_DIR or the XDG data home) by default. */
  dataDir?: string;
  /**
   * Rebuild the debootstrap cache and the image even when they exist. Refused (INVALID_STATE)
   * while an agent that has not ended has its disk on the image: VM overlays name their base
   * image by path, so a rebuild under the same key would change the disk under it.
   */
  force?: boolean;
  /** Receives one human-readable line per build step and each line of tool output. */
  onProgress?: (line: string) => void;
  /** Build inputs; this host's and checkout's by default. */
  sources?: ImageSources;
  /** Free space in the root filesystem beyond its contents, in bytes (1.5 GiB by default). */
  freeSpaceBytes?: number;
}

/**
 * The guest image for the current inputs, building it first when it is missing, out of date or
 * corrupt. Builds happen in a temporary directory renamed to `images/<key>` only once complete,
 * under a lock shared with other processes. Throws IMAGE_BUILD_FAILED (or HOST_REQUIREMENT_MISSING)
 * when building fails.
 */
export async function ensureImage(options: EnsureImageOptions = {}): Promise<GuestImage> {
  const imagesRoot = imagesDir(options.dataDir ?? dataDir());
  const progress = options.onProgress ?? (() => undefined);
  const inputs = hashImageInputs(options.sources ?? defaultImageSources());

  const existing = options.force ? undefined : tryLoad(imagesRoot, inputs, progress);
  if (existing) return existing;

  return withBuildLock(
    imagesRoot,
    async () => {
      // Another process may have finished this very image while we waited for the lock.
      const built = options.force ? undefined : tryLoad(imagesRoot, inputs, () => undefined);
      if (built) return built;

      const root = options.dataDir ?? dataDir();
      const users = unfinishedAgentsOnImage(root, inputs.key);
      if (options.force && users.length > 0) {
        throw new AgentvmError(
          'INVALID_STATE',
          `the image ${inputs.key.slice(0, 12)} is the base of the disks of agents that have not ended (${users.join(', ')}); a rebuild under the same key would change the disk under each of them`,
          `Let them finish, or cancel or remove them (\`agentvm ls\`), then build again; or build into another data directory (AGENTVM_DATA_DIR).`,
        );
      }

      const replacing = fs.existsSync(path.join(imagesRoot, inputs.key));
      await buildImage(imagesRoot, inputs, options, progress);
      // Templates of the replaced image are overlays on its old root filesystem: they go, and the
      // broker builds them again. Not under agents still on it (a corrupt image being repaired).
      if (replacing && users.length === 0) {
        for (const dir of removeTemplatesOfImage(root, inputs.key)) {
          progress(`image: removed template ${path.basename(dir)}, built on the replaced image`);
        }
      }
      return loadImageFor(imagesRoot, inputs);
    },
    (ownerPid) => progress(`image: waiting for the build in process ${ownerPid}`),
  );
}

function tryLoad(
  imagesRoot: string,
  inputs: ImageInputs,
  progress: (line: string) => void,
): GuestImage | undefined {
  try {
    return loadImageFor(imagesRoot, inputs);
  } catch (error) {
    if (!(error instanceof AgentvmError)) throw error;
    if (error.code !== 'IMAGE_MISSING' && error.code !== 'IMAGE_CORRUPT') throw error;

    progress(`image: ${error.message} Building it.`);
    return undefined;
  }
}

async function buildImage(
  imagesRoot: string,
  inputs: ImageInputs,
  options: EnsureImageOptions,
  progress: (line: string) => void,
): Promise<void> {
  const startedAt = performance.now();
  const freeBytes = options.freeSpaceBytes ?? defaultFreeSpaceBytes;
  for (const name of removeStaleTempDirs(imagesRoot)) progress(`image: removed stale ${name}`);

  const cacheExisted =
    !options.force &&
    fs.existsSync(path.join(imagesRoot, 'cache', inputs.rootfsCacheKey, 'complete.json'));
  const cachedRootfs = await ensureRootfsCache(imagesRoot, inputs, options);

  const temp = makeTempDir(imagesRoot, inputs.key.slice(0, 12));
  try {
    // Kernel and initramfs.
    progress('image: copying kernel and writing initramfs');
    const initramfsStartedAt = performance.now();
    fs.copyFileSync(inputs.sources.kernelPath, path.join(temp, 'kernel'));
    buildInitramfs(inputs, path.join(temp, 'initramfs.img'));
    const initramfsMs = Math.round(performance.now() - initramfsStartedAt);

    // The root tree: cached debootstrap output plus the agentvm layer.
    progress('image: staging root filesystem');
    const stageStartedAt = performance.now();
    const staging = path.join(temp, 'staging');
    stageRootfs(cachedRootfs, staging, inputs);
    const stageMs = Math.round(performance.now() - stageStartedAt);

    // The ext4 image.
    progress('image: writing rootfs.ext4 with mke2fs -d');
    const ext4 = await makeExt4Image(staging, path.join(temp, 'rootfs.ext4'), freeBytes, progress);
    progress(`image: mke2fs took ${ext4.mke2fsMs} ms for ${ext4.contentBytes} bytes of files`);
    fs.rmSync(staging, { recursive: true, force: true });

    // The manifest, last: its presence is what marks the image complete.
    const manifest: ImageManifest = {
      formatVersion: 1,
      key: inputs.key,
      builtAt: new Date().toISOString(),
      builderVersion: imageBuilderVersion,
      rootfsCacheKey: inputs.rootfsCacheKey,
      inputs: inputs.hashes,
      files: {
        kernel: describe(temp, 'kernel', true),
        initramfs: describe(temp, 'initramfs.img', true),
        rootfs: describe(temp, 'rootfs.ext4', false),
      },
      rootfs: { contentBytes: ext4.contentBytes, freeBytes },
      timings: {
        debootstrapReused: cacheExisted,
        initramfsMs,
        stageMs,
        mke2fsMs: ext4.mke2fsMs,
        totalMs: Math.round(performance.now() - startedAt),
      },
    };
    writeImageManifest(temp, manifest);
    publish(imagesRoot, temp, inputs.key);
    progress(`image: ${inputs.key} ready in ${manifest.timings.totalMs} ms`);
  } catch (error) {
    if (error instanceof AgentvmError) throw error;
    throw new AgentvmError(
      'IMAGE_BUILD_FAILED',
      `Building the guest image failed: ${(error as Error).message}`,
    );
  } finally {
    fs.rmSync(temp, { recursive: true, force: true });
  }
}

/** Move a finished build to `images/<key>`, replacing (after a forced rebuild) the old one whole. */
function publish(imagesRoot: string, temp: string, key: string): void {
  const finalDir = path.join(imagesRoot, key);
  if (!fs.existsSync(finalDir)) {
    fs.renameSync(temp, finalDir);
    return;
  }

  const retired = makeTempDir(imagesRoot, `old-${key.slice(0, 12)}`);
  fs.renameSync(finalDir, path.join(retired, 'image'));
  fs.renameSync(temp, finalDir);
  fs.rmSync(retired, { recursive: true, force: true });
}

function describe(dir: string, name: string, withHash: boolean): ImageManifest['files']['kernel'] {
  const file = path.join(dir, name);
  return {
    name,
    sizeBytes: fs.statSync(file).size,
    ...(withHash ? { sha256: hashFile(file) } : {}),
  };
}
