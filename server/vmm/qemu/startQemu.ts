import fs from 'node:fs';
import { AgentvmError } from '../../../protocol/errors';
import { egressNetdevArgs } from '../../policy/egress/guestEgress';
import { detectAccelerator } from '../accelerator';
import { ControlChannel } from '../ControlChannel';
import type { Accelerator, VmSpec } from '../VmmDriver';
import { asAgentvmError } from './asAgentvmError';
import { buildQemuArgs, memoryLayout, type QemuLaunchPlan } from './buildQemuArgs';
import { hostTscKhz } from './hostTscKhz';
import { loadSnapshot } from './loadSnapshot';
import { warmInBackground } from './SparseMemoryFile';
import { createOverlay, prepareVmDirectory } from './prepareVmDirectory';
import type { QemuDriverContext } from './QemuDriver';
import { QemuProcess } from './QemuProcess';
import { connectedQemuVm, qemuVmMemory, type QemuVm } from './QemuVm';
import { QmpClient } from './QmpClient';
import { abortReason, raceStart } from './raceStart';
import { checkSnapshotSize, verifySnapshot } from './snapshotFile';
import { incomingSnapshot, memoryPlan, migrationCapabilities, type StartMode } from './StartMode';
import { removeSockets, vmPaths, type VmPaths } from './vmPaths';

/**
 * A QEMU launched for a VM and waiting for its snapshot: the directory and disk are prepared,
 * QEMU runs paused (`-incoming defer` unless it boots), QMP is connected. {@link bringUpQemu}
 * takes it from there; a spare (see SpareQemus.ts) is one of these kept for a clone to come.
 */
export interface LaunchedQemu {
  paths: VmPaths;
  args: string[];
  accel: Accelerator;
  process: QemuProcess;
  qmp: QmpClient;
  /** Settles when the incoming snapshot's checksum was checked: undefined if it matched. */
  verification: Promise<AgentvmError | undefined>;
  /** Milliseconds from the launch's start to the end of each of its steps. */
  steps: Record<string, number>;
}

/**
 * The start path shared by boot, restore, clone and template builds: {@link launchQemu}, then
 * {@link bringUpQemu}. On any failure QEMU is killed and its sockets removed; so it is when
 * `signal` is aborted, which rejects with the signal's reason at the step under way.
 */
export async function startQemu(
  context: QemuDriverContext,
  spec: VmSpec,
  mode: StartMode,
  signal?: AbortSignal,
): Promise<QemuVm> {
  const startedAt = performance.now();
  const deadline = Date.now() + spec.bootTimeoutMs;
  const launched = await launchQemu(context, spec, mode, deadline, signal);
  return bringUpQemu(context, spec, mode, launched, { startedAt, deadline, signal });
}

/**
 * Prepare the disk, launch a detached QEMU and connect QMP. The incoming snapshot's checksum is
 * computed meanwhile ({@link LaunchedQemu.verification}); a missing or truncated snapshot starts
 * no QEMU at all.
 */
export async function launchQemu(
  context: QemuDriverContext,
  spec: VmSpec,
  mode: StartMode,
  deadline: number,
  signal?: AbortSignal,
): Promise<LaunchedQemu> {
  const { options } = context;
  const startedAt = performance.now();
  const remainingMs = () => Math.max(deadline - Date.now(), 1);
  const paths = vmPaths(spec.vmDir);
  const accel = detectAccelerator(options.env).accel;
  const steps: Record<string, number> = {};
  const mark = (name: string) => (steps[name] = Math.round(performance.now() - startedAt));
  if (signal?.aborted) throw abortReason(signal);

  // The checksum of a large review snapshot takes a while: compute it while QEMU starts and
  // loads; no guest instruction runs before it matched (see bringUpQemu).
  const incoming = incomingSnapshot(mode);
  if (incoming) checkSnapshotSize(incoming);
  const verification = incoming
    ? verifySnapshot(incoming).then(
        () => void mark('verified'),
        (error: unknown) => asAgentvmError(error, `snapshot of VM ${spec.id}`),
      )
    : Promise.resolve(undefined);

  // Prepare the directory, sockets and disk.
  prepareVmDirectory(paths);
  if (mode.kind === 'boot')
    await createOverlay(paths, spec.image.rootfsPath, 'raw', options.qemuImgBinary);
  else if (mode.kind === 'clone')
    await createOverlay(paths, mode.template.diskPath, 'qcow2', options.qemuImgBinary);
  else if (!fs.existsSync(paths.overlay)) {
    throw new AgentvmError(
      'SNAPSHOT_CORRUPT',
      `disk overlay ${paths.overlay} of the snapshot is missing`,
    );
  }

  mark('disk');
  // qemu-img cannot be interrupted; a start cancelled meanwhile launches no QEMU.
  if (signal?.aborted) throw abortReason(signal);

  // Launch QEMU.
  const plan: QemuLaunchPlan = {
    ...launchPlan(spec, paths, accel),
    ...memoryPlan(mode),
    incoming: mode.kind !== 'boot',
  };
  const args = buildQemuArgs(plan);
  const stateFd = incoming ? fs.openSync(incoming.statePath, 'r') : undefined;
  let qemu: QemuProcess;
  try {
    const binary = options.qemuBinary ?? 'qemu-system-x86_64';
    qemu = QemuProcess.spawn(binary, args, paths.qemuLog, stateFd);
  } finally {
    // QEMU has its own copy now.
    if (stateFd !== undefined) fs.closeSync(stateFd);
  }
  mark('spawned');

  try {
    const qmp = await raceStart(
      QmpClient.connect(paths.qmpSocket, remainingMs(), () => !qemu.isRunning),
      'connecting to QMP',
      qemu,
      deadline,
      paths,
      signal,
    );
    mark('qmp');
    return { paths, args, accel, process: qemu, qmp, verification, steps };
  } catch (error) {
    await killLaunched({ paths, process: qemu });
    if (signal?.aborted) throw abortReason(signal);

    throw (await verification) ?? asAgentvmError(error, `VM ${spec.id} did not start`);
  }
}

