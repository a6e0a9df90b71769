import fs from 'node:fs';
import { agentDir } from '../config/paths';
import type { Logger } from '../log';
import type { ProfileRegistry } from '../profiles/ProfileRegistry';
import type { TemplateManager } from '../vmm/templates/TemplateManager';
import type { TemplateShape } from '../vmm/templates/templateKey';
import type { GuestImage, VmmDriver, VmSpec, VmTemplate } from '../vmm/VmmDriver';
import type { AgentManagerOptions } from './AgentManager';
import { newAgentId } from './newAgentRecord';

/** How long after an agent's clone the next spare is prepared: its guest is busy starting then. */
export const SPARE_DELAY_MS = 1_000;

export interface SpareVmsOptions {
  driver: VmmDriver;
  templates: Pick<TemplateManager, 'keyFor' | 'find'>;
  dataDir: string;
  logger: Logger;
  /**
   * The egress part of the VM spec the agent with this id will get (see AgentPolicy.plannedEgress);
   * absent when agents' VMs have no egress device.
   */
  plannedEgress?: (agentId: string) => NonNullable<VmSpec['egress']>;
  delayMs?: number;
}

/** What the VM of an agent of one profile looks like, as far as a template is concerned. */
export interface SpareShape {
  image: GuestImage;
  memoryMiB: number;
  vcpus: number;
  bootTimeoutMs: number;
}

interface Spare {
  /** The agent id reserved for it: the spare waits in that agent's directory. */
  id: string;
  shape: SpareShape;
  templateKey: string;
  /** Which files the template was when the spare was launched (see templateFiles). */
  templateFiles: string;
  ready: boolean;
}

/**
 * One spare VM start per template in use: after an agent was cloned from a template, the driver
 * prepares the next clone of it (launches its QEMU, see SpareQemus.ts) in the directory of an
 * agent id reserved for it, and the next agent of that shape gets that id. Its VM then starts
 * where it is, with the same command line, paths and egress socket as any other start, only
 * sooner: a broker restart, a recovery or a removal find nothing unusual in its directory.
 *
 * A spare nobody claimed is ended when the broker stops, and its directory removed; one left by
 * a killed broker is an agent directory without an agent, which recovery removes with its QEMU.
 * A claimed spare its agent's start did not use (the template changed, the agent was cancelled
 * while queued) is ended by {@link release}.
 */
