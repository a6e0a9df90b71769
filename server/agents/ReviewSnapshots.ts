import { AgentvmError } from '../../protocol/errors';
import type { Agent } from '../../protocol/api';
import { publicAgent, type AgentRecord } from '../store/Store';
import { removeSnapshotFiles } from '../vmm/qemu/snapshotFile';
import { writtenMemoryBytes } from '../vmm/qemu/SparseMemoryFile';
import type { Vm } from '../vmm/VmmDriver';
import { describeError, type AgentContext } from './AgentContext';
import { agentVmSpec } from './agentVmSpec';
import type { LiveVms } from './LiveVms';
import type { TimeLimits } from './TimeLimits';

/**
 * How an agent waits for review without holding RAM: its VM is snapshotted and ended
 * (running → pausing → awaiting_review), and restored from the snapshot when a reviewer opens it
 * (awaiting_review → restoring → reviewing); the reviewer's answer lets it run on (→ running).
 * A snapshot is used once, then deleted.
 */
export class ReviewSnapshots {
  constructor(
    private readonly context: AgentContext,
    private readonly vms: LiveVms,
    private readonly limits: TimeLimits,
  ) {}

  /** Restores the paused agent's snapshot so a reviewer can browse and edit its workspace. */
  open(id: string): Promise<Agent> {
    const { journal, store, locks } = this.context;
    return locks.run(id, async () => {
      const record = journal.record(id);
      if (record.state === 'reviewing') return publicAgent(record);

      journal.requireState(record, ['awaiting_review'], 'open for review');
      // A restore writes a new disk overlay and a VM's worth of state: not on a full disk.
      store.requireWritable();
      await this.restore(record);
      return publicAgent(journal.record(id));
    });
  }

  /** Delivers the reviewer's answer; restores first when the agent is still awaiting review. */
  resume(id: string, message: string): Promise<Agent> {
    const { journal, store, locks } = this.context;
    return locks.run(id, async () => {
      let record = journal.record(id);
      journal.requireState(record, ['awaiting_review', 'reviewing'], 'resume');
      store.requireWritable();
      if (record.state === 'awaiting_review') {
        await this.restore(record);
        record = journal.record(id);
      }

      const live = this.vms.require(id);
      if (record.review?.requestId) {
        live.vm.channel.send({
          type: 'review-answer',
          requestId: record.review.requestId,
          message,
        });
      }

      journal.append(id, {
        kind: 'answer',
        message: message || '(resumed without a message)',
        data: { requestId: record.review?.requestId ?? null },
      });
      journal.transition(id, 'running', { review: null, stateReason: null });
      this.limits.arm(id);
      // A review asked while this one was open is asked now (after this call lets go of the lock).
      const next = this.unansweredRequest(id);
      if (next) void locks.run(id, () => this.pause(id, next.requestId, next.message));
      return publicAgent(journal.record(id));
    });
  }

  /**
   * Stores a guest's review request where a broker restart finds it, in the transaction that
   * stores the guest's event (before the guest is told it arrived): a running agent goes
   * `pausing` with the request (recovery takes the snapshot when the broker stops first); while
   * another review is open or being taken, the request waits its turn (see `unansweredRequest`).
   * Returns true when the agent is to be paused for it ({@link pause}, under the agent's lock).
   */
  request(id: string, requestId: string, message: string): boolean {
    const record = this.context.journal.record(id);
    if (record.state === 'running') {
      this.startPausing(id, requestId, message);
      return true;
    }

    if (['pausing', 'restoring', 'reviewing', 'awaiting_review'].includes(record.state)) {
      this.queue(id, requestId);
    }
    return false;
  }

