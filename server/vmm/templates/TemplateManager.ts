import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AgentvmError } from '../../../protocol/errors';
import { agentsDir } from '../../config/paths';
import type { Logger } from '../../log';
import { GUEST_PROXY_ADDRESS, GUEST_PROXY_PORT } from '../../policy/egress/guestEgress';
import { detectAccelerator } from '../accelerator';
import type { VmmDriver, VmTemplate } from '../VmmDriver';
import { qcow2BackingFile } from './qcow2Backing';
import { templateInputs, templateKey, type TemplateShape } from './templateKey';
import { removeInterruptedBuilds } from './removeInterruptedBuilds';
import { withTemplateLock } from './templateLock';
import {
  readTemplateManifest,
  TEMPLATE_MANIFEST_FILE,
  templateFromManifest,
  type TemplateManifest,
} from './templateManifest';

export interface TemplateManagerOptions {
  /** The broker's data directory; templates live in `${dataDir}/templates/<key>/`. */
  dataDir: string;
  driver: VmmDriver;
  logger: Logger;
  /** Environment for accelerator detection (`AGENTVM_ACCEL`). */
  env?: NodeJS.ProcessEnv;
  /** Start a build when an agent finds no template (default true). */
  buildOnDemand?: boolean;
  /** Deadline for the template VM to boot to `ready`, in milliseconds. */
  bootTimeoutMs?: number;
}

/** Where the broker with data directory `dataDir` keeps its templates. */
export function templatesDir(dataDir: string): string {
  return path.join(dataDir, 'templates');
}

/** A usable template, or why there is none. */
export type TemplateLookup = { template: VmTemplate } | { template?: undefined; reason: string };

/**
 * Templates: a VM per (image, memory, vCPUs, device layout, builder version) booted once to the
 * guest agent's `ready`, saved, and cloned for every new agent. A template is built in a temporary
 * directory and renamed into place with its manifest, so a half-built one is never found; one built
 * for another image or builder is stale and removed once no agent's disk still uses it.
 */
export class TemplateManager {
  readonly root: string;
  private readonly builds = new Map<string, Promise<VmTemplate>>();
  private closed = false;
  /** Calls off builds under way when the manager closes (the broker is stopping). */
  private readonly closing = new AbortController();

  constructor(private readonly options: TemplateManagerOptions) {
    this.root = templatesDir(options.dataDir);
  }

  /** Whether the driver can build and clone templates. */
  get supported(): boolean {
    return Boolean(this.options.driver.buildTemplate && this.options.driver.clone);
  }

  /** The key of the template for `shape` on this host. */
  keyFor(shape: TemplateShape): string {
    return templateKey(templateInputs(shape, this.accel()));
  }

  /** The ready template for `shape`, or a sentence saying why there is none. Never builds. */
  find(shape: TemplateShape): TemplateLookup {
    if (!this.supported)
      return { reason: `the ${this.options.driver.name} driver has no templates` };

    const key = this.keyFor(shape);
    const dir = path.join(this.root, key);
    const manifest = readTemplateManifest(dir);
    if (manifest instanceof Error)
      return { reason: `template ${short(key)} has an unreadable manifest` };

    if (manifest) {
      const template = templateFromManifest(dir, manifest);
      if (typeof template !== 'string') return { template };

      return { reason: `template ${short(key)} is damaged (${template})` };
    }

    const stale = this.manifests().find(
      ({ manifest: other }) =>
        other.inputs.imageKey !== shape.image.key &&
        other.inputs.memoryMiB === shape.memoryMiB &&
        other.inputs.vcpus === shape.vcpus,
    );
    if (stale) {
      return {
        reason: `template ${short(stale.manifest.key)} was built for image ${short(stale.manifest.inputs.imageKey)}, but the image is now ${short(shape.image.key)}: not used`,
      };
    }

    return {
      reason: `no template yet for image ${short(shape.image.key)} with ${shape.memoryMiB} MiB and ${shape.vcpus} vCPU`,
    };
  }

  /** Whether a build of `shape`'s template is under way in this process. */
  isBuilding(shape: TemplateShape): boolean {
    return this.builds.has(this.keyFor(shape));
  }

  /**
   * The template for `shape`, built now if there is none. Concurrent callers (and other processes,
   * through a lock file) share one build.
   */
  ensure(shape: TemplateShape): Promise<VmTemplate> {
    const found = this.find(shape);
    if (found.template) return Promise.resolve(found.template);

    const key = this.keyFor(shape);
    let build = this.builds.get(key);
    if (!build) {
      build = this.build(shape, key).finally(() => this.builds.delete(key));
      this.builds.set(key, build);
    }
    return build;
  }

  /** Start {@link ensure} without waiting (when builds on demand are on); failures are logged. */
  buildInBackground(shape: TemplateShape): boolean {
    if (this.closed || this.options.buildOnDemand === false || !this.supported) return false;

    this.ensure(shape).catch((error: Error) =>
      this.options.logger.warn('template.build_failed', { error: error.message }),
    );
    return true;
  }

  /**
   * Remove templates that no current image would use (another image key or builder version, or no
   * valid manifest) and leftovers of interrupted builds, except those an agent's disk still uses.
   * Returns the removed directories. The QEMU of a build whose broker was killed still runs from
   * its directory: it is stopped first, as nothing could find it once its pid file is gone.
   */
  async removeStale(currentImageKey: string): Promise<string[]> {
    if (!fs.existsSync(this.root)) return [];

    const removed = await removeInterruptedBuilds(
      this.root,
      this.options.driver,
      this.options.logger,
      this.builds.size > 0,
    );
    const inUse = this.disksInUse();
    for (const name of fs.readdirSync(this.root)) {
      // Builds are done above; a `.lock-*` file is held by a build that may be under way.
      if (name.startsWith('.build-') || name.startsWith('.lock-')) continue;

      const dir = path.join(this.root, name);
      const manifest = readTemplateManifest(dir);
      const current =
        manifest &&
        !(manifest instanceof Error) &&
        manifest.inputs.imageKey === currentImageKey &&
        manifest.key === this.keyForInputs(manifest);
      if (current) continue;

      const disk = manifest && !(manifest instanceof Error) ? manifest.diskFile : 'overlay.qcow2';
      if (inUse.has(path.join(dir, disk))) continue;

      fs.rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
      this.options.logger.info('template.removed', { dir });
    }
    return removed;
  }

