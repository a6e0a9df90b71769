import fs from 'node:fs';
import { AgentvmError } from '../../../protocol/errors';
import type { Logger } from '../../log';
import type { ControlChannel, ReadyMessage } from '../ControlChannel';
import type { Accelerator, SnapshotInfo, Vm, VmExit, VmSpec } from '../VmmDriver';
import type { memoryLayout } from './buildQemuArgs';
import { consoleTail } from './consoleTail';
import { mappedMemoryBase } from './memoryBase';
import { MigrationSink, type WrittenFile } from './MigrationSink';
import { resumeAfterNoSpace } from './resumeAfterNoSpace';
import type { QemuProcess } from './QemuProcess';
import type { QmpClient } from './QmpClient';
import { fsyncDirectory, replaceFile, writeSnapshotSidecar } from './snapshotFile';
import { IGNORE_SHARED } from './StartMode';
import { removeSockets, type VmPaths } from './vmPaths';
import { waitForMigration } from './waitForMigration';

/** A migration bandwidth no disk reaches: in effect, no cap. */
const UNTHROTTLED_BYTES_PER_SECOND = 2 ** 40;

/** What the driver hands a {@link QemuVm} once QEMU runs and the guest said `ready`. */
export interface QemuVmParts {
  spec: VmSpec;
  paths: VmPaths;
  accel: Accelerator;
  process: QemuProcess;
  qmp: QmpClient;
  channel: ControlChannel;
  ready: ReadyMessage;
  /** How long boot, restore or attach took until `ready`, in milliseconds. */
  startupMs: number;
  /** Milliseconds from the start of boot/restore/clone to the end of each step (see QemuDriver). */
  startupSteps?: Record<string, number>;
  /** QMP migration capabilities to set before saving (e.g. `x-ignore-shared` for templates). */
  migrationCapabilities: string[];
  /** Guest RAM is the backend `mem` (see {@link SnapshotInfo.namedMemoryBackend}). */
  namedMemoryBackend?: boolean;
  /**
   * Guest RAM is private to this VM (a clone's copy-on-write mapping, or anonymous): a snapshot
   * writes it to its own sparse file (see {@link SnapshotInfo.memory}). A template's shared RAM
   * file is its memory already, and an unnamed RAM block cannot be restored into a mapped file.
   */
  splitMemory?: boolean;
  /**
   * The file private RAM maps copy-on-write (a template's memory): a snapshot keeps only the pages
   * that differ from it, when it is still the file QEMU maps (see {@link SnapshotInfo.memoryBase}).
   */
  privateMemoryFile?: string;
  logger: Logger;
  stopGraceMs: number;
  migrationTimeoutMs: number;
}

/** The parts every {@link QemuVm} of one driver shares. */
export type QemuVmOptions = Pick<QemuVmParts, 'logger' | 'stopGraceMs' | 'migrationTimeoutMs'>;

/** What a start or an attach has once the guest answered `ready`. */
export type ConnectedQemu = Pick<
  QemuVmParts,
  'spec' | 'paths' | 'accel' | 'process' | 'qmp' | 'channel' | 'ready'
>;

/** How the guest's RAM is set up and how the start went, as a start or an attach found out. */
export type QemuVmMemory = Pick<
  QemuVmParts,
  | 'startupSteps'
  | 'migrationCapabilities'
  | 'namedMemoryBackend'
  | 'splitMemory'
  | 'privateMemoryFile'
>;

/** The parts of {@link QemuVmMemory} a QEMU command line tells (see memoryLayout). */
export function qemuVmMemory(
  layout: ReturnType<typeof memoryLayout>,
): Pick<QemuVmMemory, 'namedMemoryBackend' | 'splitMemory' | 'privateMemoryFile'> {
  return {
    namedMemoryBackend: layout.named,
    splitMemory: layout.split,
    ...(layout.privateFile ? { privateMemoryFile: layout.privateFile } : {}),
  };
}

/**
 * The VM for a QEMU whose guest just answered `ready`, its start (or attach) having begun at
 * `startedAt` (a `performance.now()` reading).
 */
export function connectedQemuVm(
  options: QemuVmOptions,
  startedAt: number,
  connected: ConnectedQemu,
  memory: QemuVmMemory,
): QemuVm {
  const startupMs = Math.round(performance.now() - startedAt);
  return new QemuVm({ ...options, ...connected, ...memory, startupMs });
}

