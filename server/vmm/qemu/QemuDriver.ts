import fs from 'node:fs';
import path from 'node:path';
import { AgentvmError } from '../../../protocol/errors';
import { silentLogger, type Logger } from '../../log';
import type { SnapshotInfo, VmmDriver, VmSpec, VmStartOptions, VmTemplate } from '../VmmDriver';
import { attachQemu } from './attachQemu';
import { leftoverQemuPid } from './prepareVmDirectory';
import { QemuProcess } from './QemuProcess';
import type { QemuVm, QemuVmOptions } from './QemuVm';
import { settleGuest } from './settleGuest';
import { SpareQemus } from './SpareQemus';
import { warmInBackground } from './SparseMemoryFile';
import { bringUpQemu, startQemu } from './startQemu';
import type { StartMode } from './StartMode';
import { vmPaths } from './vmPaths';

export { IGNORE_SHARED } from './StartMode';

export interface QemuDriverOptions {
  logger?: Logger;
  /** Environment for accelerator detection (`AGENTVM_ACCEL`). */
  env?: NodeJS.ProcessEnv;
  qemuBinary?: string;
  qemuImgBinary?: string;
  /** How long `stop` waits after QMP `quit` before SIGKILL, in milliseconds. */
  stopGraceMs?: number;
  /** Deadline for writing a snapshot, in milliseconds. */
  migrationTimeoutMs?: number;
  /** How often the control channel repeats `hello` during a handshake, in milliseconds. */
  helloIntervalMs?: number;
}

/** What the start and attach paths need from their driver. */
export interface QemuDriverContext {
  options: QemuDriverOptions;
  logger: Logger;
  /** Passed to every {@link QemuVm} the driver makes. */
  vmOptions: QemuVmOptions;
}

/** File name of a template's guest RAM inside the directory it is built in. */
export const TEMPLATE_MEMORY_FILE = 'memory.ram';

/**
 * The QEMU `microvm` driver: one detached QEMU process per VM (it outlives the broker), QMP on a
 * unix socket for life-cycle operations, the control channel on a virtserialport. Starting is in
 * {@link startQemu}, taking over a running QEMU in {@link attachQemu}; this class adds the checks
 * and steps particular to each operation and logs each one with its duration.
 */
export class QemuDriver implements VmmDriver {
  readonly name = 'qemu';
  private readonly context: QemuDriverContext;
  /** Template memory files already read into the page cache by this driver (see `clone`). */
  private readonly warmedTemplates = new Set<string>();
  private readonly spares: SpareQemus;

  constructor(options: QemuDriverOptions = {}) {
    const logger = (options.logger ?? silentLogger).child({ component: 'qemu' });
    this.context = {
      options,
      logger,
      vmOptions: {
        logger,
        stopGraceMs: options.stopGraceMs ?? 3_000,
        migrationTimeoutMs: options.migrationTimeoutMs ?? 120_000,
      },
    };
    this.spares = new SpareQemus(this.context);
  }

  private get logger(): Logger {
    return this.context.logger;
  }

  boot(spec: VmSpec, options: VmStartOptions = {}): Promise<QemuVm> {
    return this.logger.timed('vm.boot', { vmId: spec.id }, async () => {
      await this.spares.discard(spec.vmDir);
      return startQemu(this.context, spec, { kind: 'boot' }, options.signal);
    });
  }

  restore(spec: VmSpec, snapshot: SnapshotInfo, options: VmStartOptions = {}): Promise<QemuVm> {
    return this.logger.timed('vm.restore', { vmId: spec.id }, async () => {
      await this.spares.discard(spec.vmDir);
      return startQemu(this.context, spec, { kind: 'restore', snapshot }, options.signal);
    });
  }

  /**
   * Launch QEMU in `spec.vmDir` ahead of a clone of `template` there (see SpareQemus.ts); true once
   * it waits for the template. The clone that comes with the same spec takes it.
   */
  prepareSpare(spec: VmSpec, template: VmTemplate): Promise<boolean> {
    return this.spares.prepare(spec, template);
  }

  hasSpare(vmDir: string): boolean {
    return this.spares.has(vmDir);
  }

