import fs from 'node:fs';
import path from 'node:path';
import { agentDir } from '../config/paths';
import type { Vm } from '../vmm/VmmDriver';
import type { TemplateManager } from '../vmm/templates/TemplateManager';
import { describeError, type AgentContext } from './AgentContext';
import { agentTask, agentVmSpec, prepareTaskRepo } from './agentVmSpec';
import type { LiveVms } from './LiveVms';
import type { SpareVms } from './SpareVms';
import { startAgentVm } from './startAgentVm';
import type { TimeLimits } from './TimeLimits';

/** The state reason of an agent whose start a stopping broker called off. */
export const REQUEUED_AT_SHUTDOWN = 'requeued: the broker stopped while its VM was starting';

/** Why a start was called off for its agent alone: the user cancelled or removed it. */
class StartCalledOff extends Error {}

/**
 * Starts queued agents (queued → starting → running), at most `maxConcurrentBoots` at a time
 * because boots are CPU-bound under TCG; each finished start lets the next queued agent go.
 * Every start in flight can be called off ({@link cancelAll}) when the broker stops.
 */
export class BootQueue {
  private activeBoots = 0;
  private closed = false;
  /** Whether the directories of the agents queued at this broker's start were looked at. */
  private leftoversEnded = false;
  /** Starts under way (or waiting for their agent's lock), by agent id. */
  private readonly inFlight = new Map<string, { abort: AbortController; settled: Promise<void> }>();

  constructor(
    private readonly context: AgentContext,
    private readonly vms: LiveVms,
    private readonly limits: TimeLimits,
    private readonly templates: TemplateManager | undefined,
    private readonly spares?: SpareVms,
  ) {}

  /**
   * Starts as many queued agents as the boot limit allows. None starts while the store cannot
   * write (its file system is full): a VM needs disk too, and a start failing for that would end
   * a queued agent that can simply wait; the manager pumps again once the store writes.
   */
  pump(): void {
    const { options, store, locks, log } = this.context;
    if (this.closed || store.writeFailure) return;

    const limit = options.maxConcurrentBoots ?? Number(process.env.AGENTVM_MAX_BOOTS ?? 2);
    const queued = store.agentsInStates(['queued']);
    if (!this.leftoversEnded) {
      this.leftoversEnded = true;
      // Before any start: each takes the agent's lock first, so a start there waits for it.
      for (const record of queued) void this.endLeftover(record.id);
    }
    for (const record of queued) {
      if (this.activeBoots >= limit) return;
      if (this.inFlight.has(record.id)) continue;

      this.activeBoots++;
      const abort = new AbortController();
      const settled = locks
        .run(record.id, () => this.start(record.id, abort.signal))
        .catch((error: unknown) =>
          log.error('agent.start_unhandled', { agentId: record.id, error: describeError(error) }),
        )
        .finally(() => {
          this.inFlight.delete(record.id);
          this.activeBoots--;
          this.pump();
        });
      this.inFlight.set(record.id, { abort, settled });
    }
  }

  /** Starts no more agents (the broker is shutting down). */
  close(): void {
    this.closed = true;
  }

  /**
   * Calls off the start of agent `id`, if one is under way, and resolves once it settled: its VM
   * (if it got one) is stopped and the agent stays where the start left it, for the caller (a
   * cancel or a removal) to end. Without this they waited for the agent's lock until the VM was
   * ready or its boot timed out. Call it before taking the agent's lock, which the start holds.
   */
  async callOff(id: string, reason: string): Promise<void> {
    const start = this.inFlight.get(id);
    if (!start) return;

    start.abort.abort(new StartCalledOff(reason));
    await start.settled;
  }

