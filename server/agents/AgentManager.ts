import fs from 'node:fs';
import path from 'node:path';
import type { Agent, AgentEvent, CreateAgentRequest } from '../../protocol/api';
import { terminalStates } from '../../protocol/api';
import type { GuestRequest } from '../../protocol/control';
import { AgentvmError } from '../../protocol/errors';
import { agentConsolePath, agentDir } from '../config/paths';
import type { Logger } from '../log';
import type { ProfileRegistry } from '../profiles/ProfileRegistry';
import {
  isDiskFullError,
  publicAgent,
  storeFullError,
  type AgentRecord,
  type Store,
} from '../store/Store';
import { TemplateManager } from '../vmm/templates/TemplateManager';
import type { GuestImage, VmExit, VmmDriver } from '../vmm/VmmDriver';
import type { AgentContext } from './AgentContext';
import { saveProfileFiles } from './profileFileCopies';
import { stateHint } from './stateHint';
import { AgentJournal } from './AgentJournal';
import { AgentLocks } from './AgentLocks';
import type { AgentPolicy } from './AgentPolicy';
import { BootQueue } from './BootQueue';
import { GuestMessageHandler } from './GuestMessageHandler';
import { liveRemovalError } from './liveRemovalError';
import { LiveVms } from './LiveVms';
import { newAgentId, newAgentRecord } from './newAgentRecord';
import { recoverAgents } from './recoverAgents';
import { ReviewSnapshots } from './ReviewSnapshots';
import { TimeLimits } from './TimeLimits';

/** How long past an exec's own timeout the broker waits for the guest's answer, in milliseconds. */
const EXEC_ANSWER_GRACE_MS = 15_000;

/**
 * How long shutdown waits for cancelled starts to end their VMs, in milliseconds: a cancelled
 * QEMU start waits up to 10 s for the SIGKILLed process to be reaped.
 */
const SHUTDOWN_START_SETTLE_MS = 15_000;

export interface AgentManagerOptions {
  store: Store;
  driver: VmmDriver;
  profiles: ProfileRegistry;
  /** Returns the current guest image or throws IMAGE_MISSING / IMAGE_CORRUPT. */
  loadImage: () => GuestImage;
  dataDir: string;
  logger: Logger;
  /** How many VMs may boot at once; boots are CPU-bound under TCG. */
  maxConcurrentBoots?: number;
  /** Templates to clone new agents from; default: one under dataDir unless AGENTVM_TEMPLATES=off. */
  templates?: TemplateManager | null;
  /** Egress, secrets, limits and audit (server/agents/AgentPolicy); none in bare unit tests. */
  policy?: AgentPolicy;
}

/**
 * The agent life cycle (DESIGN.md "An agent's life"): queued → starting → running ⇄ review →
 * done | failed | cancelled. Every transition is written to the store before anything else
 * observes it, so a broker restart finds each agent where it was left ({@link recover}).
 *
 * This class holds the operations the HTTP handlers call and wires the parts: {@link BootQueue}
 * starts agents, {@link LiveVms} watches their VMs, {@link GuestMessageHandler} acts on what
 * guests report, {@link ReviewSnapshots} pauses and restores them, {@link TimeLimits} enforces
 * limits and {@link recoverAgents} picks everything up after a restart.
 */
export class AgentManager {
  /** Templates new agents are cloned from (see server/vmm/templates); undefined when off. */
  readonly templates: TemplateManager | undefined;

  private readonly context: AgentContext;
  private readonly vms: LiveVms;
  private readonly limits: TimeLimits;
  private readonly reviews: ReviewSnapshots;
  private readonly guest: GuestMessageHandler;
  private readonly boots: BootQueue;
  private closing = false;

