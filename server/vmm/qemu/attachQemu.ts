import path from 'node:path';
import { AgentvmError } from '../../../protocol/errors';
import { ControlChannel } from '../ControlChannel';
import type { Accelerator, VmSpec } from '../VmmDriver';
import { asAgentvmError } from './asAgentvmError';
import { memoryLayout } from './buildQemuArgs';
import type { QemuDriverContext } from './QemuDriver';
import { isProcessAlive } from '../pidLock';
import { processArgs, QemuProcess } from './QemuProcess';
import { connectedQemuVm, qemuVmMemory, type QemuVm } from './QemuVm';
import { QmpClient } from './QmpClient';
import { IGNORE_SHARED } from './StartMode';
import { vmPaths } from './vmPaths';

/**
 * Take over a QEMU that a previous broker started (see {@link QemuDriver.attach}): check the pid
 * is this VM's QEMU, reconnect QMP and the control channel, and recover how it was started.
 */
export async function attachQemu(
  context: QemuDriverContext,
  spec: VmSpec,
  pid: number,
): Promise<QemuVm> {
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

    channel = await ControlChannel.connect(paths.controlSocket, { logger: context.logger });
    const ready = await channel.handshake(spec.lastSeq ?? 0, spec.bootTimeoutMs);
    if (wasPaused) await qmp.execute('stop');

    // The QEMU keeps the capabilities and RAM naming it was started with (a clone has both); a
    // snapshot taken after attaching must record them, or its restore cannot load it.
    const capabilities = await qmp.execute<{ capability: string; state: boolean }[]>(
      'query-migrate-capabilities',
    );
    const connected = { spec, paths, accel, process: qemu, qmp, channel, ready };
    return connectedQemuVm(context.vmOptions, startedAt, connected, {
      migrationCapabilities: capabilities
        .filter((entry) => entry.state && entry.capability === IGNORE_SHARED)
        .map((entry) => entry.capability),
      ...qemuVmMemory(memoryLayout(args)),
    });
  } catch (error) {
    channel?.close();
    qmp?.close();
    qemu.stopWatching();
    throw asAgentvmError(error, `cannot attach to VM ${spec.id} (process ${pid}, left running)`);
  }
}