  /**
   * Closes the queue and calls off every start in flight, then waits for them to settle, at most
   * `timeoutMs` milliseconds. Resolves true when all of them did.
   */
  async cancelAll(timeoutMs: number): Promise<boolean> {
    this.close();
    const starts = [...this.inFlight.values()];
    if (starts.length === 0) return true;

    for (const start of starts) start.abort.abort(new Error('the broker is stopping'));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const settled = Promise.all(starts.map((start) => start.settled)).then(() => true as const);
    try {
      return await Promise.race([settled, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async start(id: string, signal: AbortSignal): Promise<void> {
    const { journal, options, store, log } = this.context;
    const queued = journal.record(id);
    if (queued.state !== 'queued' || signal.aborted) return;

    const record = journal.transition(id, 'starting', { stateReason: null });
    let vm: Vm | undefined;
    let taskRepo: ReturnType<typeof prepareTaskRepo> | undefined;
    try {
      const image = options.loadImage();
      await options.policy?.prepare(record);
      signal.throwIfAborted();
      const spec = agentVmSpec(options, record, image);
      await this.spares?.releaseOutdated(id);
      if (!options.driver.hasSpare?.(spec.vmDir)) {
        // A queued agent has no VM. What runs in its directory anyway is a spare VM start (see
        // SpareVms) claimed before a broker stopped, or a start a stopping broker could not end.
        await options.driver.stopLeftover?.(spec.vmDir);
        fs.rmSync(path.join(spec.vmDir, 'overlay.qcow2'), { force: true });
      }
      // The host checks the repository out while the VM starts; it never rejects.
      taskRepo = prepareTaskRepo(options, record);
      const started = await log.timed('vm.start', { agentId: id }, () =>
        startAgentVm(options.driver, this.templates, spec, log, signal),
      );
      vm = started.vm;
      const { bootPath, reason, durationMs } = started;
      if (started.template) {
        this.spares?.replenishSoon({ ...record.profileSpec, image }, started.template);
      }
      store.updateAgent(id, { vmPid: vm.pid, accel: vm.accel, bootPath });
      const how = bootPath === 'template' ? 'from a template' : 'after a cold boot';
      journal.append(id, {
        kind: 'info',
        message: `VM ready ${how} in ${durationMs} ms (${vm.accel}): ${reason}`,
        data: { durationMs, bootPath, reason },
      });
      this.vms.attach(id, vm);

      this.vms.sync(vm);
      const { repo, message } = await taskRepo;
      signal.throwIfAborted();
      journal.append(id, { kind: 'info', message, data: { repo: repo.kind } });
      vm.channel.send({ type: 'task', task: agentTask(options, journal.record(id), repo) });
      journal.transition(id, 'running', {});
      this.limits.arm(id);
    } catch (error) {
      if (signal.reason instanceof StartCalledOff) await this.stopCalledOff(id, vm, signal.reason);
      else if (signal.aborted) await this.requeue(id, vm);
      else {
        if (this.vms.has(id)) await this.vms.stop(id).catch(() => undefined);
        journal.fail(id, describeError(error));
      }

      // The checkout runs git in the agent's directory: a start settles only once it is done, so
      // neither a shutdown nor a removal of the agent races with it. It never rejects.
      await taskRepo;
    } finally {
      // A spare claimed for this agent and not used (the start cold-booted, or failed first).
      await this.spares?.release(id);
    }
  }

  /**
   * A queued agent has no VM, so a QEMU in its directory when this broker starts is a spare a
   * killed broker had claimed for it. Its start would end it, but a long queue delays that and a
   * cancel never comes to it: the QEMU would stay, paused and unknown to any broker, until the
   * agent is removed. Run under the agent's lock, so it never races a start there.
   */
  private endLeftover(id: string): Promise<void> {
    const { locks, options, log } = this.context;
    const dir = agentDir(id, options.dataDir);
    return locks
      .run(id, async () => {
        if (!options.driver.hasSpare?.(dir)) await options.driver.stopLeftover?.(dir);
      })
      .catch((error: unknown) =>
        log.warn('agent.queued_leftover_kept', { agentId: id, error: describeError(error) }),
      );
  }

  /** A start its agent's cancel or removal called off: its VM goes, the caller ends the agent. */
  private async stopCalledOff(id: string, vm: Vm | undefined, reason: Error): Promise<void> {
    if (this.vms.has(id)) await this.vms.stop(id).catch(() => undefined);
    else await vm?.stop().catch(() => undefined);

    this.context.journal.append(id, {
      kind: 'info',
      message: `the VM start was called off (${reason.message})${vm ? `; its VM (pid ${vm.pid}) was stopped` : ''}`,
    });
  }

  /**
   * A start called off by a stopping broker. Its VM never got its task, so the next broker could
   * not adopt it (recovery reattaches only VMs whose agent runs): the QEMU this start launched is
   * ended here, by the process it holds, and the agent goes back to `queued` so that the next
   * broker starts it from scratch; booting is idempotent. Leaving it `starting` would also be
   * requeued by recovery, but only after killing whatever pid the record names, and with a VM
   * process and its sockets outliving this broker in the meantime.
   */
  private async requeue(id: string, vm: Vm | undefined): Promise<void> {
    const { journal, log } = this.context;
    if (this.vms.has(id)) await this.vms.stop(id).catch(() => undefined);
    else await vm?.stop().catch(() => undefined);

    log.info('agent.start_cancelled', { agentId: id, vmPid: vm?.pid ?? null });
    journal.append(id, {
      kind: 'info',
      message: `the broker stopped while this agent's VM was starting; ${vm ? `its VM (pid ${vm.pid}) was stopped and ` : ''}the agent is queued for the next broker`,
    });
    journal.transition(id, 'queued', { vmPid: null, stateReason: REQUEUED_AT_SHUTDOWN });
  }
}
