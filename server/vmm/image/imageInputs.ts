import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AgentvmError } from '../../../protocol/errors';
import { packageRoot } from '../../config/paths';
import { findCloudKernel, findStaticBusybox } from './hostArtifacts';

/**
 * Bump when the build recipe changes in a way the hashed inputs do not show (the rootfs
 * customisation, the initramfs layout, mke2fs options), so every host rebuilds.
 */
export const imageBuilderVersion = 1;

/** Bump when the debootstrap step or its clean-up changes; invalidates images/cache/. */
export const rootfsCacheVersion = 1;

/**
 * Kernel modules the initramfs loads, in this order (each depends on the ones before). virtio_rng
 * feeds the guest's entropy pool from the host when the VM has a virtio-rng device.
 */
export const initramfsModules = [
  'virtio_ring',
  'virtio',
  'virtio_mmio',
  'virtio_console',
  'virtio_blk',
  'failover',
  'net_failover',
  'virtio_net',
  'virtio_rng',
] as const;

/** What debootstrap builds; the only inputs of the cached root filesystem. */
export interface DebootstrapRecipe {
  suite: string;
  variant: string;
  packages: string[];
}

export const defaultDebootstrapRecipe: DebootstrapRecipe = {
  suite: 'bookworm',
  variant: 'minbase',
  packages: ['nodejs', 'git', 'ca-certificates', 'tini'],
};

/** Where each input of an image comes from. */
export interface ImageSources {
  kernelPath: string;
  /** Directory holding the kernel's modules.dep (normally /lib/modules/<release>). */
  modulesDir: string;
  busyboxPath: string;
  /** The initramfs /init script. */
  initramfsInitPath: string;
  /** The root filesystem's init, installed as /sbin/agentvm-init. */
  rootfsInitPath: string;
  guestAgentPath: string;
  agentctlPath: string;
  debootstrap: DebootstrapRecipe;
}

/** A kernel module resolved to its file on the host. */
export interface ModuleFile {
  name: string;
  path: string;
}

/** The resolved, hashed inputs of one image. */
export interface ImageInputs {
  sources: ImageSources;
  /** Modules to load that exist as files; built-in ones are left out. */
  modules: ModuleFile[];
  /** sha256 (hex) of each input, by a stable name; recorded in the manifest to explain rebuilds. */
  hashes: Record<string, string>;
  /** Key of the cached debootstrap output: the recipe and {@link rootfsCacheVersion} only. */
  rootfsCacheKey: string;
  /** Key of the whole image: every input above plus {@link imageBuilderVersion}. */
  key: string;
}

/**
 * The sources this host and checkout would build from: the newest cloud kernel, its modules, a
 * static busybox, guest/rootfs scripts, and the dist/guest bundles. Throws
 * HOST_REQUIREMENT_MISSING when the host lacks the kernel or busybox.
 */
export function defaultImageSources(root = packageRoot()): ImageSources {
  const kernel = findCloudKernel();
  if (!kernel) {
    throw new AgentvmError(
      'HOST_REQUIREMENT_MISSING',
      'No /boot/vmlinuz-*-cloud-amd64 kernel found (package linux-image-cloud-amd64).',
    );
  }

  const busyboxPath = findStaticBusybox();
  if (!busyboxPath) {
    throw new AgentvmError(
      'HOST_REQUIREMENT_MISSING',
      'No statically linked busybox found (package busybox-static).',
    );
  }

  return {
    kernelPath: kernel.path,
    modulesDir: path.join('/lib/modules', kernel.release),
    busyboxPath,
    initramfsInitPath: path.join(root, 'guest', 'rootfs', 'initramfs-init.sh'),
    rootfsInitPath: path.join(root, 'guest', 'rootfs', 'agentvm-init.sh'),
    guestAgentPath: path.join(root, 'dist', 'guest', 'guest-agent.js'),
    agentctlPath: path.join(root, 'dist', 'guest', 'agentctl.js'),
    debootstrap: defaultDebootstrapRecipe,
  };
}

/** Resolve modules and hash every input. Throws IMAGE_MISSING when a guest bundle is not built. */
export function hashImageInputs(sources: ImageSources): ImageInputs {
  for (const [label, file] of [
    ['guest agent bundle', sources.guestAgentPath],
    ['agentctl bundle', sources.agentctlPath],
  ] as const) {
    if (!fs.existsSync(file)) {
      throw new AgentvmError(
        'IMAGE_MISSING',
        `The ${label} ${file} does not exist.`,
        'Build the bundles first with `npm run build`, then `agentvm image build`.',
      );
    }
  }

  const modules = resolveModules(sources.modulesDir, initramfsModules);
  const hashes: Record<string, string> = {
    kernel: hashFile(sources.kernelPath),
    busybox: hashFile(sources.busyboxPath),
    'initramfs-init': hashFile(sources.initramfsInitPath),
    'agentvm-init': hashFile(sources.rootfsInitPath),
    'guest-agent': hashFile(sources.guestAgentPath),
    agentctl: hashFile(sources.agentctlPath),
  };
  for (const module of modules) hashes[`module:${module.name}`] = hashFile(module.path);

  const rootfsCacheKey = hashJson({ rootfsCacheVersion, debootstrap: sources.debootstrap });
  hashes.debootstrap = rootfsCacheKey;
  const key = hashJson({ imageBuilderVersion, hashes: sortedEntries(hashes) });
  return { sources, modules, hashes, rootfsCacheKey, key };
}

/**
 * Find each module's file through modules.dep. A module listed in modules.builtin is compiled
 * into the kernel and needs no file; a module in neither list is a host problem.
 */
export function resolveModules(modulesDir: string, names: readonly string[]): ModuleFile[] {
  const byName = new Map<string, string>();
  for (const line of readLines(path.join(modulesDir, 'modules.dep'))) {
    const relative = line.slice(0, line.indexOf(':'));
    if (relative) byName.set(moduleName(relative), path.join(modulesDir, relative));
  }
  const builtin = new Set(
    readLines(path.join(modulesDir, 'modules.builtin')).map((line) => moduleName(line)),
  );

  const modules: ModuleFile[] = [];
  for (const name of names) {
    const file = byName.get(name);
    if (file) {
      modules.push({ name, path: file });
      continue;
    }
    if (builtin.has(name)) continue;

    throw new AgentvmError(
      'HOST_REQUIREMENT_MISSING',
      `Kernel module ${name} is not in ${modulesDir}/modules.dep or modules.builtin.`,
      'Reinstall linux-image-cloud-amd64 so the kernel and its modules match.',
    );
  }
  return modules;
}

/** sha256 of a file's contents, hex. */
export function hashFile(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function hashJson(value: unknown): string {
  return crypto.createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

function sortedEntries(record: Record<string, string>): [string, string][] {
  return Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function moduleName(relativePath: string): string {
  return path
    .basename(relativePath.trim())
    .replace(/\.ko(\.(xz|zst|gz))?$/, '')
    .replace(/-/g, '_');
}

function readLines(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n');
  } catch {
    return [];
  }
}
