import { terminalStates } from '../../protocol/api';
import type { GuestEvent, GuestMessage } from '../../protocol/control';
import type { AgentRecord, NewEvent } from '../store/Store';
import type { AgentContext } from './AgentContext';
import { endWithResult, resultSummary, writeResultFiles } from './agentResult';
import { capGuestEvent, OutputBudget } from './capGuestEvent';
import { appendOutput, timelineEntry } from './guestEvents';
import type { LiveVms } from './LiveVms';
import { ProgressThrottle } from './ProgressThrottle';
import type { ReviewSnapshots } from './ReviewSnapshots';

type OutputEvent = Extract<GuestEvent, { kind: 'output' }>;

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

  /**
   * Per agent and stream, the end of the last output that could begin a secret value (see
   * {@link AgentJournal.redactOutput}): stored with the stream's next output, or when it ends.
   */
  private readonly heldOutput = new Map<string, Map<OutputEvent['stream'], string>>();

  /** Per agent, how much output is stored; past its cap output is counted, not stored. */
  private readonly outputBudget = new OutputBudget(undefined, (agentId) =>
    this.context.store.storedOutput(agentId),
  );

  /** Per agent, the latest time this broker process stored on its timeline (see {@link stamped}). */
  private readonly latestEventAt = new Map<string, number>();
  /** No entry stored before this handler existed has a later time than this. */
  private readonly startedAt = Date.now();

  constructor(
    private readonly context: AgentContext,
    private readonly vms: LiveVms,
    private readonly reviews: ReviewSnapshots,
    private readonly resultFiles: (agentId: string) => { bundle: string; patch: string },
  ) {
    context.journal.onAgentEnd((agentId) => this.agentEnded(agentId));
    context.journal.events.on('event', ({ agentId, at }) => {
      if (at > (this.latestEventAt.get(agentId) ?? -Infinity)) this.latestEventAt.set(agentId, at);
    });
    context.journal.events.on('removed', (agentId) => this.latestEventAt.delete(agentId));
  }

  handle(id: string, message: GuestMessage): void {
    const { journal, store, locks, log } = this.context;
    if (message.type === 'log') {
      log.debug('guest.log', { agentId: id, level: message.level, message: message.message });
      return;
    }

    if (message.type === 'synced') {
      journal.append(id, {
        kind: 'info',
        // A restored VM's clock stood still while it was saved (a clone's since its template was
        // built), so a large correction is expected, not a fault: the entry says so.
        message: `guest clock synced (corrected ${Math.round(message.clockSkewMs)} ms${Math.abs(message.clockSkewMs) >= 1000 ? '; a VM’s clock stands still while it is saved' : ''})`,
        data: { clockSkewMs: Math.round(message.clockSkewMs) },
      });
      return;
    }

    if (message.type !== 'event') return;

    const capped = capGuestEvent(message.event);
    // A result carries the agent's commits; rewriting them would corrupt the bundle. Output is
    // redacted as it is stored, together with what the stream held back.
    const event =
      capped.kind === 'result' || capped.kind === 'output' ? capped : journal.redact(id, capped);
    if (event.kind === 'result' && !this.keepResultFiles(id, message.seq, event)) return;

    let pauseForReview = false;
    const accepted = store.transaction(() => {
      const record = journal.record(id);
      if (message.seq <= record.guestSeq) return false;

      this.persist(record, message.seq, event, guestTime(message.at, record));
      // With the event and its seq: once they are stored and acknowledged, the guest never sends
      // the request again, so a broker stopped before `pausing` was stored forgot it for good.
      if (event.kind === 'review') {
        pauseForReview = this.reviews.request(id, event.requestId, event.message);
      }
      return true;
    });
    this.vms.get(id)?.vm.channel.send({ type: 'ack', seq: message.seq });
    if (!accepted) return;

    journal.publish(id);
    if (event.kind === 'review') {
      if (pauseForReview) {
        void locks.run(id, () => this.reviews.pause(id, event.requestId, event.message));
      }
    } else if (event.kind === 'result') {
      void locks.run(id, () => this.finish(id));
    } else if (event.kind === 'error' && event.fatal) {
      void locks.run(id, () => this.failed(id, event.message));
    }
  }

  /**
   * Writes a new result's files before the store records it and the guest hears it arrived.
   * False when they cannot be written (a full disk): the result is then neither stored nor
   * acknowledged, so the guest sends it again when a broker next attaches to it.
   */
  private keepResultFiles(
    id: string,
    seq: number,
    result: Extract<GuestEvent, { kind: 'result' }>,
  ): boolean {
    const { journal, log } = this.context;
    const record = journal.record(id);
    if (seq <= record.guestSeq || terminalStates.includes(record.state)) return true;

    try {
      writeResultFiles(this.resultFiles(id), result);
      return true;
    } catch (error) {
      log.error('agent.result_write_failed', { agentId: id, error });
      journal.append(id, {
        kind: 'error',
        message: `could not write the result files (${(error as Error).message}); the guest keeps the result and sends it again when the broker restarts`,
      });
      journal.publish(id);
      return false;
    }
  }

  /** Stores held progress and output now and forgets them (broker shutdown). */
  flushHeld(): void {
    for (const agentId of [...this.heldOutput.keys()]) this.flushOutput(agentId);
    this.progress.flushAll();
  }

  private persist(
    record: AgentRecord,
    seq: number,
    raw: GuestEvent,
    guestAt: number | undefined,
  ): void {
    let event = raw;
    if (event.kind === 'output') {
      const admission = this.outputBudget.admit(record.id, event.text);
      if (admission.notice) this.context.journal.append(record.id, admission.notice);
      const text = admission.store ? this.passOutput(record.id, event) : '';
      // Nothing to store yet; the seq is still taken, so a replay cannot hold it twice.
      if (text === '') {
        this.context.store.updateAgent(record.id, { guestSeq: seq });
        return;
      }

      event = { ...event, text };
    }
    if (event.kind === 'progress' && !this.progress.offer(record.id, event.message)) {
      // Held for the end of the window; the seq is still taken, so a replay cannot store it twice.
      this.context.store.updateAgent(record.id, { guestSeq: seq });
      return;
    }
    // The command exited: its streams are over, and what they held back is output like the rest.
    if (event.kind === 'exit') {
      this.flushOutput(record.id);
      this.appendDroppedOutput(record.id);
    }

    const changes: Partial<AgentRecord> = { guestSeq: seq };
    // Its files are written (see keepResultFiles): a broker killed before the agent is ended finds
    // the result in the record (see recoverAgents), where the guest would not send it again.
    if (event.kind === 'result' && !terminalStates.includes(record.state)) {
      changes.result = resultSummary(event, record.exitCode);
    }
    if (event.kind === 'output') changes.lastOutput = appendOutput(record.lastOutput, event.text);
    if (event.kind === 'progress') changes.lastProgress = event.message;
    if (event.kind === 'exit') changes.exitCode = event.code;
    this.context.store.updateAgent(record.id, changes);
    this.context.journal.append(record.id, this.stamped(record.id, timelineEntry(event), guestAt));
  }

  /**
   * `entry` with the time to store. The timeline is listed in the order entries are stored, and
   * most are stamped by the broker as they are stored; the guest's stamp (`guestAt`) can be older
   * than the entry before it: an event replayed after a broker restart or a restore comes after
   * the broker's own "reattached" or state entry, and the guest's clock may trail the host's by a
   * few milliseconds. Sorting by time would move entries a follower has already been sent, and
   * dropping the stamp would forget when output kept while the broker was away was printed. So
   * the time is the guest's stamp raised to the previous entry's time when it is older (the event
   * happened no later than that): times never run backwards down the list, and a raised entry
   * keeps the guest's own time in `data.guestAt`. Every stored time is at most the wall clock when
   * it was stored, so for an agent this process has stored nothing for yet, the process start
   * bounds what went before.
   */
  private stamped(agentId: string, entry: NewEvent, guestAt: number | undefined): NewEvent {
    if (guestAt === undefined) return entry;

    const previousAt = Math.max(this.latestEventAt.get(agentId) ?? 0, this.startedAt);
    if (guestAt >= previousAt) return { ...entry, at: guestAt };

    return { ...entry, at: previousAt, data: { ...entry.data, guestAt } };
  }

  /** The redacted part of `event`'s text (after what its stream held) that may be stored now. */
  private passOutput(agentId: string, event: OutputEvent): string {
    const streams = this.heldOutput.get(agentId) ?? new Map<OutputEvent['stream'], string>();
    const { ready, held } = this.context.journal.redactOutput(
      agentId,
      (streams.get(event.stream) ?? '') + event.text,
    );
    if (held !== '') streams.set(event.stream, held);
    else streams.delete(event.stream);
    if (streams.size > 0) this.heldOutput.set(agentId, streams);
    else this.heldOutput.delete(agentId);
    return ready;
  }

  /** Stores what the agent's streams held back as output and forgets it. */
  private flushOutput(agentId: string): void {
    const streams = this.heldOutput.get(agentId);
    if (!streams) return;

    this.heldOutput.delete(agentId);
    const { journal, store } = this.context;
    const record = store.getAgent(agentId);
    if (!record) return;

    let lastOutput = record.lastOutput;
    for (const [stream, text] of streams) {
      lastOutput = appendOutput(lastOutput, text);
      journal.append(agentId, timelineEntry({ kind: 'output', stream, text }));
    }
    store.updateAgent(agentId, { lastOutput });
  }

  /** The agent ends or is removed: what it held back is stored (when it still exists). */
  private agentEnded(agentId: string): void {
    this.flushOutput(agentId);
    if (this.context.store.getAgent(agentId)) this.appendDroppedOutput(agentId);
    this.outputBudget.forget(agentId);
    this.progress.forget(agentId);
  }

  /** Says on the timeline how much output went past the cap since it last said so, if any. */
  private appendDroppedOutput(agentId: string): void {
    const summary = this.outputBudget.droppedSummary(agentId);
    if (summary) this.context.journal.append(agentId, summary);
  }

  /** The guest gave up on the task (a fatal `error`): no result follows, so the agent fails. */
  private async failed(id: string, reason: string): Promise<void> {
    await this.vms.stop(id);
    this.context.journal.fail(id, reason);
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

  /** The result is stored with its files (see {@link persist}): the VM goes, the agent ends. */
  private async finish(id: string): Promise<void> {
    const { journal } = this.context;
    // A result that raced a cancel (it arrived while the cancel stopped the VM) comes after it:
    // the agent stays cancelled, with no result, as its state says.
    const record = journal.record(id);
    if (terminalStates.includes(record.state) || !record.result) return;

    await this.vms.stop(id);
    endWithResult(journal, id);
  }
}

/**
 * When the guest says the event happened (its clock is set by the broker's sync), so that output
 * the guest kept while the broker was away is not stamped with the moment it arrived (see
 * {@link GuestMessageHandler.stamped} for how it is kept in order); undefined (the time it
 * arrives) when the guest did not say or names a time outside the agent's life.
 */
function guestTime(at: number | undefined, record: AgentRecord): number | undefined {
  if (at === undefined || at < record.createdAt || at > Date.now()) return undefined;
  return at;
}
