import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { AgentvmError } from '../../../protocol/errors';
import { silentLogger, type Logger } from '../../log';
import { egressNetdevArgs } from '../../policy/egress/guestEgress';
import { detectAccelerator } from '../accelerator';
import { ControlChannel } from '../ControlChannel';
import type { Accelerator, SnapshotInfo, VmmDriver, VmSpec, VmTemplate } from '../VmmDriver';
import { buildQemuArgs, type QemuLaunchPlan } from './buildQemuArgs';
import { hostTscKhz } from './hostTscKhz';
import { isProcessAlive, processArgs, QemuProcess } from './QemuProcess';
import { raceStart } from './raceStart';
import { settleGuest } from './settleGuest';
import { QmpClient } from './QmpClient';
import { QemuVm } from './QemuVm';
import { checkSnapshotSize, verifySnapshot } from './snapshotFile';
import { removeSockets, vmPaths, type VmPaths } from './vmPaths';
import { waitForMigration } from './waitForMigration';

const execFileAsync = promisify(execFile);

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

/** The migration capability that keeps shared (file-backed) RAM out of a snapshot. */
export const IGNORE_SHARED = 'x-ignore-shared';

/** File name of a template's guest RAM inside the directory it is built in. */
export const TEMPLATE_MEMORY_FILE = 'memory.ram';

/**
 * Where a VM comes from: a cold boot on a fresh overlay (with `templateMemory`, RAM in that shared
 * file, for a template), a snapshot on the existing overlay, or a template on a fresh overlay.
 */
type StartMode =
  | { kind: 'boot'; templateMemory?: string }
  | { kind: 'restore'; snapshot: SnapshotInfo }
  | { kind: 'clone'; template: VmTemplate };

/**
 * The QEMU `microvm` driver: one detached QEMU process per VM (it outlives the broker), QMP on a
 * unix socket for life-cycle operations, the control channel on a virtserialport.
 */
export class QemuDriver implements VmmDriver {
  readonly name = 'qemu';
  private readonly logger: Logger;