/**
 * Take a {@link LaunchedQemu} to a guest that answered `ready`: load the incoming snapshot if
 * any, connect the control channel, let the guest run once the snapshot's checksum matched, and
 * shake hands. `startedAt` and `deadline` are those of the whole start (a spare's launch ran
 * before it and is not counted).
 */
export async function bringUpQemu(
  context: QemuDriverContext,
  spec: VmSpec,
  mode: StartMode,
  launched: LaunchedQemu,
  start: { startedAt: number; deadline: number; signal?: AbortSignal },
): Promise<QemuVm> {
  const { options, logger } = context;
  const { startedAt, deadline, signal } = start;
  const { paths, process: qemu, qmp, verification } = launched;
  const remainingMs = () => Math.max(deadline - Date.now(), 1);
  const steps = { ...launched.steps };
  const mark = (name: string) => (steps[name] = Math.round(performance.now() - startedAt));
  const exited = new AbortController();
  void qemu.exited.then(() => exited.abort());
  const step = <T>(what: string, promise: Promise<T>) =>
    raceStart(promise, what, qemu, deadline, paths, signal);
  const incoming = incomingSnapshot(mode);
  const verified = async () => {
    const failure = await verification;
    if (failure) throw failure;
  };

  let channel: ControlChannel | undefined;
  try {
    // The incoming migration, then the guest agent's handshake.
    const capabilities = migrationCapabilities(mode);
    if (incoming) {
      await step('loading the snapshot', loadSnapshot(qmp, capabilities, deadline));
      mark('loaded');
    }

    // A restored guest was saved with the host end connected. Connecting before `cont` keeps it
    // that way, so the guest agent never sees the port close and the first `hello` is already
    // waiting when its vCPU runs: no reconnect polling on either side.
    const connectOptions = {
      connectTimeoutMs: remainingMs(),
      helloIntervalMs: options.helloIntervalMs,
      signal: signal ? AbortSignal.any([exited.signal, signal]) : exited.signal,
      logger,
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
    logger.debug('vm.startup_steps', { vmId: spec.id, mode: mode.kind, steps });
    // Opened before the caller unlinks the used snapshot; read while the reviewer looks.
    if (incoming?.memory) await warmInBackground(incoming.memory.path, logger);

    const connected = { spec, paths, accel: launched.accel, process: qemu, qmp, channel, ready };
    return connectedQemuVm(context.vmOptions, startedAt, connected, {
      startupSteps: steps,
      migrationCapabilities: capabilities,
      ...qemuVmMemory(memoryLayout(launched.args)),
    });
  } catch (error) {
    channel?.close();
    await killLaunched(launched);
    if (signal?.aborted) {
      logger.info('vm.start_cancelled', { vmId: spec.id, mode: mode.kind, pid: qemu.pid, steps });
      throw abortReason(signal);
    }

    // A corrupt snapshot often makes QEMU fail first; the checksum says why.
    throw (await verification) ?? asAgentvmError(error, `VM ${spec.id} did not start`);
  }
}

/** End a launched QEMU that will not become a VM, and remove its sockets. */
export async function killLaunched(
  launched: Pick<LaunchedQemu, 'paths' | 'process'> & { qmp?: QmpClient },
): Promise<void> {
  launched.process.kill('SIGKILL');
  await launched.process.waitForExit(10_000);
  launched.qmp?.close();
  removeSockets(launched.paths);
}

export function launchPlan(spec: VmSpec, paths: VmPaths, accel: Accelerator): QemuLaunchPlan {
  const tscKhz = accel === 'tcg' ? hostTscKhz() : undefined;
  return {
    id: spec.id,
    paths,
    image: spec.image,
    accel,
    memoryMiB: spec.memoryMiB,
    vcpus: spec.vcpus,
    kernelArgs: tscKhz ? [`tsc_early_khz=${tscKhz}`] : [],
    // The guest-side proxy address is the egress policy's constant; only the host socket varies.
    networkArgs: spec.egress ? egressNetdevArgs(spec.egress.socketPath) : [],
  };
}
