import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Agent, AgentEvent, CreateAgentRequest } from '../../protocol/api';
import { terminalStates } from '../../protocol/api';
import type { GuestEvent, GuestMessage, GuestRequest } from '../../protocol/control';
import { AgentvmError } from '../../protocol/errors';
import { agentDir } from '../config/paths';
import type { Logger } from '../log';
import type { ProfileRegistry } from '../profiles/ProfileRegistry';
import { publicAgent, type AgentRecord, type Store } from '../store/Store';
import type { GuestImage, Vm, VmmDriver, VmSpec } from '../vmm/VmmDriver';
import { appendOutput, timelineEntry } from './guestEvents';
import { AgentJournal } from './AgentJournal';
import { AgentLocks } from './AgentLocks';
import { startAgentVm } from './startAgentVm';
import { TemplateManager } from '../vmm/templates/TemplateManager';
import type { AgentPolicy } from './AgentPolicy';

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

interface LiveVm {
  vm: Vm;
  /** Set before a stop or snapshot, so the process ending is not reported as a failure. */
  expectedExit: boolean;
  runningSince: number;
  dispose(): void;
}

/**
 * The agent life cycle (DESIGN.md "An agent's life"): queued → starting → running ⇄ review →
 * done | failed | cancelled. Every transition is written to the store before anything else
 * observes it, so a broker restart finds each agent where it was left ({@link recover}).
 */
export class AgentManager {
  private readonly live = new Map<string, LiveVm>();
  private readonly locks = new AgentLocks();
  private readonly limitTimers = new Map<string, NodeJS.Timeout>();
  private activeBoots = 0;
  private closing = false;

  /** Templates new agents are cloned from (see server/vmm/templates); undefined when off. */
  readonly templates: TemplateManager | undefined;

  private readonly journal: AgentJournal;

  constructor(private readonly options: AgentManagerOptions) {
    this.journal = new AgentJournal(
      options.store,
      options.logger,
      (id) => void options.policy?.release(id),
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
  }

  /** Stored-then-published agent events and updates (the WebSocket stream listens here). */
  get events(): AgentJournal['events'] {
    return this.journal.events;
  }

  private get store(): Store {
    return this.options.store;
  }

  private get log(): Logger {
    return this.options.logger;
  }

  // ---- public operations (called by the HTTP handlers)

  async create(
    owner: string,
    request: CreateAgentRequest & { profile: string },
    issueRef?: string,
  ): Promise<Agent> {
    const profile = this.options.profiles.get(request.profile);
    // A missing or corrupt guest image is the caller's problem to fix now (412), not a failure
    // found later by an agent that was accepted.
    this.options.loadImage();
    this.options.policy?.admit(profile, request.secrets);
    const bundle = Buffer.from(request.repo.bundle, 'base64');
    if (!/^# v[23] git bundle\n/.test(bundle.subarray(0, 20).toString('latin1'))) {
      throw new AgentvmError('VALIDATION_FAILED', 'repo.bundle is not a base64-encoded git bundle');
    }

    const id = newAgentId();
    const dir = agentDir(id, this.options.dataDir);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'repo.bundle'), bundle);