  /**
   * Snapshot the VM (memory, devices; the disk overlay stays in place) and end its process. An
   * agent already `pausing` is paused for the request stored with it (see {@link request}).
   */
  async pause(id: string, requestId: string, message: string): Promise<void> {
    const { journal, store, log } = this.context;
    const record = journal.record(id);
    if (['restoring', 'reviewing', 'awaiting_review'].includes(record.state)) {
      // This very request is the one open (a limit's pause took the snapshot for it first).
      if (requestId !== '' && record.review?.requestId === requestId) return;

      this.queue(id, requestId);
      return;
    }
    if (!['running', 'pausing'].includes(record.state)) return;

    const live = this.vms.require(id);
    this.limits.clear(id);
    if (record.state === 'running') this.startPausing(id, requestId, message);
    else store.updateAgent(id, { snapshot: null });
    live.expectedExit = true;
    try {
      const snapshot = await log.timed('vm.snapshot', { agentId: id }, () => live.vm.snapshot());
      this.vms.ended(id);
      // Guest RAM may be in its own file beside the device state (a snapshot of a VM restored from
      // an older agentvm's snapshot), or only its changes inside it (a clone's).
      const memoryBytes = writtenMemoryBytes(snapshot.memory);
      const totalBytes = snapshot.sizeBytes + memoryBytes;
      const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
      const parts =
        memoryBytes > 0
          ? `: ${mib(memoryBytes)} MiB of memory pages`
          : snapshot.memoryBase
            ? ': the memory pages that differ from its template'
            : '';
      store.updateAgent(id, { snapshot, vmPid: null });
      journal.append(id, {
        kind: 'info',
        message: `snapshot written (${mib(totalBytes)} MiB in ${snapshot.durationMs} ms${parts}); VM stopped while it waits`,
        data: { durationMs: snapshot.durationMs, sizeBytes: totalBytes, memoryBytes },
      });
      journal.transition(id, 'awaiting_review', {});
    } catch (error) {
      // The driver leaves the VM paused and alive when the snapshot fails: keep it for review.
      live.expectedExit = false;
      await live.vm.resume().catch(() => undefined);
      journal.transition(id, 'reviewing', {
        stateReason: `snapshot failed (${describeError(error)}); the VM stays running for review`,
      });
    }
  }

  /** Bring the agent's VM back from its snapshot, for review; the snapshot is then deleted. */
  async restore(record: AgentRecord): Promise<void> {
    const { journal, store, log, options } = this.context;
    if (!record.snapshot)
      throw new AgentvmError('SNAPSHOT_CORRUPT', `agent ${record.id} has no snapshot`);

    journal.transition(record.id, 'restoring', {});
    let vm: Vm;
    try {
      await options.policy?.prepare(record);
      const spec = agentVmSpec(options, record, options.loadImage());
      vm = await log.timed('vm.restore', { agentId: record.id }, () =>
        options.driver.restore(spec, record.snapshot!),
      );
    } catch (error) {
      if (error instanceof AgentvmError && error.code === 'SNAPSHOT_CORRUPT') {
        journal.fail(record.id, error.message);
      } else {
        journal.transition(record.id, 'awaiting_review', {
          stateReason: `restore failed: ${describeError(error)}`,
        });
      }
      throw error;
    }

    store.updateAgent(record.id, { vmPid: vm.pid, accel: vm.accel });
    this.vms.attach(record.id, vm);
    this.vms.sync(vm);
    // Once the restored VM runs, its disk moves on: the old memory image must never be used again.
    this.discard(record);
    store.updateAgent(record.id, { snapshot: null });
    journal.append(record.id, {
      kind: 'info',
      message: `VM restored from its snapshot (pid ${vm.pid})`,
    });
    journal.transition(record.id, 'reviewing', { stateReason: null });
  }

  /**
   * The oldest review that was asked while another was open (see `pause`) and has no answer yet,
   * from the agent's timeline.
   */
  unansweredRequest(id: string): { requestId: string; message: string } | undefined {
    const { store } = this.context;
    const questions = new Map<string, string>();
    const queued: string[] = [];
    const answered = new Set<string>();
    let afterId = 0;
    // Bounded: 100 pages of 10 000 events.
    for (let page = 0; page < 100; page++) {
      const events = store.events(id, afterId);
      for (const event of events) {
        const requestId = event.data?.requestId;
        if (typeof requestId !== 'string') continue;
        if (event.kind === 'review') questions.set(requestId, event.message);
        if (event.kind === 'info' && event.data?.queuedReview === true) queued.push(requestId);
        if (event.kind === 'answer') answered.add(requestId);
      }
      if (events.length === 0) break;
      afterId = events[events.length - 1]!.id;
    }
    const next = queued.find((requestId) => !answered.has(requestId));
    return next === undefined ? undefined : { requestId: next, message: questions.get(next) ?? '' };
  }

  private startPausing(id: string, requestId: string, message: string): void {
    // A snapshot still on record belongs to an earlier pause: the VM has run since, so recovery
    // must never mistake it for the one being written now.
    this.context.journal.transition(id, 'pausing', {
      review: { requestId, message, requestedAt: Date.now() },
      snapshot: null,
    });
  }

  /**
   * One review at a time: this one waits (the agent stays blocked in `agentctl review`) and the
   * broker pauses for it once the open one is answered (see `unansweredRequest`).
   */
  private queue(id: string, requestId: string): void {
    this.context.journal.append(id, {
      kind: 'info',
      message: `review requested while another is open: it is asked once that one is answered`,
      data: { requestId, queuedReview: true },
    });
  }

  /** Deletes the agent's snapshot file and its sidecar, if it has one. */
  discard(record: AgentRecord): void {
    if (record.snapshot) removeSnapshotFiles(record.snapshot.statePath);
  }
}