  constructor(private readonly options: AgentManagerOptions) {
    const journal = new AgentJournal(
      options.store,
      options.logger,
      (id) => void options.policy?.release(id),
      (id) => options.policy?.secretValues(id) ?? [],
    );
    const mode = process.env.AGENTVM_TEMPLATES ?? 'auto';
    this.templates =
      options.templates === undefined && mode !== 'off'
        ? new TemplateManager({
            dataDir: options.dataDir,
            driver: options.driver,
            logger: options.logger,
            buildOnDemand: mode !== 'manual',
          })
        : (options.templates ?? undefined);

    const context = (this.context = {
      options,
      store: options.store,
      log: options.logger,
      journal,
      locks: new AgentLocks(),
    });
    this.vms = new LiveVms({
      store: options.store,
      log: options.logger,
      onMessage: (id, message) => this.guest.handle(id, message),
      onUnexpectedExit: (id, exit) => this.onVmExited(id, exit),
      onDetached: (id) => this.limits.clear(id),
    });
    this.limits = new TimeLimits(context, this.vms, (id, requestId, message) =>
      this.reviews.pause(id, requestId, message),
    );
    this.reviews = new ReviewSnapshots(context, this.vms, this.limits);
    this.guest = new GuestMessageHandler(context, this.vms, this.reviews, (id) =>
      this.resultFiles(id),
    );
    this.boots = new BootQueue(context, this.vms, this.limits, this.templates);
    // Queued agents wait while the store cannot write (see BootQueue.pump).
    options.store.onWriteStatus((status) => {
      if (status.kind === 'written') this.boots.pump();
    });
  }

  /** Stored-then-published agent events and updates (the WebSocket stream listens here). */
  get events(): AgentJournal['events'] {
    return this.journal.events;
  }

  private get journal(): AgentJournal {
    return this.context.journal;
  }

  private get store(): Store {
    return this.options.store;
  }

  // ---- public operations (called by the HTTP handlers)

  async create(
    owner: string,
    request: CreateAgentRequest & { profile: string },
    issueRef?: string,
  ): Promise<Agent> {
    const profile = this.options.profiles.get(request.profile);
    // A missing or corrupt guest image is the caller's problem to fix now (412), not a failure
    // found later by an agent that was accepted; so is a store that cannot record the agent.
    this.options.loadImage();
    this.store.requireWritable();
    this.options.policy?.admit(profile, request.secrets);
    const bundle = Buffer.from(request.repo.bundle, 'base64');
    if (!/^# v[23] git bundle\n/.test(bundle.subarray(0, 20).toString('latin1'))) {
      throw new AgentvmError('VALIDATION_FAILED', 'repo.bundle is not a base64-encoded git bundle');
    }

    const id = newAgentId();
    const dir = agentDir(id, this.options.dataDir);
    const record = newAgentRecord(id, owner, request, profile, issueRef);
    // Read now: the agent gets its profile's files as they are at delegation (see saveProfileFiles).
    const profileFiles = this.options.profiles.taskFiles(record.profileSpec);
    const bundlePath = path.join(dir, 'repo.bundle');
    try {
      // Audited first: an agent the audit log cannot record is not created.
      this.options.policy?.created(record, request.secrets);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(bundlePath, bundle);
      saveProfileFiles(dir, profileFiles);
      this.store.insertAgent(record);
    } catch (error) {
      // Nothing of an agent that was not accepted stays on a disk that is likely full.
      fs.rmSync(dir, { recursive: true, force: true });
      void this.options.policy?.release(id).catch(() => undefined);
      if (isDiskFullError(error)) throw storeFullError(bundlePath, error, this.options.dataDir);

      throw error;
    }
    this.journal.append(id, {
      kind: 'state',
      message: 'queued',
      data: { from: null, to: 'queued' },
    });
    this.journal.publish(id);
    this.boots.pump();
    return publicAgent(record);
  }

  list(user: string, admin: boolean): Agent[] {
    return this.store.listAgents(admin ? undefined : user).map(publicAgent);
  }

