import fs from 'node:fs';
import path from 'node:path';
import { AgentvmError } from '../../../protocol/errors';
import { findAptMirror, type AptSource } from './aptMirror';
import type { ImageInputs } from './imageInputs';
import { runCommand } from './runCommand';
import { makeTempDir, removeStaleTempDirs, removeTree } from './tempDirs';

/** Options for {@link ensureRootfsCache}. */
export interface RootfsCacheOptions {
  force?: boolean;
  onProgress?: (line: string) => void;
  /** The apt source to bootstrap from; the host's apt configuration by default. */
  mirror?: AptSource;
}

/**
 * The debootstrap output for `inputs.rootfsCacheKey` under `${imagesRoot}/cache/<key>/rootfs`,
 * building it when absent (or when `force`). A cache entry counts only once its `complete.json`
 * exists, and entries are renamed into place whole, so an interrupted debootstrap is never reused.
 * Other cache entries are removed after a successful build: only the current recipe is worth
 * keeping, and each costs about 400 MB.
 */
export async function ensureRootfsCache(
  imagesRoot: string,
  inputs: ImageInputs,
  options: RootfsCacheOptions = {},
): Promise<string> {
  const progress = options.onProgress ?? (() => undefined);
  const cacheRoot = path.join(imagesRoot, 'cache');
  const entry = path.join(cacheRoot, inputs.rootfsCacheKey);
  const rootfs = path.join(entry, 'rootfs');

  removeStaleTempDirs(cacheRoot);
  if (!options.force && fs.existsSync(path.join(entry, 'complete.json'))) {
    progress(`rootfs: reusing debootstrap cache ${inputs.rootfsCacheKey.slice(0, 12)}`);
    return rootfs;
  }

  if (process.getuid?.() !== 0) {
    throw new AgentvmError(
      'IMAGE_BUILD_FAILED',
      'Building the guest root filesystem runs debootstrap, which needs root.',
      'Run `sudo agentvm image build` once (the image is then shared by unprivileged brokers). Building without root would need mmdebstrap in unshare mode, which agentvm does not use yet.',
    );
  }

  const recipe = inputs.sources.debootstrap;
  const mirror = options.mirror ?? findAptMirror(recipe.suite);
  if (!mirror) {
    throw new AgentvmError(
      'HOST_REQUIREMENT_MISSING',
      `The host's apt configuration has no enabled "deb" entry for suite ${recipe.suite} with component main.`,
      'Add a Debian mirror for that suite to /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list.',
    );
  }

  const temp = makeTempDir(cacheRoot, `cache-${inputs.rootfsCacheKey.slice(0, 12)}`);
  try {
    const target = path.join(temp, 'rootfs');
    const args = [
      `--variant=${recipe.variant}`,
      `--include=${recipe.packages.join(',')}`,
      ...(mirror.signedBy && fs.existsSync(mirror.signedBy)
        ? [`--keyring=${mirror.signedBy}`]
        : []),
      recipe.suite,
      target,
      mirror.uri,
    ];
    progress(`rootfs: debootstrap ${args.join(' ')}`);
    const startedAt = performance.now();
    await runCommand('debootstrap', args, { onLine: (line) => progress(`debootstrap: ${line}`) });
    const debootstrapMs = Math.round(performance.now() - startedAt);

    // Downloaded .deb files are only debootstrap's working set; the guest never needs them.
    const archives = path.join(target, 'var', 'cache', 'apt', 'archives');
    for (const name of fs.readdirSync(archives)) {
      if (name.endsWith('.deb')) fs.rmSync(path.join(archives, name));
    }

    fs.writeFileSync(
      path.join(temp, 'complete.json'),
      JSON.stringify({ key: inputs.rootfsCacheKey, recipe, mirror: mirror.uri, debootstrapMs }),
    );
    fs.rmSync(entry, { recursive: true, force: true });
    fs.renameSync(temp, entry);
    progress(`rootfs: debootstrap done in ${debootstrapMs} ms`);
  } catch (error) {
    removeTree(temp);
    if (error instanceof AgentvmError) throw error;
    throw new AgentvmError('IMAGE_BUILD_FAILED', `debootstrap failed: ${(error as Error).message}`);
  }

  for (const name of fs.readdirSync(cacheRoot)) {
    if (name !== inputs.rootfsCacheKey && !name.startsWith('.tmp-')) {
      fs.rmSync(path.join(cacheRoot, name), { recursive: true, force: true });
    }
  }
  return rootfs;
}