    const now = Date.now();
    const record: AgentRecord = {
      id,
      title: (request.title ?? firstLine(request.text)).slice(0, 120),
      text: request.text,
      profile: profile.name,
      owner,
      state: 'queued',
      stateReason: null,
      createdAt: now,
      updatedAt: now,
      endedAt: null,
      repo: {
        path: request.repo.path,
        baseCommit: request.repo.baseCommit,
        branch: request.repo.branch,
        uncommitted: request.repo.uncommitted ?? [],
        uncommittedIncluded: request.repo.uncommittedIncluded ?? false,
      },
      review: null,
      lastProgress: null,
      lastOutput: [],
      result: null,
      bootPath: null,
      accel: null,
      profileSpec: profile,
      vmPid: null,
      guestSeq: 0,
      snapshot: null,
      exitCode: null,
      issueRef: issueRef ?? null,
      vmSeconds: 0,
    };
    this.store.insertAgent(record);
    this.options.policy?.created(record, request.secrets);
    this.journal.append(id, {
      kind: 'state',
      message: 'queued',
      data: { from: null, to: 'queued' },
    });
    this.journal.publish(id);
    this.pump();
    return publicAgent(record);
  }

  list(user: string, admin: boolean): Agent[] {
    return this.store.listAgents(admin ? undefined : user).map(publicAgent);
  }

  /** The agent if `user` may see it; AGENT_NOT_FOUND / FORBIDDEN otherwise. */
  get(id: string, user: string, admin: boolean): AgentRecord {
    const record = this.store.getAgent(id);
    if (!record) throw new AgentvmError('AGENT_NOT_FOUND', `no agent with id "${id}"`);

    if (!admin && record.owner !== user) {
      throw new AgentvmError('FORBIDDEN', `agent ${id} belongs to another user`);
    }

    return record;
  }

  timeline(id: string, afterId = 0): AgentEvent[] {
    return this.store.events(id, afterId);
  }

  /** Restores the paused agent's snapshot so a reviewer can browse and edit its workspace. */
  review(id: string): Promise<Agent> {
    return this.locks.run(id, async () => {
      const record = this.journal.record(id);
      if (record.state === 'reviewing') return publicAgent(record);

      this.journal.requireState(record, ['awaiting_review'], 'open for review');
      await this.restore(record);
      return publicAgent(this.journal.record(id));
    });
  }

  /** Delivers the reviewer's answer; restores first when the agent is still awaiting review. */
  resume(id: string, message: string): Promise<Agent> {
    return this.locks.run(id, async () => {
      let record = this.journal.record(id);
      this.journal.requireState(record, ['awaiting_review', 'reviewing'], 'resume');
      if (record.state === 'awaiting_review') {
        await this.restore(record);
        record = this.journal.record(id);
      }

      const live = this.requireLive(id);
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
      this.armTimeLimit(id);
      return publicAgent(this.journal.record(id));
    });
  }

  cancel(id: string): Promise<Agent> {
    return this.locks.run(id, async () => {
      const record = this.journal.record(id);
      if (terminalStates.includes(record.state)) return publicAgent(record);

      const live = this.live.get(id);
      if (live) {
        live.vm.channel.send({ type: 'cancel', graceMs: 2000 });
        await this.stopVm(id);
      }

      this.removeSnapshot(record);
      this.journal.transition(id, 'cancelled', {
        stateReason: 'cancelled by the user',
        endedAt: Date.now(),
        review: null,
      });
      return publicAgent(this.journal.record(id));
    });
  }

  remove(id: string): Promise<void> {
    return this.locks.run(id, async () => {
      this.journal.record(id);
      if (this.live.has(id)) await this.stopVm(id);

      this.store.deleteAgent(id);
      await this.options.policy?.release(id);
      fs.rmSync(agentDir(id, this.options.dataDir), { recursive: true, force: true });
      this.journal.removed(id);
    });
  }

  /** A file-API or exec call into the agent's live VM. */
  async guestCall(id: string, request: GuestRequest): Promise<unknown> {
    const record = this.journal.record(id);
    const live = this.live.get(id);
    if (!live || !['reviewing', 'running'].includes(record.state)) {
      throw new AgentvmError(
        'GUEST_UNREACHABLE',
        `agent ${id} has no running VM (state ${record.state})`,
      );
    }

    return live.vm.channel.request(request);
  }

  resultFiles(id: string): { bundle: string; patch: string } {
    const dir = agentDir(id, this.options.dataDir);
    return { bundle: path.join(dir, 'result.bundle'), patch: path.join(dir, 'result.patch') };
  }

  consolePath(id: string): string {
    return path.join(agentDir(id, this.options.dataDir), 'console.log');
  }

  // ---- start-up and shut-down

  /**
   * Puts every agent back where it was after a broker restart: live VMs are reattached, VMs that
   * died are failed with the reason, a half-written snapshot is never trusted.
   */
  async recover(): Promise<void> {
    const unfinished = this.store.agentsInStates([
      'starting',
      'running',
      'pausing',
      'restoring',
      'reviewing',
      'awaiting_review',
    ]);
    for (const record of unfinished) {
      await this.locks
        .run(record.id, () => this.recoverOne(record))
        .catch((error: Error) => {
          this.journal.fail(
            record.id,
            `could not recover after a broker restart: ${error.message}`,
          );
        });
    }

    this.pump();
  }

  private async recoverOne(record: AgentRecord): Promise<void> {
    const alive = record.vmPid !== null && processAlive(record.vmPid);
    if (record.state === 'awaiting_review') {
      if (!record.snapshot || !fs.existsSync(record.snapshot.statePath)) {
        this.journal.fail(record.id, 'its snapshot is missing; the paused work cannot be restored');
      }
      return;
    }

    if (record.state === 'starting') {
      // Booting is idempotent: throw the half-booted VM away and start again.
      if (alive) process.kill(record.vmPid!, 'SIGKILL');
      this.journal.transition(record.id, 'queued', {
        vmPid: null,
        stateReason: 'requeued after a broker restart',
      });
      return;
    }

    if (record.state === 'pausing' && record.snapshot && fs.existsSync(record.snapshot.statePath)) {
      if (alive) process.kill(record.vmPid!, 'SIGKILL');
      this.journal.transition(record.id, 'awaiting_review', { vmPid: null });
      return;
    }

    if (record.state === 'restoring' && !alive && record.snapshot) {
      this.journal.transition(record.id, 'awaiting_review', {
        vmPid: null,
        stateReason: 'restore interrupted by a broker restart',
      });
      return;
    }

    if (!alive) {
      this.journal.fail(
        record.id,
        `its VM (pid ${record.vmPid ?? 'unknown'}) ended while the broker was down`,
      );
      return;
    }

    await this.options.policy?.prepare(record);
    const vm = await this.options.driver.attach(
      this.vmSpec(record, this.options.loadImage()),
      record.vmPid!,
    );
    this.attachVm(record.id, vm);
    this.journal.append(record.id, {
      kind: 'info',
      message: `reattached to VM pid ${vm.pid} after a broker restart`,
    });
    if (record.state === 'pausing') {
      // The snapshot was not finished: the VM is still whole, so take it again.
      await this.pauseForReview(
        record.id,
        record.review?.requestId ?? '',
        record.review?.message ?? '',
      );
    } else if (record.state === 'restoring') {
      await vm.resume();
      this.journal.transition(record.id, 'reviewing', {});
    } else if (record.state === 'running') {
      this.armTimeLimit(record.id);
    }
  }

  /**
   * Stops watching VMs without stopping them: they keep running and the next broker start
   * reattaches them. With `stopVms`, VMs are ended instead (their agents fail on next start).
   */
  async shutdown(options: { stopVms?: boolean } = {}): Promise<void> {
    if (this.closing) return;

    this.closing = true;
    await this.templates?.close();
    for (const timer of this.limitTimers.values()) clearTimeout(timer);
    this.limitTimers.clear();
    for (const id of [...this.live.keys()]) {
      if (options.stopVms) await this.stopVm(id).catch(() => undefined);
      else this.detachVm(id);
    }
  }

  // ---- the life cycle

  private pump(): void {
    if (this.closing) return;

    const limit = this.options.maxConcurrentBoots ?? Number(process.env.AGENTVM_MAX_BOOTS ?? 2);
    const queued = this.store.agentsInStates(['queued']);
    for (const record of queued) {
      if (this.activeBoots >= limit) return;

      this.activeBoots++;
      void this.locks
        .run(record.id, () => this.start(record.id))
        .finally(() => {
          this.activeBoots--;
          this.pump();
        });
    }
  }

  private async start(id: string): Promise<void> {
    const queued = this.journal.record(id);
    if (queued.state !== 'queued') return;

    const record = this.journal.transition(id, 'starting', { stateReason: null });
    try {
      const image = this.options.loadImage();
      await this.options.policy?.prepare(record);
      const spec = this.vmSpec(record, image);
      fs.rmSync(path.join(spec.vmDir, 'overlay.qcow2'), { force: true });
      const started = await this.log.timed('vm.start', { agentId: id }, () =>
        startAgentVm(this.options.driver, this.templates, spec, this.log),
      );
      const { vm, bootPath, reason, durationMs } = started;
      this.store.updateAgent(id, { vmPid: vm.pid, accel: vm.accel, bootPath });
      const how = bootPath === 'template' ? 'from a template' : 'after a cold boot';
      this.journal.append(id, {
        kind: 'info',
        message: `VM ready ${how} in ${durationMs} ms (${vm.accel}): ${reason}`,
        data: { durationMs, bootPath, reason },
      });
      this.attachVm(id, vm);

      this.syncGuest(vm);
      vm.channel.send({ type: 'task', task: this.task(this.journal.record(id)) });
      this.journal.transition(id, 'running', {});
      this.armTimeLimit(id);
    } catch (error) {
      if (this.live.has(id)) await this.stopVm(id).catch(() => undefined);
      this.journal.fail(id, describe(error));
    }
  }

  private task(record: AgentRecord) {
    const bundle = fs.readFileSync(
      path.join(agentDir(record.id, this.options.dataDir), 'repo.bundle'),
    );
    return {
      agentId: record.id,
      text: record.text,
      title: record.title,
      command: record.profileSpec.command,
      env: { ...record.profileSpec.env, ...this.options.policy?.guestEnv(record.id) },
      bundle: bundle.toString('base64'),
      baseCommit: record.repo.baseCommit,
      branch: record.repo.branch,
      timeLimitMs: 0,
      files: [
        ...this.options.profiles.taskFiles(record.profile),
        ...(this.options.policy?.guestFiles() ?? []),
      ],
    };
  }

  private onGuestMessage(id: string, message: GuestMessage): void {
    if (message.type === 'log') {
      this.log.debug('guest.log', { agentId: id, level: message.level, message: message.message });
      return;
    }

    if (message.type === 'synced') {
      this.journal.append(id, {
        kind: 'info',
        message: `guest clock synced (corrected ${Math.round(message.clockSkewMs)} ms)`,
      });
      return;
    }

    if (message.type !== 'event') return;

    const accepted = this.store.transaction(() => {
      const record = this.journal.record(id);
      if (message.seq <= record.guestSeq) return false;

      this.persistGuestEvent(record, message.seq, message.event);
      return true;
    });
    this.live.get(id)?.vm.channel.send({ type: 'ack', seq: message.seq });
    if (!accepted) return;

    this.journal.publish(id);
    const event = message.event;
    if (event.kind === 'review') {
      void this.locks.run(id, () => this.pauseForReview(id, event.requestId, event.message));
    } else if (event.kind === 'result') {
      void this.locks.run(id, () => this.finish(id, event));
    }
  }

  private persistGuestEvent(record: AgentRecord, seq: number, event: GuestEvent): void {
    const changes: Partial<AgentRecord> = { guestSeq: seq };
    if (event.kind === 'output') changes.lastOutput = appendOutput(record.lastOutput, event.text);
    if (event.kind === 'progress') changes.lastProgress = event.message;
    if (event.kind === 'exit') changes.exitCode = event.code;
    this.store.updateAgent(record.id, changes);
    this.journal.append(record.id, timelineEntry(event));
  }

  /** Snapshot the VM (memory, devices; the disk overlay stays in place) and end its process. */
  private async pauseForReview(id: string, requestId: string, message: string): Promise<void> {
    const record = this.journal.record(id);
    if (!['running', 'pausing'].includes(record.state)) return;

    const live = this.requireLive(id);
    this.clearTimeLimit(id);
    this.journal.transition(id, 'pausing', {
      review: { requestId, message, requestedAt: Date.now() },
    });
    live.expectedExit = true;
    try {
      const snapshot = await this.log.timed('vm.snapshot', { agentId: id }, () =>
        live.vm.snapshot(),
      );
      this.detachVm(id);
      const megabytes = (snapshot.sizeBytes / 1048576).toFixed(1);
      this.store.updateAgent(id, { snapshot, vmPid: null });
      this.journal.append(id, {
        kind: 'info',
        message: `snapshot written (${megabytes} MiB in ${snapshot.durationMs} ms); VM stopped while it waits`,
        data: { durationMs: snapshot.durationMs, sizeBytes: snapshot.sizeBytes },
      });
      this.journal.transition(id, 'awaiting_review', {});
    } catch (error) {
      // The driver leaves the VM paused and alive when the snapshot fails: keep it for review.
      live.expectedExit = false;
      await live.vm.resume().catch(() => undefined);
      this.journal.transition(id, 'reviewing', {
        stateReason: `snapshot failed (${describe(error)}); the VM stays running for review`,
      });
    }
  }

  private async restore(record: AgentRecord): Promise<void> {
    if (!record.snapshot)
      throw new AgentvmError('SNAPSHOT_CORRUPT', `agent ${record.id} has no snapshot`);

    this.journal.transition(record.id, 'restoring', {});
    let vm: Vm;
    try {
      await this.options.policy?.prepare(record);
      const spec = this.vmSpec(record, this.options.loadImage());
      vm = await this.log.timed('vm.restore', { agentId: record.id }, () =>
        this.options.driver.restore(spec, record.snapshot!),
      );
    } catch (error) {
      if (error instanceof AgentvmError && error.code === 'SNAPSHOT_CORRUPT') {
        this.journal.fail(record.id, error.message);
      } else {
        this.journal.transition(record.id, 'awaiting_review', {
          stateReason: `restore failed: ${describe(error)}`,
        });
      }
      throw error;
    }

    this.store.updateAgent(record.id, { vmPid: vm.pid, accel: vm.accel });
    this.attachVm(record.id, vm);
    this.syncGuest(vm);
    // Once the restored VM runs, its disk moves on: the old memory image must never be used again.
    this.removeSnapshot(record);
    this.store.updateAgent(record.id, { snapshot: null });
    this.journal.append(record.id, {
      kind: 'info',
      message: `VM restored from its snapshot (pid ${vm.pid})`,
    });
    this.journal.transition(record.id, 'reviewing', { stateReason: null });
  }

  private async finish(id: string, result: Extract<GuestEvent, { kind: 'result' }>): Promise<void> {
    const files = this.resultFiles(id);
    fs.writeFileSync(files.bundle, Buffer.from(result.bundle, 'base64'));
    fs.writeFileSync(files.patch, result.patch);
    await this.stopVm(id);

    const record = this.journal.record(id);
    const summary = {
      headCommit: result.headCommit,
      commits: result.commits,
      exitCode: record.exitCode,
    };
    this.store.updateAgent(id, { result: summary, vmPid: null });
    if (record.exitCode === 0) {
      this.journal.transition(id, 'done', { endedAt: Date.now(), stateReason: null, review: null });
    } else {
      this.journal.transition(id, 'failed', {
        endedAt: Date.now(),
        stateReason: `agent command exited with code ${record.exitCode}`,
        review: null,
      });
    }
  }

  private onVmExited(
    id: string,
    live: LiveVm,
    exit: { code: number | null; signal: string | null; consoleTail: string[] },
  ): void {
    if (this.live.get(id) !== live || live.expectedExit || this.closing) return;

    this.detachVm(id);
    const how = exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
    const tail = exit.consoleTail.slice(-10).join('\n');
    this.journal.fail(
      id,
      `the VM ${how} unexpectedly${tail ? `; last console lines:\n${tail}` : ''}`,
    );
  }

  // ---- limits

  private armTimeLimit(id: string): void {
    const record = this.journal.record(id);
    const policy = this.options.policy;
    const limitMs = policy
      ? policy.msUntilLimit(record, this.liveMs(id))
      : record.profileSpec.timeLimitMs;
    if (!limitMs) return;

    this.clearTimeLimit(id);
    const armedAt = Date.now();
    const timer = setTimeout(() => void this.onTimeLimit(id, limitMs, armedAt), limitMs);
    timer.unref();
    this.limitTimers.set(id, timer);
  }

  private clearTimeLimit(id: string): void {
    clearTimeout(this.limitTimers.get(id));
    this.limitTimers.delete(id);
  }

  private async onTimeLimit(id: string, limitMs: number, armedAt: number): Promise<void> {
    const record = this.journal.record(id);
    if (record.state !== 'running') return;

    // The timer ran its whole course, so at least limitMs passed even if the clock reads 1 ms less.
    const hit = this.options.policy?.limitReached(
      record,
      Math.max(Date.now() - armedAt, limitMs),
      this.liveMs(id),
    );
    if (this.options.policy && !hit) return this.armTimeLimit(id);

    const minutes = Math.round(limitMs / 6000) / 10;
    const message = hit?.message ?? `time limit of ${minutes} min reached`;
    if (hit) this.options.policy?.limitHit(record, hit, this.liveMs(id));
    this.journal.append(id, {
      kind: 'limit',
      message,
      data: { limit: hit?.limit ?? 'time', limitMs, used: hit?.used, allowed: hit?.allowed },
    });
    if ((hit?.action ?? record.profileSpec.onLimit) === 'stop') {
      await this.locks.run(id, async () => {
        await this.stopVm(id);
        this.journal.transition(id, 'failed', { endedAt: Date.now(), stateReason: message });
      });
      return;
    }

    // Pausing for a limit uses the review path without a guest request: resume just continues.
    await this.locks.run(id, () =>
      this.pauseForReview(id, '', `${message}; resume to grant it the same again`),
    );
  }

  /** Milliseconds the agent's current VM has been running; 0 when it has none. */
  private liveMs(id: string): number {
    const live = this.live.get(id);
    return live ? Date.now() - live.runningSince : 0;
  }

  // ---- helpers

  private attachVm(id: string, vm: Vm): void {
    const live: LiveVm = {
      vm,
      expectedExit: false,
      runningSince: Date.now(),
      dispose: () => subscription.dispose(),
    };
    const subscription = vm.channel.onMessage((message) => this.onGuestMessage(id, message));
    void vm.exited.then((exit) => this.onVmExited(id, live, exit));
    this.live.set(id, live);
  }

  private detachVm(id: string): void {
    const live = this.live.get(id);
    if (!live) return;

    this.live.delete(id);
    this.clearTimeLimit(id);
    live.dispose();
    live.vm.channel.close();
    const seconds = (Date.now() - live.runningSince) / 1000;
    const record = this.store.getAgent(id);
    if (record) this.store.updateAgent(id, { vmSeconds: record.vmSeconds + seconds });
  }

  private async stopVm(id: string): Promise<void> {
    const live = this.live.get(id);
    if (!live) return;

    live.expectedExit = true;
    await this.log.timed('vm.stop', { agentId: id }, () => live.vm.stop());
    this.detachVm(id);
  }

  private syncGuest(vm: Vm): void {
    vm.channel.send({
      type: 'sync',
      timeMs: Date.now(),
      entropy: randomBytes(64).toString('base64'),
    });
  }

  private vmSpec(record: AgentRecord, image: GuestImage): VmSpec & { lastSeq: number } {
    return {
      id: record.id,
      vmDir: agentDir(record.id, this.options.dataDir),
      image,
      memoryMiB: record.profileSpec.memoryMiB,
      vcpus: record.profileSpec.vcpus,
      bootTimeoutMs: record.profileSpec.bootTimeoutMs,
      lastSeq: record.guestSeq,
      egress: this.options.policy?.egress(record.id),
    };
  }

  private removeSnapshot(record: AgentRecord): void {
    if (record.snapshot) fs.rmSync(record.snapshot.statePath, { force: true });
  }

  private requireLive(id: string): LiveVm {
    const live = this.live.get(id);
    if (!live) throw new AgentvmError('GUEST_UNREACHABLE', `agent ${id} has no running VM`);

    return live;
  }
}

function newAgentId(): string {
  // 10 characters of base32: short enough to type, enough to never collide on one broker.
  const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789';
  return [...randomBytes(10)].map((byte) => alphabet[byte % alphabet.length]).join('');
}

function firstLine(text: string): string {
  return text
    .trim()
    .split('\n')[0]
    .replace(/^#+\s*/, '');
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