  /**
   * The agent if `user` may see it, else AGENT_NOT_FOUND. Another user's agent is refused exactly
   * like an id that does not exist, so a token cannot learn which ids exist; `onDenied` is told of
   * that refusal (the HTTP layer audits it).
   */
  get(id: string, user: string, admin: boolean, onDenied?: () => void): AgentRecord {
    const record = this.store.getAgent(id);
    if (record && (admin || record.owner === user)) return record;

    if (record) onDenied?.();
    throw new AgentvmError('AGENT_NOT_FOUND', `no agent with id "${id}"`);
  }

  timeline(id: string, afterId = 0): AgentEvent[] {
    return this.store.events(id, afterId);
  }

  /** Restores the paused agent's snapshot so a reviewer can browse and edit its workspace. */
  review(id: string): Promise<Agent> {
    return this.context.locks.run(id, async () => {
      const record = this.journal.record(id);
      if (record.state === 'reviewing') return publicAgent(record);

      this.journal.requireState(record, ['awaiting_review'], 'open for review');
      // A restore writes a new disk overlay and a VM's worth of state: not on a full disk.
      this.store.requireWritable();
      await this.reviews.restore(record);
      return publicAgent(this.journal.record(id));
    });
  }

  /** Delivers the reviewer's answer; restores first when the agent is still awaiting review. */
  resume(id: string, message: string): Promise<Agent> {
    return this.context.locks.run(id, async () => {
      let record = this.journal.record(id);
      this.journal.requireState(record, ['awaiting_review', 'reviewing'], 'resume');
      this.store.requireWritable();
      if (record.state === 'awaiting_review') {
        await this.reviews.restore(record);
        record = this.journal.record(id);
      }

      const live = this.vms.require(id);
      if (record.review?.requestId) {
        live.vm.channel.send({
          type: 'review-answer',
          requestId: record.review.requestId,
          message,
        });
      }

      this.journal.append(id, {
        kind: 'answer',
        message: message || '(resumed without a message)',
        data: { requestId: record.review?.requestId ?? null },
      });
      this.journal.transition(id, 'running', { review: null, stateReason: null });
      this.limits.arm(id);
      // A review asked while this one was open is asked now (after this call lets go of the lock).
      const next = this.reviews.unansweredRequest(id);
      if (next) {
        void this.context.locks.run(id, () => this.reviews.pause(id, next.requestId, next.message));
      }
      return publicAgent(this.journal.record(id));
    });
  }

  /** Stops an agent that has not ended; one that has is INVALID_STATE (nothing to cancel). */
  async cancel(id: string): Promise<Agent> {
    // A VM start under way holds the agent's lock until it is ready: call it off first.
    await this.boots.callOff(id, 'the agent was cancelled');
    return this.context.locks.run(id, async () => {
      const record = this.journal.record(id);
      if (terminalStates.includes(record.state)) {
        throw new AgentvmError(
          'INVALID_STATE',
          `cannot cancel agent ${id}: it has already ended (state ${record.state})`,
          `Nothing of it runs any more: \`agentvm logs ${id}\` shows how it ended, \`agentvm rm ${id}\` removes it and its files.`,
        );
      }

      const live = this.vms.get(id);
      if (live) {
        live.vm.channel.send({ type: 'cancel', graceMs: 2000 });
        await this.vms.stop(id);
      }

      this.reviews.discard(record);
      this.journal.transition(id, 'cancelled', {
        stateReason: 'cancelled by the user',
        endedAt: Date.now(),
        review: null,
        // A result that arrived as the cancel stopped the VM is not the agent's: it was cancelled.
        result: null,
      });
      return publicAgent(this.journal.record(id));
    });
  }

