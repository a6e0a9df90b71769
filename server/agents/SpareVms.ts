import fs from 'node:fs';
import { agentDir } from '../config/paths';
import type { Logger } from '../log';
import type { TemplateManager } from '../vmm/templates/TemplateManager';
import type { TemplateShape } from '../vmm/templates/templateKey';
import type { GuestImage, VmmDriver, VmSpec, VmTemplate } from '../vmm/VmmDriver';
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
  templateKey: string;
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
   * The id reserved for a ready spare of the template that an agent of `shape` would be cloned
   * from, now claimed for a new agent; undefined when there is none (or its template is no longer
   * the one in use, which ends it).
   */
  claim(shape: SpareShape): string | undefined {
    if (this.closed) return undefined;

    const templateShape = this.templateShape(shape);
    const key = this.options.templates.keyFor(templateShape);
    const spare = this.waiting.get(key);
    if (!spare?.ready) return undefined;

    this.waiting.delete(key);
    if (this.options.templates.find(templateShape).template?.key !== spare.templateKey) {
      void this.end(spare, { removeDir: true });
      return undefined;
    }

    this.claimed.set(spare.id, spare);
    return spare.id;
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

    const spare: Spare = { id: newAgentId(), templateKey: template.key, ready: false };
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

  private templateShape(shape: SpareShape): TemplateShape {
    return {
      image: shape.image,
      memoryMiB: shape.memoryMiB,
      vcpus: shape.vcpus,
      egress: this.options.plannedEgress !== undefined,
    };
  }
}