  /** End the spare QEMU in `vmDir`, if one waits there; true if one was ended. */
  discardSpare(vmDir: string): Promise<boolean> {
    return this.spares.discard(vmDir);
  }

  /** End every spare QEMU; running VMs are not this call's (they outlive the broker). */
  close(): Promise<void> {
    return this.spares.discardAll();
  }

  buildTemplate(spec: VmSpec, options: VmStartOptions = {}): Promise<VmTemplate> {
    return this.logger.timed('vm.template_build', { vmId: spec.id }, async () => {
      const memoryPath = path.join(path.resolve(spec.vmDir), TEMPLATE_MEMORY_FILE);
      fs.rmSync(memoryPath, { force: true });
      const vm = await startQemu(
        this.context,
        spec,
        { kind: 'boot', templateMemory: memoryPath },
        options.signal,
      );
      let snapshot: SnapshotInfo;
      try {
        options.signal?.throwIfAborted();
        const settled = await settleGuest(vm);
        this.logger.debug('vm.template_settled', { vmId: spec.id, ...settled });
        snapshot = await vm.snapshot();
      } finally {
        await vm.stop();
      }

      return {
        key: spec.id,
        memoryPath,
        diskPath: vmPaths(spec.vmDir).overlay,
        snapshot,
        memoryMiB: spec.memoryMiB,
        vcpus: spec.vcpus,
        egress: spec.egress !== undefined,
      };
    });
  }

  clone(spec: VmSpec, template: VmTemplate, options: VmStartOptions = {}): Promise<QemuVm> {
    return this.logger.timed('vm.clone', { vmId: spec.id, template: template.key }, async () => {
      const shapeMatches =
        template.memoryMiB === spec.memoryMiB &&
        template.vcpus === spec.vcpus &&
        template.egress === (spec.egress !== undefined);
      if (!shapeMatches) {
        throw new AgentvmError(
          'INVALID_STATE',
          `template ${template.key} has another memory, vCPU or network shape than VM ${spec.id}`,
        );
      }

      const mode: StartMode = { kind: 'clone', template };
      const startedAt = performance.now();
      const spare = await this.spares.take(spec, mode);
      const vm = spare
        ? await bringUpQemu(
            this.context,
            spec,
            mode,
            // The steps of the spare's launch happened before this start; it counts from here.
            { ...spare, steps: { spare: Math.round(performance.now() - startedAt) } },
            { startedAt, deadline: Date.now() + spec.bootTimeoutMs, signal: options.signal },
          )
        : await startQemu(this.context, spec, mode, options.signal);
      // A clone's first snapshot reads all of its RAM through the template file, and holes that
      // are not in the page cache cost a fault and a page allocation each (≈1 s of QEMU time for
      // a 512 MiB template). Reading the file once per broker puts them there for every clone.
      const warmed = `${template.memoryPath}:${template.key}`;
      if (!this.warmedTemplates.has(warmed)) {
        this.warmedTemplates.add(warmed);
        await warmInBackground(template.memoryPath, this.logger);
      }
      return vm;
    });
  }

  /**
   * Take over a QEMU that a previous broker started. The pid must be alive and its command line
   * must carry this VM's pid file. On failure the process is left running; the caller decides
   * (see {@link stopLeftover}).
   */
  attach(spec: VmSpec, pid: number): Promise<QemuVm> {
    return this.logger.timed('vm.attach', { vmId: spec.id, pid }, () =>
      attachQemu(this.context, spec, pid),
    );
  }

  /** SIGKILL the QEMU whose command line carries this directory's pid file, if one runs. */
  async stopLeftover(vmDir: string): Promise<boolean> {
    if (await this.spares.discard(vmDir)) return true;

    const pid = leftoverQemuPid(vmPaths(vmDir));
    if (pid === undefined) return false;

    this.logger.warn('vm.stop_leftover', { vmDir, pid });
    const qemu = QemuProcess.adopt(pid);
    qemu.kill('SIGKILL');
    if (!(await qemu.waitForExit(5_000))) qemu.stopWatching();
    return true;
  }
}