/** A running (or paused) QEMU microvm and its two connections: QMP and the control channel. */
export class QemuVm implements Vm {
  readonly id: string;
  readonly pid: number;
  readonly accel: Accelerator;
  readonly channel: ControlChannel;
  readonly exited: Promise<VmExit>;
  /** The guest agent's answer to the handshake. */
  readonly ready: ReadyMessage;
  readonly startupMs: number;
  /**
   * When each start step ended, in milliseconds since the start: `disk`, `spawned`, `qmp` (or
   * `spare`, when a spare QEMU was taken instead), `loaded` and `cont` (restore or clone only),
   * `control`, `ready`.
   */
  readonly startupSteps: Readonly<Record<string, number>>;
  readonly startedFromSpare: boolean;
  /** When each step of the last snapshot ended, in milliseconds since it started. */
  snapshotSteps: Readonly<Record<string, number>> = {};
  private stopping: Promise<void> | undefined;
  private readonly noSpace: { dispose(): void };

  constructor(private readonly parts: QemuVmParts) {
    this.id = parts.spec.id;
    this.pid = parts.process.pid;
    this.accel = parts.accel;
    this.channel = parts.channel;
    this.ready = parts.ready;
    this.startupMs = parts.startupMs;
    this.startupSteps = parts.startupSteps ?? {};
    this.startedFromSpare = this.startupSteps.spare !== undefined;
    this.noSpace = resumeAfterNoSpace(parts.qmp, parts.logger, this.id);
    this.exited = parts.process.exited.then((exit) => {
      this.release();
      return { ...exit, consoleTail: consoleTail(parts.paths.consoleLog) };
    });

    // An adopted QEMU is not our child, so no exit event: its monitor closing is the first sign.
    void parts.qmp.closed.then(() => parts.process.checkAlive());
  }

  pause(): Promise<void> {
    return this.parts.logger.timed('vm.pause', { vmId: this.id }, async () => {
      await this.qmp('stop');
    });
  }

  resume(): Promise<void> {
    return this.parts.logger.timed('vm.resume', { vmId: this.id }, async () => {
      await this.qmp('cont');
    });
  }

  snapshot(): Promise<SnapshotInfo> {
    return this.parts.logger.timed('vm.snapshot', { vmId: this.id }, () => this.writeSnapshot());
  }

  stop(): Promise<void> {
    this.stopping ??= this.parts.logger.timed('vm.stop', { vmId: this.id }, () => this.end());
    return this.stopping;
  }

  /**
   * Close QMP and the control channel but leave QEMU running, for a broker that exits while its VMs
   * keep going; a later broker reattaches with `QemuDriver.attach`.
   */
  detach(): void {
    this.noSpace.dispose();
    this.parts.channel.close();
    this.parts.qmp.close();
  }

