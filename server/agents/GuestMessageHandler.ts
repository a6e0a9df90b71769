import fs from 'node:fs';
import type { GuestEvent, GuestMessage } from '../../protocol/control';
import type { AgentRecord } from '../store/Store';
import type { AgentContext } from './AgentContext';
import { capGuestEvent } from './capGuestEvent';
import { appendOutput, timelineEntry } from './guestEvents';
import type { LiveVms } from './LiveVms';
import { ProgressThrottle } from './ProgressThrottle';
import type { ReviewSnapshots } from './ReviewSnapshots';

/**
 * What the broker does with messages from an agent's guest: logs, clock-sync reports, and the
 * sequenced events, each stored once (a replay after a restore is acknowledged and dropped), then
 * acted on: a review request pauses the agent, a result finishes it.
 */
export class GuestMessageHandler {
  /** Coalesces progress floods (see {@link ProgressThrottle}); held messages are stored later. */
  private readonly progress = new ProgressThrottle({
    flush: (agentId, message, dropped) => this.storeHeldProgress(agentId, message, dropped),
  });

  constructor(
    private readonly context: AgentContext,
    private readonly vms: LiveVms,
    private readonly reviews: ReviewSnapshots,
    private readonly resultFiles: (agentId: string) => { bundle: string; patch: string },
  ) {}

  handle(id: string, message: GuestMessage): void {
    const { journal, store, locks, log } = this.context;
    if (message.type === 'log') {
      log.debug('guest.log', { agentId: id, level: message.level, message: message.message });
      return;
    }

    if (message.type === 'synced') {
      journal.append(id, {
        kind: 'info',
        message: `guest clock synced (corrected ${Math.round(message.clockSkewMs)} ms)`,
      });
      return;
    }

    if (message.type !== 'event') return;

    const capped = capGuestEvent(message.event);
    // A result carries the agent's commits; rewriting them would corrupt the bundle.
    const event = capped.kind === 'result' ? capped : journal.redact(id, capped);
    const accepted = store.transaction(() => {
      const record = journal.record(id);
      if (message.seq <= record.guestSeq) return false;

      this.persist(record, message.seq, event);
      return true;
    });
    this.vms.get(id)?.vm.channel.send({ type: 'ack', seq: message.seq });
    if (!accepted) return;

    journal.publish(id);
    if (event.kind === 'review') {
      void locks.run(id, () => this.reviews.pause(id, event.requestId, event.message));
    } else if (event.kind === 'result') {
      void locks.run(id, () => this.finish(id, event));
    }
  }

  /** Stores held progress now and forgets every agent's window (broker shutdown). */
  flushProgress(): void {
    this.progress.flushAll();
  }

  private persist(record: AgentRecord, seq: number, event: GuestEvent): void {
    if (event.kind === 'progress' && !this.progress.offer(record.id, event.message)) {
      // Held for the end of the window; the seq is still taken, so a replay cannot store it twice.
      this.context.store.updateAgent(record.id, { guestSeq: seq });
      return;
    }

    const changes: Partial<AgentRecord> = { guestSeq: seq };
    if (event.kind === 'output') changes.lastOutput = appendOutput(record.lastOutput, event.text);
    if (event.kind === 'progress') changes.lastProgress = event.message;
    if (event.kind === 'exit') changes.exitCode = event.code;
    this.context.store.updateAgent(record.id, changes);
    this.context.journal.append(record.id, timelineEntry(event));
  }

  private storeHeldProgress(agentId: string, message: string, dropped: number): void {
    const { journal, store, log } = this.context;
    try {
      if (!store.getAgent(agentId)) return;

      store.updateAgent(agentId, { lastProgress: message });
      journal.append(agentId, {
        kind: 'progress',
        message,
        data: dropped > 0 ? { coalesced: dropped } : undefined,
      });
      journal.publish(agentId);
      if (dropped > 0) log.info('agent.progress_coalesced', { agentId, dropped });
    } catch (error) {
      // The store may be closing; a held progress line is not worth failing shutdown over.
      log.warn('agent.progress_flush_failed', { agentId, error });
    }
  }

  private async finish(id: string, result: Extract<GuestEvent, { kind: 'result' }>): Promise<void> {
    const { journal, store } = this.context;
    const files = this.resultFiles(id);
    fs.writeFileSync(files.bundle, Buffer.from(result.bundle, 'base64'));
    fs.writeFileSync(files.patch, result.patch);
    await this.vms.stop(id);

    const record = journal.record(id);
    const summary = {
      headCommit: result.headCommit,
      commits: result.commits,
      exitCode: record.exitCode,
    };
    store.updateAgent(id, { result: summary, vmPid: null });
    if (record.exitCode === 0) {
      journal.transition(id, 'done', { endedAt: Date.now(), stateReason: null, review: null });
    } else {
      journal.transition(id, 'failed', {
        endedAt: Date.now(),
        stateReason: `agent command exited with code ${record.exitCode}`,
        review: null,
      });
    }
  }
}
