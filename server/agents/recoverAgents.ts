import fs from 'node:fs';
import path from 'node:path';
import { agentConsolePath, agentDir, agentsDir } from '../config/paths';
import type { AgentRecord } from '../store/Store';
import { consoleTail } from '../vmm/qemu/consoleTail';
import { readSnapshotSidecar, verifySnapshot } from '../vmm/qemu/snapshotFile';
import type { AgentContext } from './AgentContext';
import { endWithResult } from './agentResult';
import { agentVmSpec } from './agentVmSpec';
import { runTimes } from './runTimes';
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
        // One that was attached is charged as its exit is seen (LiveVms.ended).
        if (!parts.vms.has(record.id)) chargeEndedRun(context, record.id);
        context.journal.fail(
          record.id,
          `could not recover after a broker restart: ${error.message}${stopped ? '; its VM was stopped' : ''}`,
        );
      });
  }
  await removeOrphanAgentDirs(context);
}

/**
 * Removes agent directories that no stored agent owns. A removal deletes the agent's row before
 * its files, and a delegation writes its files before the row: a broker killed in between leaves
 * a directory (a repository bundle, a disk overlay, a snapshot of up to hundreds of MiB) that no
 * command can reach and that keeps its template from being cleaned up. Nothing else writes there,
 * and this runs before the broker accepts requests.
 */
async function removeOrphanAgentDirs(context: AgentContext): Promise<void> {
  const { options, store, log } = context;
  const root = agentsDir(options.dataDir);
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(root, { withFileTypes: true });
  } catch {
    return;
  }

  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith('.') || store.getAgent(entry.name)) continue;

    const dir = path.join(root, entry.name);
    try {
      const stopped = await options.driver.stopLeftover?.(dir).catch(() => false);
      fs.rmSync(dir, { recursive: true, force: true });
      log.warn('agent.orphan_dir_removed', { dir, vmStopped: stopped === true });
    } catch (error) {
      // Left for the next start; not a reason to refuse this one.
      log.warn('agent.orphan_dir_kept', { dir, error: (error as Error).message });
    }
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

  if (record.result) {
    // The guest's result was stored (with its files) but the broker stopped before it ended the
    // agent; the guest, told the result arrived, will not send it again. The VM's work is over.
    if (alive) process.kill(record.vmPid!, 'SIGKILL');
    await stopUnrecordedVm(context, record);
    chargeEndedRun(context, record.id);
    journal.append(record.id, {
      kind: 'info',
      message:
        'the result was stored before the broker stopped; its VM was ended after the restart',
    });
    context.store.updateAgent(record.id, { vmPid: null });
    endWithResult(journal, record.id);
    return;
  }

  if (record.state === 'starting') {
    // Booting is idempotent: throw the half-booted VM away and start again.
    if (alive) process.kill(record.vmPid!, 'SIGKILL');
    const stopped = await stopUnrecordedVm(context, record);
    journal.transition(record.id, 'queued', {
      vmPid: null,
      stateReason: `requeued after a broker restart${stopped}`,
    });
    return;
  }

  if (record.state === 'pausing' && record.snapshot && fs.existsSync(record.snapshot.statePath)) {
    if (alive) process.kill(record.vmPid!, 'SIGKILL');
    journal.transition(record.id, 'awaiting_review', { vmPid: null });
    return;
  }

  if (record.state === 'restoring' && !alive && record.snapshot) {
    // The snapshot is used again by the next review, so the QEMU loading it must not stay.
    const stopped = await stopUnrecordedVm(context, record);
    journal.transition(record.id, 'awaiting_review', {
      vmPid: null,
      stateReason: `restore interrupted by a broker restart${stopped}`,
    });
    return;
  }

  if (record.state === 'pausing' && !alive && !record.snapshot) {
    chargeEndedRun(context, record.id);
    await recoverUnrecordedSnapshot(context, record);
    return;
  }

  if (!alive) {
    chargeEndedRun(context, record.id);
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
  const times = runTimes(context.store, record.id);
  // The VM ran while no broker watched: its run is charged from when it began (see LiveVms).
  parts.vms.attach(record.id, vm, times.vmSince ?? Date.now());
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
    parts.limits.arm(record.id, times.runningSince ?? Date.now());
  }
}

/**
 * Charges the VM-seconds of a run whose VM ended (or was ended by recovery) while no broker
 * watched it: nothing recorded when it ended, and a VM that is gone cannot say. Its newest
 * timeline entry (a guest event, or the last broker's last word while it ran) is the latest moment
 * it is known to have run, so the run is charged from when it began up to there: a lower bound,
 * never more than it ran. A record with no VM pid has no such run: whoever ended its last VM
 * charged it (LiveVms.ended) and cleared the pid.
 */
function chargeEndedRun(context: AgentContext, id: string): void {
  const record = context.store.getAgent(id);
  if (!record || record.vmPid === null) return;

  const { vmSince, newestAt } = runTimes(context.store, id);
  const seconds = vmSince === undefined ? 0 : Math.max(0, (newestAt ?? vmSince) - vmSince) / 1000;
  context.store.updateAgent(id, { vmSeconds: record.vmSeconds + seconds, vmPid: null });
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

/**
 * A start or restore records the VM's pid only once the guest answered: a broker killed before
 * that leaves a QEMU that no record names, which would keep running and make the next start or
 * restore of this agent refuse (a QEMU still runs for its directory). The driver finds it by the
 * pid file in the agent's directory. Returns a clause for the state reason, empty when none ran.
 */
async function stopUnrecordedVm(context: AgentContext, record: AgentRecord): Promise<string> {
  const { options } = context;
  const stopped = await options.driver.stopLeftover?.(agentDir(record.id, options.dataDir));
  return stopped ? '; the VM it had launched was stopped' : '';
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