  constructor(private readonly options: QemuDriverOptions = {}) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'qemu' });
  }

  boot(spec: VmSpec): Promise<QemuVm> {
    return this.logger.timed('vm.boot', { vmId: spec.id }, () =>
      this.start(spec, { kind: 'boot' }),
    );
  }

  restore(spec: VmSpec, snapshot: SnapshotInfo): Promise<QemuVm> {
    return this.logger.timed('vm.restore', { vmId: spec.id }, () =>
      this.start(spec, { kind: 'restore', snapshot }),
    );
  }

  buildTemplate(spec: VmSpec): Promise<VmTemplate> {
    return this.logger.timed('vm.template_build', { vmId: spec.id }, async () => {
      const memoryPath = path.join(path.resolve(spec.vmDir), TEMPLATE_MEMORY_FILE);
      fs.rmSync(memoryPath, { force: true });
      const vm = await this.start(spec, { kind: 'boot', templateMemory: memoryPath });
      let snapshot: SnapshotInfo;
      try {
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

  clone(spec: VmSpec, template: VmTemplate): Promise<QemuVm> {
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

      return this.start(spec, { kind: 'clone', template });
    });
  }

  /**
   * Take over a QEMU that a previous broker started. The pid must be alive and its command line
   * must carry this VM's pid file. On failure the process is left running: it may belong to
   * another broker that still holds its sockets.
   */
  attach(spec: VmSpec, pid: number): Promise<QemuVm> {
    return this.logger.timed('vm.attach', { vmId: spec.id, pid }, () => this.adopt(spec, pid));
  }

  private async start(spec: VmSpec, mode: StartMode): Promise<QemuVm> {
    const startedAt = performance.now();
    const deadline = Date.now() + spec.bootTimeoutMs;
    const remainingMs = () => Math.max(deadline - Date.now(), 1);
    const paths = vmPaths(spec.vmDir);
    const accel = detectAccelerator(this.options.env).accel;
    const steps: Record<string, number> = {};
    const mark = (name: string) => (steps[name] = Math.round(performance.now() - startedAt));

    // The checksum of a large review snapshot takes a while: compute it while QEMU starts and
    // loads, and let no guest instruction run before it matched. A missing or truncated file
    // starts no QEMU at all.
    const incoming = incomingSnapshot(mode);
    if (incoming) checkSnapshotSize(incoming);
    const verification = incoming
      ? verifySnapshot(incoming).then(
          () => undefined,
          (error: unknown) => asAgentvmError(error, `snapshot of VM ${spec.id}`),
        )
      : Promise.resolve(undefined);
    const verified = async () => {
      const failure = await verification;
      if (failure) throw failure;
    };

    // Prepare the directory, sockets and disk.
    this.prepareDirectories(paths);
    if (mode.kind === 'boot') await this.createOverlay(paths, spec.image.rootfsPath, 'raw');
    else if (mode.kind === 'clone')
      await this.createOverlay(paths, mode.template.diskPath, 'qcow2');
    else if (!fs.existsSync(paths.overlay)) {
      throw new AgentvmError(
        'SNAPSHOT_CORRUPT',
        `disk overlay ${paths.overlay} of the snapshot is missing`,
      );
    }

    mark('disk');

    // Launch QEMU.
    const plan: QemuLaunchPlan = {
      ...this.planFor(spec, paths, accel),
      ...memoryPlan(mode),
      incoming: mode.kind !== 'boot',
    };
    const qemu = QemuProcess.spawn(
      this.options.qemuBinary ?? 'qemu-system-x86_64',
      buildQemuArgs(plan),
      paths.qemuLog,
    );
    mark('spawned');
    const abort = new AbortController();
    void qemu.exited.then(() => abort.abort());
    const step = <T>(what: string, promise: Promise<T>) =>
      raceStart(promise, what, qemu, deadline, paths);

    let qmp: QmpClient | undefined;
    let channel: ControlChannel | undefined;
    try {
      // Monitor, then (for a restore) the incoming migration, then the guest agent's handshake.
      qmp = await step(
        'connecting to QMP',
        QmpClient.connect(paths.qmpSocket, remainingMs(), () => !qemu.isRunning),
      );
      mark('qmp');
      const capabilities = incoming
        ? (incoming.migrationCapabilities ?? [])
        : mode.kind === 'boot' && mode.templateMemory
          ? [IGNORE_SHARED]
          : [];
      if (incoming) {
        await step(
          'loading the snapshot',
          this.loadSnapshot(qmp, incoming, capabilities, deadline),
        );
        mark('loaded');
      }

      // A restored guest was saved with the host end connected. Connecting before `cont` keeps it
      // that way, so the guest agent never sees the port close and the first `hello` is already
      // waiting when its vCPU runs: no reconnect polling on either side.
      const connectOptions = {
        connectTimeoutMs: remainingMs(),
        helloIntervalMs: this.options.helloIntervalMs,
        signal: abort.signal,
        logger: this.logger,
      };
      channel = await step(
        'connecting the control channel',
        ControlChannel.connect(paths.controlSocket, connectOptions),
      );
      mark('control');
      const handshake = channel.handshake(spec.lastSeq ?? 0, remainingMs());
      if (incoming) {
        await step('verifying the snapshot', verified());
        await step('resuming the guest', qmp.execute('cont'));
        mark('cont');
      }

      const ready = await step('waiting for the guest agent', handshake);
      mark('ready');
      this.logger.debug('vm.startup_steps', { vmId: spec.id, mode: mode.kind, steps });

      return new QemuVm({
        ...this.vmOptions(),
        spec,
        paths,
        accel,
        process: qemu,
        qmp,
        channel,
        ready,
        startupMs: Math.round(performance.now() - startedAt),
        startupSteps: steps,
        migrationCapabilities: capabilities,
        namedMemoryBackend: plan.memoryFile !== undefined || plan.namedRam === true,
      });
    } catch (error) {
      channel?.close();
      qemu.kill('SIGKILL');
      await qemu.waitForExit(10_000);
      qmp?.close();
      removeSockets(paths);
      // A corrupt snapshot often makes QEMU fail first; the checksum says why.
      throw (await verification) ?? asAgentvmError(error, `VM ${spec.id} did not start`);
    }
  }

  private async adopt(spec: VmSpec, pid: number): Promise<QemuVm> {
    const startedAt = performance.now();
    const paths = vmPaths(spec.vmDir);
    const args = processArgs(pid);
    if (!isProcessAlive(pid) || !args) {
      throw new AgentvmError('VM_FAILED', `VM ${spec.id}: process ${pid} is not running`);
    }

    const isOurs =
      path.basename(args[0] ?? '').startsWith('qemu-system') && args.includes(paths.pidFile);
    if (!isOurs) {
      throw new AgentvmError(
        'VM_FAILED',
        `VM ${spec.id}: process ${pid} is not the QEMU of ${paths.vmDir}`,
      );
    }

    const accelIndex = args.indexOf('-accel');
    const accel: Accelerator = args[accelIndex + 1] === 'kvm' ? 'kvm' : 'tcg';
    const qemu = QemuProcess.adopt(pid);
    let qmp: QmpClient | undefined;
    let channel: ControlChannel | undefined;
    try {
      qmp = await QmpClient.connect(paths.qmpSocket, spec.bootTimeoutMs);
      // A paused guest cannot answer hello: run it for the handshake, then pause it again.
      const status = await qmp.execute<{ status: string }>('query-status');
      const wasPaused = status.status !== 'running';
      if (wasPaused) await qmp.execute('cont');

      channel = await ControlChannel.connect(paths.controlSocket, { logger: this.logger });
      const ready = await channel.handshake(spec.lastSeq ?? 0, spec.bootTimeoutMs);
      if (wasPaused) await qmp.execute('stop');

      // The QEMU keeps the capabilities and RAM naming it was started with (a clone has both); a
      // snapshot taken after attaching must record them, or its restore cannot load it.
      const capabilities = await qmp.execute<{ capability: string; state: boolean }[]>(
        'query-migrate-capabilities',
      );
      return new QemuVm({
        ...this.vmOptions(),
        spec,
        paths,
        accel,
        process: qemu,
        qmp,
        channel,
        ready,
        startupMs: Math.round(performance.now() - startedAt),
        migrationCapabilities: capabilities
          .filter((entry) => entry.state && entry.capability === IGNORE_SHARED)
          .map((entry) => entry.capability),
        namedMemoryBackend: args.some((arg) => arg.includes('memory-backend=mem')),
      });
    } catch (error) {
      channel?.close();
      qmp?.close();
      qemu.stopWatching();
      throw asAgentvmError(error, `cannot attach to VM ${spec.id} (process ${pid}, left running)`);
    }
  }

  private async loadSnapshot(
    qmp: QmpClient,
    snapshot: SnapshotInfo,
    capabilities: string[],
    deadline: number,
  ): Promise<void> {
    if (capabilities.length > 0) {
      const list = capabilities.map((capability) => ({ capability, state: true }));
      await qmp.execute('migrate-set-capabilities', { capabilities: list });
    }

    // Reading through `cat` is safe (unlike writing): QEMU only stops it after taking all it needs.
    await qmp.execute('migrate-incoming', { uri: `exec:cat ${shellQuote(snapshot.statePath)}` });
    await waitForMigration(qmp, deadline);
  }

  private prepareDirectories(paths: VmPaths): void {
    // Starting over a live VM would unlink its sockets and orphan it.
    const runningPid = Number(readIfExists(paths.pidFile));
    if (
      runningPid > 0 &&
      isProcessAlive(runningPid) &&
      processArgs(runningPid)?.includes(paths.pidFile)
    ) {
      throw new AgentvmError(
        'INVALID_STATE',
        `a QEMU (pid ${runningPid}) still runs for ${paths.vmDir}; stop it or attach to it`,
      );
    }

    fs.mkdirSync(paths.vmDir, { recursive: true });
    fs.mkdirSync(paths.socketDir, { recursive: true, mode: 0o700 });
    for (const stale of [
      paths.qmpSocket,
      paths.controlSocket,
      paths.migrationSocket,
      paths.pidFile,
    ]) {
      fs.rmSync(stale, { force: true });
    }
  }

  /** A fresh qcow2 overlay on `backingPath`: the image's rootfs, or a template's frozen disk. */
  private async createOverlay(
    paths: VmPaths,
    backingPath: string,
    backingFormat: 'raw' | 'qcow2',
  ): Promise<void> {
    if (!fs.existsSync(backingPath)) {
      const code = backingFormat === 'raw' ? 'IMAGE_MISSING' : 'VM_FAILED';
      throw new AgentvmError(code, `backing disk ${backingPath} does not exist`);
    }

    fs.rmSync(paths.overlay, { force: true });
    const qemuImg = this.options.qemuImgBinary ?? 'qemu-img';
    const args = [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-F',
      backingFormat,
      '-b',
      backingPath,
      paths.overlay,
    ];
    try {
      await execFileAsync(qemuImg, args);
    } catch (error) {
      throw new AgentvmError(
        'VM_FAILED',
        `qemu-img could not create ${paths.overlay}: ${(error as Error).message}`,
      );
    }
  }

  private planFor(spec: VmSpec, paths: VmPaths, accel: Accelerator): QemuLaunchPlan {
    const tscKhz = accel === 'tcg' ? hostTscKhz() : undefined;
    return {
      id: spec.id,
      paths,
      image: spec.image,
      accel,
      memoryMiB: spec.memoryMiB,
      vcpus: spec.vcpus,
      kernelArgs: tscKhz ? [`tsc_early_khz=${tscKhz}`] : [],
      // The guest-side proxy address is the egress policy's constant; only the host port varies.
      networkArgs: spec.egress ? egressNetdevArgs(spec.egress.hostPort) : [],
    };
  }

  private vmOptions() {
    return {
      logger: this.logger,
      stopGraceMs: this.options.stopGraceMs ?? 3_000,
      migrationTimeoutMs: this.options.migrationTimeoutMs ?? 120_000,
    };
  }
}

/** The snapshot a start loads: a review snapshot, a template's device state, or none. */
function incomingSnapshot(mode: StartMode): SnapshotInfo | undefined {
  if (mode.kind === 'restore') return mode.snapshot;
  if (mode.kind === 'clone') return mode.template.snapshot;
  return undefined;
}

/**
 * How guest RAM is backed. A template shares its file so clones can map it; a clone maps it
 * privately, so its writes stay its own; a clone's review snapshot holds all of its RAM (private
 * RAM is not "shared", so `x-ignore-shared` skips none of it) and restores into anonymous RAM that
 * carries the same backend name.
 */
function memoryPlan(mode: StartMode): Pick<QemuLaunchPlan, 'memoryFile' | 'namedRam'> {
  if (mode.kind === 'boot' && mode.templateMemory) {
    return { memoryFile: { path: mode.templateMemory, share: true } };
  }
  if (mode.kind === 'clone')
    return { memoryFile: { path: mode.template.memoryPath, share: false } };
  if (mode.kind === 'restore' && mode.snapshot.namedMemoryBackend) return { namedRam: true };
  return {};
}

function asAgentvmError(error: unknown, context: string): AgentvmError {
  if (error instanceof AgentvmError) return error;

  return new AgentvmError('VM_FAILED', `${context}: ${(error as Error).message}`);
}

function readIfExists(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
