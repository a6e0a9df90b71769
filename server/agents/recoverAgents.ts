import fs from 'node:fs';
import path from 'node:path';
import { agentConsolePath, agentDir } from '../config/paths';
import type { AgentRecord } from '../store/Store';
import { consoleTail } from '../vmm/qemu/consoleTail';
import { readSnapshotSidecar, verifySnapshot } from '../vmm/qemu/snapshotFile';
import type { AgentContext } from './AgentContext';
import { agentVmSpec } from './agentVmSpec';
import type { LiveVms } from './LiveVms';
import type { ReviewSnapshots } from './ReviewSnapshots';
import type { TimeLimits } from './TimeLimits';

/** The life-cycle parts recovery hands agents back to. */
export interface RecoveryParts {
  vms: LiveVms;
  limits: TimeLimits;
  reviews: ReviewSnapshots;
}

/**
 * Puts every unfinished agent back where it was after a broker restart: live VMs are reattached,
 * VMs that died are failed with the reason, a half-written snapshot is never trusted. An agent
 * that cannot be recovered fails; the others go on.
 */
export async function recoverAgents(context: AgentContext, parts: RecoveryParts): Promise<void> {
  const unfinished = context.store.agentsInStates([
    'starting',
    'running',
    'pausing',
    'restoring',
    'reviewing',
    'awaiting_review',
  ]);
  for (const record of unfinished) {
    await context.locks
      .run(record.id, () => recoverAgent(context, parts, record))
      .catch(async (error: Error) => {
        // The data directory is this broker's alone, so a VM it could not take over is nobody's.
        const stopped = await context.options.driver
          .stopLeftover?.(agentDir(record.id, context.options.dataDir))
          .catch(() => false);
        context.journal.fail(
          record.id,
          `could not recover after a broker restart: ${error.message}${stopped ? '; its VM was stopped' : ''}`,
        );
      });
  }
}

async function recoverAgent(
  context: AgentContext,
  parts: RecoveryParts,
  record: AgentRecord,
): Promise<void> {
  const { journal, options } = context;
  const alive = record.vmPid !== null && processAlive(record.vmPid);
  if (record.state === 'awaiting_review') {
    if (!record.snapshot || !fs.existsSync(record.snapshot.statePath)) {
      journal.fail(record.id, 'its snapshot is missing; the paused work cannot be restored');
    }
    return;
  }

  if (record.state === 'starting') {
    // Booting is idempotent: throw the half-booted VM away and start again.
    if (alive) process.kill(record.vmPid!, 'SIGKILL');
    journal.transition(record.id, 'queued', {
      vmPid: null,
      stateReason: 'requeued after a broker restart',
    });
    return;
  }

  if (record.state === 'pausing' && record.snapshot && fs.existsSync(record.snapshot.statePath)) {
    if (alive) process.kill(record.vmPid!, 'SIGKILL');
    journal.transition(record.id, 'awaiting_review', { vmPid: null });
    return;
  }

  if (record.state === 'restoring' && !alive && record.snapshot) {
    journal.transition(record.id, 'awaiting_review', {
      vmPid: null,
      stateReason: 'restore interrupted by a broker restart',
    });
    return;
  }

  if (record.state === 'pausing' && !alive && !record.snapshot) {
    await recoverUnrecordedSnapshot(context, record);
    return;
  }

  if (!alive) {
    // As for a VM that dies while the broker watches: its last words are in the console file.
    const tail = consoleTail(agentConsolePath(record.id, options.dataDir), 10);
    journal.fail(
      record.id,
      `its VM (pid ${record.vmPid ?? 'unknown'}) ended while the broker was down${tail.length > 0 ? `; last console lines:\n${tail.join('\n')}` : ''}`,
    );
    return;
  }

  await options.policy?.prepare(record);
  const vm = await options.driver.attach(
    agentVmSpec(options, record, options.loadImage()),
    record.vmPid!,
  );
  parts.vms.attach(record.id, vm);
  journal.append(record.id, {
    kind: 'info',
    message: `reattached to VM pid ${vm.pid} after a broker restart`,
  });
  // The reattach said hello, so the guest stops stamping events with its own time until a sync;
  // a guest that runs gets one (a paused one gets its own after the snapshot or restore).
  if (record.state === 'running' || record.state === 'reviewing') parts.vms.sync(vm);
  if (record.state === 'pausing') {
    // The snapshot was not finished: the VM is still whole, so take it again.
    await parts.reviews.pause(
      record.id,
      record.review?.requestId ?? '',
      record.review?.message ?? '',
    );
  } else if (record.state === 'restoring') {
    await vm.resume();
    journal.transition(record.id, 'reviewing', {});
  } else if (record.state === 'running') {
    parts.limits.arm(record.id);
  }
}

/**
 * The broker died after the snapshot was named but before the store recorded it, and the VM is
 * gone: the sidecar written before the rename says what the file must be.
 */
async function recoverUnrecordedSnapshot(
  context: AgentContext,
  record: AgentRecord,
): Promise<void> {
  const { journal, options } = context;
  const vmDir = agentDir(record.id, options.dataDir);
  const ended = `its VM (pid ${record.vmPid ?? 'unknown'}) ended while the broker was down`;
  let reason: string;
  try {
    const snapshot = readSnapshotSidecar(vmDir);
    if (!snapshot || !fs.existsSync(path.join(vmDir, 'snapshot.state'))) {
      journal.fail(record.id, `${ended}, before its snapshot was complete`);
      return;
    }

    // A sidecar naming another file is not this agent's snapshot.
    if (path.resolve(snapshot.statePath) !== path.resolve(vmDir, 'snapshot.state')) {
      throw new Error(`snapshot.json names ${snapshot.statePath}`);
    }

    await verifySnapshot(snapshot);
    journal.append(record.id, {
      kind: 'info',
      message: 'recovered the snapshot written before the broker stopped (size and checksum match)',
      data: { sizeBytes: snapshot.sizeBytes },
    });
    journal.transition(record.id, 'awaiting_review', { snapshot, vmPid: null });
    return;
  } catch (error) {
    reason = (error as Error).message;
  }

  journal.fail(record.id, `${ended}; its snapshot cannot be used: ${reason}`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
