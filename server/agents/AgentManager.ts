import fs from 'node:fs';
import path from 'node:path';
import type { Agent, AgentEvent, CreateAgentRequest } from '../../protocol/api';
import { terminalStates } from '../../protocol/api';
import type { GuestRequest } from '../../protocol/control';
import { AgentvmError } from '../../protocol/errors';
import { agentConsolePath, agentDir } from '../config/paths';
import type { Logger } from '../log';
import type { ProfileRegistry } from '../profiles/ProfileRegistry';
import { publicAgent, type AgentRecord, type Store } from '../store/Store';
import { removeInterruptedBuilds } from '../vmm/templates/removeInterruptedBuilds';
import { TemplateManager, templatesDir } from '../vmm/templates/TemplateManager';
import type { GuestImage, VmExit, VmmDriver } from '../vmm/VmmDriver';
import type { AgentContext } from './AgentContext';
import { admitAgent } from './admitAgent';
import { callGuest } from './callGuest';
import { AgentJournal } from './AgentJournal';
import { AgentLocks } from './AgentLocks';
import type { AgentPolicy } from './AgentPolicy';
import { BootQueue } from './BootQueue';
import { GuestMessageHandler } from './GuestMessageHandler';
import { liveRemovalError } from './liveRemovalError';
import { LiveVms } from './LiveVms';
import { recoverAgents } from './recoverAgents';
import { ReviewSnapshots } from './ReviewSnapshots';
import { SpareVms } from './SpareVms';
import { TimeLimits } from './TimeLimits';

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
 * This class holds the operations the HTTP handlers call and wires the parts: {@link admitAgent}
 * accepts delegations, {@link BootQueue} starts agents, {@link LiveVms} watches their VMs,
 * {@link GuestMessageHandler} acts on what guests report, {@link ReviewSnapshots} pauses and
 * restores them and delivers the reviewer's answer, {@link TimeLimits} enforces limits and
 * {@link recoverAgents} picks everything up after a restart.
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
  /** The next clone of each template in use, launched ahead (see SpareVms); undefined when off. */
  private readonly spares: SpareVms | undefined;
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
    this.spares = SpareVms.forBroker(options, this.templates);
    this.boots = new BootQueue(context, this.vms, this.limits, this.templates, this.spares);
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

  /** Accepts a delegation (see {@link admitAgent}) and starts it when a boot slot is free. */
  async create(
    owner: string,
    request: CreateAgentRequest & { profile: string },
    issueRef?: string,
  ): Promise<Agent> {
    const record = admitAgent(this.context, owner, request, issueRef, this.spares);
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

  /** How long the agent's VM has run in its current run, in milliseconds; 0 without a VM. */
  liveVmMs(id: string): number {
    return this.vms.liveMs(id);
  }

  timeline(id: string, afterId = 0): AgentEvent[] {
    return this.store.events(id, afterId);
  }

  /** Restores the paused agent's snapshot so a reviewer can browse and edit its workspace. */
  review(id: string): Promise<Agent> {
    return this.reviews.open(id);
  }

  /** Delivers the reviewer's answer; restores first when the agent is still awaiting review. */
  resume(id: string, message: string): Promise<Agent> {
    return this.reviews.resume(id, message);
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
      // A queued agent's spare VM start, if it had one (a start would have used or ended it).
      await this.spares?.release(id);
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

  /** A file-API or exec call into the agent's live VM (see {@link callGuest}). */
  async guestCall(id: string, request: GuestRequest): Promise<unknown> {
    return callGuest(this.vms, this.journal.record(id), request);
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
    // Templates on or off: nothing else would stop the QEMU of a build a killed broker left.
    const { dataDir, driver, logger } = this.options;
    await removeInterruptedBuilds(templatesDir(dataDir), driver, logger).catch((error: Error) =>
      logger.warn('template.build_cleanup_failed', { error: error.message }),
    );
    await recoverAgents(this.context, {
      vms: this.vms,
      limits: this.limits,
      reviews: this.reviews,
    });
    this.boots.pump();
    this.spares?.prepareForProfiles(this.options.profiles, this.options.loadImage);
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

    // Spares are this broker's alone: the next one would not know them.
    await this.spares?.close();
    await this.options.driver.close?.();
    await this.templates?.close();
    this.limits.clearAll();
    this.guest.flushHeld();
    for (const id of this.vms.agentIds()) {
      if (options.stopVms) await this.vms.stop(id).catch(() => undefined);
      else this.vms.leaveRunning(id);
    }
  }

  private onVmExited(id: string, exit: VmExit): void {
    if (this.closing) return;

    this.vms.ended(id);
    const how = exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
    const tail = exit.consoleTail.slice(-10).join('\n');
    this.journal.fail(
      id,
      `the VM ${how} unexpectedly${tail ? `; last console lines:\n${tail}` : ''}`,
    );
  }
}