  /** Call off builds under way and wait for them to end; later builds on demand are refused. */
  async close(): Promise<void> {
    this.closed = true;
    this.closing.abort(new Error('the template manager is closed'));
    await Promise.allSettled([...this.builds.values()]);
  }

  private async build(shape: TemplateShape, key: string): Promise<VmTemplate> {
    if (this.closed) throw new AgentvmError('VM_FAILED', 'the template manager is closed');

    fs.mkdirSync(this.root, { recursive: true });
    const lock = path.join(this.root, `.lock-${key}`);
    return withTemplateLock(lock, 30 * 60_000, async () => {
      // Another process may have finished it while this one waited for the lock.
      const found = this.find(shape);
      if (found.template) return found.template;

      await this.removeStale(shape.image.key);
      return this.options.logger.timed('template.build', { key }, () =>
        this.buildUnlocked(shape, key),
      );
    });
  }

  private async buildUnlocked(shape: TemplateShape, key: string): Promise<VmTemplate> {
    const startedAt = performance.now();
    const suffix = crypto.randomBytes(4).toString('hex');
    const temp = path.join(this.root, `.build-${process.pid}-${suffix}`);
    const target = path.join(this.root, key);
    fs.mkdirSync(temp, { recursive: true });
    try {
      // Boot and save; no task and no sync: those come after each clone.
      const built = await this.options.driver.buildTemplate!(
        {
          id: `template-${short(key)}`,
          vmDir: temp,
          image: shape.image,
          memoryMiB: shape.memoryMiB,
          vcpus: shape.vcpus,
          bootTimeoutMs: this.options.bootTimeoutMs ?? 180_000,
          // The socket only names the relay QEMU runs per connection; nothing can listen under /dev/null.
          ...(shape.egress
            ? {
                egress: {
                  guestAddress: GUEST_PROXY_ADDRESS,
                  guestPort: GUEST_PROXY_PORT,
                  socketPath: '/dev/null/agentvm-template-egress.sock',
                },
              }
            : {}),
        },
        { signal: this.closing.signal },
      );

      // Freeze the disk: clones' overlays read through it and it must never change again.
      fs.chmodSync(built.diskPath, 0o444);
      fs.rmSync(path.join(temp, 'qemu.pid'), { force: true });
      const manifest: TemplateManifest = {
        key,
        inputs: templateInputs(shape, this.accel()),
        memoryFile: path.basename(built.memoryPath),
        diskFile: path.basename(built.diskPath),
        stateFile: path.basename(built.snapshot.statePath),
        stateSizeBytes: built.snapshot.sizeBytes,
        stateChecksum: built.snapshot.checksum,
        migrationCapabilities: built.snapshot.migrationCapabilities ?? [],
        builtAt: Date.now(),
        buildMs: Math.round(performance.now() - startedAt),
      };
      writeFileSynced(path.join(temp, TEMPLATE_MANIFEST_FILE), JSON.stringify(manifest, null, 2));

      // Publish atomically: a directory named after its key always has a complete template.
      fs.rmSync(target, { recursive: true, force: true });
      fs.renameSync(temp, target);
      fsyncDirectory(this.root);
      const template = templateFromManifest(target, manifest);
      if (typeof template === 'string') throw new AgentvmError('VM_FAILED', template);

      return template;
    } finally {
      fs.rmSync(temp, { recursive: true, force: true });
    }
  }

  private manifests(): Array<{ dir: string; manifest: TemplateManifest }> {
    if (!fs.existsSync(this.root)) return [];

    return fs
      .readdirSync(this.root)
      .filter((name) => !name.startsWith('.'))
      .map((name) => ({
        dir: path.join(this.root, name),
        manifest: readTemplateManifest(path.join(this.root, name)),
      }))
      .filter(
        (entry): entry is { dir: string; manifest: TemplateManifest } =>
          Boolean(entry.manifest) && !(entry.manifest instanceof Error),
      );
  }

  /** Template disks that an agent's overlay names as its backing file. */
  private disksInUse(): Set<string> {
    const agents = agentsDir(this.options.dataDir);
    const disks = new Set<string>();
    if (!fs.existsSync(agents)) return disks;

    for (const id of fs.readdirSync(agents)) {
      const backing = qcow2BackingFile(path.join(agents, id, 'overlay.qcow2'));
      if (backing) disks.add(path.resolve(backing));
    }
    return disks;
  }

  private keyForInputs(manifest: TemplateManifest): string {
    const current = templateInputs(
      {
        image: { key: manifest.inputs.imageKey, kernelPath: '', initramfsPath: '', rootfsPath: '' },
        memoryMiB: manifest.inputs.memoryMiB,
        vcpus: manifest.inputs.vcpus,
        egress: manifest.inputs.egress,
      },
      this.accel(),
    );
    return templateKey(current);
  }

  private accel() {
    return detectAccelerator(this.options.env).accel;
  }
}

function short(key: string): string {
  return key.slice(0, 12);
}

function writeFileSynced(file: string, text: string): void {
  const fd = fs.openSync(file, 'w', 0o644);
  try {
    fs.writeFileSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function fsyncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