export class SpareVms {
  /** Unclaimed spares, by template key. */
  private readonly waiting = new Map<string, Spare>();
  /** Claimed spares whose agent has not started yet, by agent id. */
  private readonly claimed = new Map<string, Spare>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly options: SpareVmsOptions) {}

  /**
   * The broker's spares: on when there are templates and the driver can launch ahead, unless
   * AGENTVM_SPARES=off.
   */
  static forBroker(
    options: Pick<AgentManagerOptions, 'driver' | 'dataDir' | 'logger' | 'policy'>,
    templates: TemplateManager | undefined,
  ): SpareVms | undefined {
    const { driver, policy } = options;
    if (!templates || !driver.prepareSpare || process.env.AGENTVM_SPARES === 'off')
      return undefined;

    return new SpareVms({
      driver,
      templates,
      dataDir: options.dataDir,
      logger: options.logger,
      plannedEgress: policy && ((id) => policy.plannedEgress(id)),
    });
  }

  /**
   * The broker started: {@link prepareForExisting} for the shapes of all `profiles`, on the
   * current image (none without a usable image: no template could be cloned either).
   */
  prepareForProfiles(profiles: Pick<ProfileRegistry, 'list'>, loadImage: () => GuestImage): void {
    let image: GuestImage;
    try {
      image = loadImage();
    } catch {
      return;
    }
    this.prepareForExisting(profiles.list().map((profile) => ({ ...profile, image })));
  }

  /**
   * An agent of `shape` was just cloned from `template`: prepare a spare for the next one, after
   * {@link SPARE_DELAY_MS}, unless one waits already.
   */
  replenishSoon(shape: SpareShape, template: VmTemplate): void {
    if (this.closed || this.waiting.has(template.key)) return;

    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.prepare(shape, template);
    }, this.options.delayMs ?? SPARE_DELAY_MS);
    timer.unref();
    this.timers.add(timer);
  }

  /**
   * The broker started: prepare a spare for each of `shapes` whose template exists already (the
   * profiles' shapes), so the first agent after a start, the one a user waits for after opening
   * the editor, finds one too. Shapes without a template get theirs after their first clone.
   */
  prepareForExisting(shapes: SpareShape[]): void {
    for (const shape of shapes) {
      const template = this.options.templates.find(this.templateShape(shape)).template;
      if (template) this.replenishSoon(shape, template);
    }
  }

  /**
   * The id reserved for a ready spare of the template that an agent of `shape` would be cloned
   * from, now claimed for a new agent; undefined when there is none (or its template is no longer
   * the one in use, which ends it).
   */
  claim(shape: SpareShape): string | undefined {
    if (this.closed) return undefined;

    this.endOutdated();
    const templateShape = this.templateShape(shape);
    const key = this.options.templates.keyFor(templateShape);
    const spare = this.waiting.get(key);
    if (!spare?.ready) return undefined;

    this.waiting.delete(key);
    if (!this.isCurrent(spare)) {
      void this.end(spare, { removeDir: true });
      return undefined;
    }

    this.claimed.set(spare.id, spare);
    return spare.id;
  }

  /**
   * Agent `id` is about to start: a spare claimed for it whose template was replaced or removed
   * since (while the agent waited in the queue) is ended now, so that the start clones the
   * template as it is.
   */
  async releaseOutdated(id: string): Promise<void> {
    const spare = this.claimed.get(id);
    if (spare && !this.isCurrent(spare)) await this.release(id);
  }

  /**
   * Agent `id`'s start is over, or the agent ended before it started: a spare claimed for it and
   * not used is ended (its directory is the agent's, and stays).
   */
  async release(id: string): Promise<void> {
    const spare = this.claimed.get(id);
    if (!spare) return;

    this.claimed.delete(id);
    await this.end(spare, { removeDir: false });
  }

  /** End every spare; unclaimed ones take their directories with them. */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const waiting = [...this.waiting.values()];
    const claimed = [...this.claimed.values()];
    this.waiting.clear();
    this.claimed.clear();
    await Promise.all([
      ...waiting.map((spare) => this.end(spare, { removeDir: true })),
      ...claimed.map((spare) => this.end(spare, { removeDir: false })),
    ]);
  }

  private async prepare(shape: SpareShape, template: VmTemplate): Promise<void> {
    const { driver, logger } = this.options;
    if (this.closed || this.waiting.has(template.key) || !driver.prepareSpare) return;

    const spare: Spare = {
      id: newAgentId(),
      shape,
      templateKey: template.key,
      // Read before the launch opens them: a template replaced in between makes the spare look
      // outdated (it is ended), never the other way round.
      templateFiles: templateFiles(template),
      ready: false,
    };
    this.waiting.set(template.key, spare);
    const spec: VmSpec = {
      id: spare.id,
      vmDir: agentDir(spare.id, this.options.dataDir),
      image: shape.image,
      memoryMiB: shape.memoryMiB,
      vcpus: shape.vcpus,
      bootTimeoutMs: shape.bootTimeoutMs,
      egress: this.options.plannedEgress?.(spare.id),
    };
    const prepared = await driver.prepareSpare(spec, template).catch(() => false);
    if (prepared && this.waiting.get(template.key) === spare) {
      spare.ready = true;
      logger.debug('agent.spare_ready', { reservedId: spare.id, template: template.key });
      return;
    }

    // It failed (the driver logged why), or the broker closed or the template changed meanwhile.
    if (this.waiting.get(template.key) === spare) this.waiting.delete(template.key);
    await this.end(spare, { removeDir: true });
  }

  private async end(spare: Spare, how: { removeDir: boolean }): Promise<void> {
    const dir = agentDir(spare.id, this.options.dataDir);
    await this.options.driver.discardSpare?.(dir).catch((error: Error) => {
      this.options.logger.warn('agent.spare_end_failed', { dir, error: error.message });
    });
    if (how.removeDir) fs.rmSync(dir, { recursive: true, force: true });
  }

  /**
   * Whether an agent of the spare's shape would still be cloned from the very files the spare was
   * launched with. A template removed and built again keeps its key (same inputs) but not its
   * files, and the spare holds the old ones open: an operator who rebuilt a broken template (for
   * example after `image build --force`) must not get it back through a spare.
   */
  private isCurrent(spare: Spare): boolean {
    const template = this.options.templates.find(this.templateShape(spare.shape)).template;
    return template?.key === spare.templateKey && templateFiles(template) === spare.templateFiles;
  }

  /**
   * Ends the ready spares whose template is no longer in use: after a new image, no agent's shape
   * leads to them any more, and each would hold ≈50 MiB and its old template's files until the
   * broker stops.
   */
  private endOutdated(): void {
    for (const [key, spare] of this.waiting) {
      if (!spare.ready || this.isCurrent(spare)) continue;

      this.waiting.delete(key);
      void this.end(spare, { removeDir: true });
    }
  }

  private templateShape(shape: SpareShape): TemplateShape {
    return {
      image: shape.image,
      memoryMiB: shape.memoryMiB,
      vcpus: shape.vcpus,
      egress: this.options.plannedEgress !== undefined,
    };
  }
}

/** The identity of a template's files (device, inode, size, modification time), in one string. */
function templateFiles(template: VmTemplate): string {
  return [template.memoryPath, template.diskPath, template.snapshot.statePath]
    .map((file) => {
      const stat = fs.statSync(file, { throwIfNoEntry: false });
      return stat ? `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}` : 'missing';
    })
    .join(' ');
}
