import fs from 'node:fs';
import type { GuestEvent, GuestMessage } from '../../protocol/control';
import type { AgentRecord } from '../store/Store';
import type { AgentContext } from './AgentContext';
import { appendOutput, timelineEntry } from './guestEvents';
import type { LiveVms } from './LiveVms';
import type { ReviewSnapshots } from './ReviewSnapshots';

/**
 * What the broker does with messages from an agent's guest: logs, clock-sync reports, and the
 * sequenced events, each stored once (a replay after a restore is acknowledged and dropped), then
 * acted on: a review request pauses the agent, a result finishes it.
 */
export class GuestMessageHandler {
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

    const accepted = store.transaction(() => {
      const record = journal.record(id);
      if (message.seq <= record.guestSeq) return false;

      this.persist(record, message.seq, message.event);
      return true;
    });
    this.vms.get(id)?.vm.channel.send({ type: 'ack', seq: message.seq });
    if (!accepted) return;

    journal.publish(id);
    const event = message.event;
    if (event.kind === 'review') {
      void locks.run(id, () => this.reviews.pause(id, event.requestId, event.message));
    } else if (event.kind === 'result') {
      void locks.run(id, () => this.finish(id, event));
    }
  }

  private persist(record: AgentRecord, seq: number, event: GuestEvent): void {
    const changes: Partial<AgentRecord> = { guestSeq: seq };
    if (event.kind === 'output') changes.lastOutput = appendOutput(record.lastOutput, event.text);
    if (event.kind === 'progress') changes.lastProgress = event.message;
    if (event.kind === 'exit') changes.exitCode = event.code;
    this.context.store.updateAgent(record.id, changes);
    this.context.journal.append(record.id, timelineEntry(event));
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