  /**
   * Deletes the agent, its VM and its files. One that has not ended is refused with INVALID_STATE
   * unless `force` (its VM is stopped and its work lost), so no client can lose work by accident.
   */
  async remove(id: string, options: { force?: boolean } = {}): Promise<void> {
    if (options.force) await this.boots.callOff(id, 'the agent was removed');
    return this.context.locks.run(id, async () => {
      const record = this.journal.record(id);
      if (!options.force && !terminalStates.includes(record.state)) {
        throw liveRemovalError(id, record.state);
      }

      if (this.vms.has(id)) await this.vms.stop(id);
      // A VM recovery gave up on would otherwise outlive its agent.
      else await this.options.driver.stopLeftover?.(agentDir(id, this.options.dataDir));

      this.store.deleteAgent(id);
      await this.options.policy?.release(id);
      fs.rmSync(agentDir(id, this.options.dataDir), { recursive: true, force: true });
      this.journal.removed(id, record.owner);
    });
  }

  /** A file-API or exec call into the agent's live VM. */
  async guestCall(id: string, request: GuestRequest): Promise<unknown> {
    const record = this.journal.record(id);
    // Like review and resume: a state without a VM is the caller's mistake (INVALID_STATE); a VM
    // that should be there and is not is the broker's (GUEST_UNREACHABLE).
    if (!['reviewing', 'running'].includes(record.state)) {
      throw new AgentvmError(
        'INVALID_STATE',
        `agent ${id} is ${record.state}: it has no running VM to call into`,
        stateHint(id, record.state),
      );
    }
    const live = this.vms.get(id);
    if (!live) {
      throw new AgentvmError(
        'GUEST_UNREACHABLE',
        `agent ${id} is ${record.state}, but its VM is not attached (it may be starting or gone)`,
        `Try again in a moment; \`agentvm logs ${id}\` shows what happened to its VM.`,
      );
    }

    // The guest stops an exec at its timeoutMs and answers; the channel waits that long and more.
    const timeoutMs = request.op === 'exec' ? request.timeoutMs + EXEC_ANSWER_GRACE_MS : undefined;
    return live.vm.channel.request(request, timeoutMs);
  }

  resultFiles(id: string): { bundle: string; patch: string } {
    const dir = agentDir(id, this.options.dataDir);
    return { bundle: path.join(dir, 'result.bundle'), patch: path.join(dir, 'result.patch') };
  }

  consolePath(id: string): string {
    return agentConsolePath(id, this.options.dataDir);
  }

  // ---- start-up and shut-down

  /**
   * Puts every agent back where it was after a broker restart (see {@link recoverAgents}), then
   * starts the queued ones.
   */
  async recover(): Promise<void> {
    await recoverAgents(this.context, {
      vms: this.vms,
      limits: this.limits,
      reviews: this.reviews,
    });
    this.boots.pump();
  }

  /**
   * Stops watching VMs without stopping them: they keep running and the next broker start
   * reattaches them. With `stopVms`, VMs are ended instead (their agents fail on next start).
   * Starts in flight are called off first: their VMs are ended and their agents queued again
   * (see {@link BootQueue.cancelAll}), so nothing of theirs outlives this call.
   */
  async shutdown(options: { stopVms?: boolean } = {}): Promise<void> {
    if (this.closing) return;

    this.closing = true;
    const settled = await this.boots.cancelAll(SHUTDOWN_START_SETTLE_MS);
    if (!settled) {
      this.options.logger.warn('agents.shutdown_starts_unsettled', {
        waitedMs: SHUTDOWN_START_SETTLE_MS,
      });
    }

    await this.templates?.close();
    this.limits.clearAll();
    this.guest.flushHeld();
    for (const id of this.vms.agentIds()) {
      if (options.stopVms) await this.vms.stop(id).catch(() => undefined);
      else this.vms.detach(id);
    }
  }

  private onVmExited(id: string, exit: VmExit): void {
    if (this.closing) return;

    this.vms.detach(id);
    const how = exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
    const tail = exit.consoleTail.slice(-10).join('\n');
    this.journal.fail(
      id,
      `the VM ${how} unexpectedly${tail ? `; last console lines:\n${tail}` : ''}`,
    );
  }
}
