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
 * The start path shared by boot, restore, clone and template builds: prepare the disk, launch a
 * detached QEMU, connect QMP, load the incoming snapshot if any, connect the control channel and
 * wait for the guest agent's `ready`. On any failure QEMU is killed and its sockets removed; so it
 * is when `signal` is aborted, which rejects with the signal's reason at the step under way.
 */
export async function startQemu(
  context: QemuDriverContext,
  spec: VmSpec,
  mode: StartMode,
  signal?: AbortSignal,
): Promise<QemuVm> {
  const { options, logger } = context;
  const startedAt = performance.now();
  const deadline = Date.now() + spec.bootTimeoutMs;
  const remainingMs = () => Math.max(deadline - Date.now(), 1);
  const paths = vmPaths(spec.vmDir);
  const accel = detectAccelerator(options.env).accel;
  const steps: Record<string, number> = {};
  const mark = (name: string) => (steps[name] = Math.round(performance.now() - startedAt));
  if (signal?.aborted) throw abortReason(signal);

  // The checksum of a large review snapshot takes a while: compute it while QEMU starts and
  // loads, and let no guest instruction run before it matched. A missing or truncated file
  // starts no QEMU at all.
  const incoming = incomingSnapshot(mode);
  if (incoming) checkSnapshotSize(incoming);
  const verification = incoming
    ? verifySnapshot(incoming).then(
        () => void mark('verified'),
        (error: unknown) => asAgentvmError(error, `snapshot of VM ${spec.id}`),
      )
    : Promise.resolve(undefined);
  const verified = async () => {
    const failure = await verification;
    if (failure) throw failure;
  };

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
  const exited = new AbortController();
  void qemu.exited.then(() => exited.abort());
  const step = <T>(what: string, promise: Promise<T>) =>
    raceStart(promise, what, qemu, deadline, paths, signal);

  let qmp: QmpClient | undefined;
  let channel: ControlChannel | undefined;
  try {
    // Monitor, then (for a restore) the incoming migration, then the guest agent's handshake.
    qmp = await step(
      'connecting to QMP',
      QmpClient.connect(paths.qmpSocket, remainingMs(), () => !qemu.isRunning),
    );
    mark('qmp');
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

    const connected = { spec, paths, accel, process: qemu, qmp, channel, ready };
    return connectedQemuVm(context.vmOptions, startedAt, connected, {
      startupSteps: steps,
      migrationCapabilities: capabilities,
      ...qemuVmMemory(memoryLayout(args)),
    });
  } catch (error) {
    channel?.close();
    qemu.kill('SIGKILL');
    await qemu.waitForExit(10_000);
    qmp?.close();
    removeSockets(paths);
    if (signal?.aborted) {
      logger.info('vm.start_cancelled', { vmId: spec.id, mode: mode.kind, pid: qemu.pid, steps });
      throw abortReason(signal);
    }

    // A corrupt snapshot often makes QEMU fail first; the checksum says why.
    throw (await verification) ?? asAgentvmError(error, `VM ${spec.id} did not start`);
  }
}

function launchPlan(spec: VmSpec, paths: VmPaths, accel: Accelerator): QemuLaunchPlan {
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