  private async writeSnapshot(): Promise<SnapshotInfo> {
    const { paths, migrationCapabilities } = this.parts;
    const startedAt = performance.now();
    const steps: Record<string, number> = {};
    this.snapshotSteps = steps;
    const mark = (name: string) => (steps[name] = Math.round(performance.now() - startedAt));
    let replacedMemory: ReturnType<typeof replaceFile> | undefined;

    // Pause first so the memory image and the disk overlay describe the same instant.
    await this.qmp('stop');
    mark('stopped');

    let sink: MigrationSink | undefined;
    let written: WrittenFile;
    const block = {
      blockName: 'mem',
      blockBytes: this.parts.spec.memoryMiB * 2 ** 20,
      blockAddresses: migrationCapabilities.includes(IGNORE_SHARED),
    };
    // Only private RAM has a file of its own to compare with (privateMemoryFile implies split).
    const memoryBase = mappedMemoryBase(this.pid, this.parts.privateMemoryFile, paths.vmDir);
    const split = memoryBase
      ? { ...block, basePath: memoryBase.path }
      : this.parts.splitMemory
        ? { ...block, memoryPath: paths.snapshotMemoryTemp }
        : undefined;
    try {
      fs.rmSync(paths.snapshotTemp, { force: true });
      sink = await MigrationSink.listen(paths.migrationSocket, paths.snapshotTemp, split);
      if (migrationCapabilities.length > 0) {
        const capabilities = migrationCapabilities.map((capability) => ({
          capability,
          state: true,
        }));
        await this.qmp('migrate-set-capabilities', { capabilities });
      }

      // QEMU 7.2 caps a migration at 128 MiB/s even when the guest is stopped: that cap alone was
      // ≈1.15 s of a 150 MiB snapshot.
      await this.qmp('migrate-set-parameters', { 'max-bandwidth': UNTHROTTLED_BYTES_PER_SECOND });
      mark('setup');

      await this.qmp('migrate', { uri: sink.uri });
      mark('migrate');
      const deadline = Date.now() + this.parts.migrationTimeoutMs;
      const [, file] = await Promise.all([
        waitForMigration(this.parts.qmp, deadline),
        sink.written(),
      ]);
      written = file;
      mark('completed');
      // The memory file is named before the sidecar and the state file: a state file in place
      // means the whole snapshot is.
      if (written.memory) {
        replacedMemory = replaceFile(paths.snapshotMemoryTemp, paths.snapshotMemory);
        written = { ...written, memory: { ...written.memory, path: paths.snapshotMemory } };
      }
      // Named before the state file, so a recovery that finds snapshot.state can verify it even
      // if the broker died before the store recorded it. Its durationMs stops here, not at exit.
      if (memoryBase) written = { ...written, memoryBase };
      await writeSnapshotSidecar(
        this.snapshotInfo(written, Math.round(performance.now() - startedAt)),
      );
      mark('described');
    } catch (error) {
      // Leave the VM as the caller can use it: paused, alive, no migration running.
      await this.parts.qmp.execute('migrate_cancel').catch(() => undefined);
      sink?.close();
      fs.rmSync(paths.snapshotTemp, { recursive: true, force: true });
      fs.rmSync(paths.snapshotMemoryTemp, { force: true });
      // The host-side write error (a full disk) says more than QEMU's "connection reset".
      const cause = sink?.failure ?? (error as Error);
      throw new AgentvmError(
        'SNAPSHOT_FAILED',
        `snapshot of VM ${this.id} failed (the VM stays paused): ${cause.message}`,
      );
    }

    sink.close();
    const replaced = replaceFile(paths.snapshotTemp, paths.snapshotState);
    mark('renamed');

    // The file is on disk and named; QEMU can quit (a waiting agent costs disk, not RAM) while the
    // directory entry is made durable.
    this.parts.channel.close();
    await Promise.all([fsyncDirectory(paths.vmDir).then(() => mark('durable')), this.stop()]);
    const durationMs = Math.round(performance.now() - startedAt);
    mark('exited');
    // Freeing the replaced snapshot's blocks is nobody's wait.
    void replaced.discard().catch(() => undefined);
    void replacedMemory?.discard().catch(() => undefined);
    return this.snapshotInfo(written, durationMs);
  }

  private snapshotInfo(written: WrittenFile, durationMs: number): SnapshotInfo {
    const { paths, migrationCapabilities } = this.parts;
    return {
      statePath: paths.snapshotState,
      sizeBytes: written.sizeBytes,
      checksum: written.checksum,
      durationMs,
      ...(migrationCapabilities.length > 0 ? { migrationCapabilities } : {}),
      ...(this.parts.namedMemoryBackend ? { namedMemoryBackend: true } : {}),
      ...(written.memory ? { memory: written.memory } : {}),
      ...(written.memoryBase ? { memoryBase: written.memoryBase } : {}),
    };
  }

  private async end(): Promise<void> {
    const { process, qmp } = this.parts;
    this.parts.channel.close();
    if (process.isRunning && qmp.isOpen) {
      // QEMU may close the monitor before answering quit; either way the exit below decides.
      await qmp.execute('quit', undefined, this.parts.stopGraceMs).catch(() => undefined);
    }

    if (!(await process.waitForExit(this.parts.stopGraceMs))) {
      process.kill('SIGKILL');
      await process.waitForExit(10_000);
    }

    await this.exited;
  }

  /** Dispose every connection and the sockets QEMU leaves behind. */
  private release(): void {
    this.noSpace.dispose();
    this.parts.channel.close();
    this.parts.qmp.close();
    removeSockets(this.parts.paths);
  }

  private async qmp<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (!this.parts.process.isRunning) {
      throw new AgentvmError('VM_FAILED', `VM ${this.id} is not running (QMP ${command})`);
    }

    try {
      return await this.parts.qmp.execute<T>(command, args);
    } catch (error) {
      throw new AgentvmError('VM_FAILED', `VM ${this.id}: ${(error as Error).message}`);
    }
  }
}
