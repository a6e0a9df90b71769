import fs from 'node:fs';
import path from 'node:path';
import type { TemplateManager } from '../vmm/templates/TemplateManager';
import { describeError, type AgentContext } from './AgentContext';
import { agentTask, agentVmSpec, prepareTaskRepo } from './agentVmSpec';
import type { LiveVms } from './LiveVms';
import { startAgentVm } from './startAgentVm';
import type { TimeLimits } from './TimeLimits';

/**
 * Starts queued agents (queued → starting → running), at most `maxConcurrentBoots` at a time
 * because boots are CPU-bound under TCG; each finished start lets the next queued agent go.
 */
export class BootQueue {
  private activeBoots = 0;
  private closed = false;

  constructor(
    private readonly context: AgentContext,
    private readonly vms: LiveVms,
    private readonly limits: TimeLimits,
    private readonly templates: TemplateManager | undefined,
  ) {}

  /** Starts as many queued agents as the boot limit allows. */
  pump(): void {
    if (this.closed) return;

    const { options, store, locks } = this.context;
    const limit = options.maxConcurrentBoots ?? Number(process.env.AGENTVM_MAX_BOOTS ?? 2);
    const queued = store.agentsInStates(['queued']);
    for (const record of queued) {
      if (this.activeBoots >= limit) return;

      this.activeBoots++;
      void locks
        .run(record.id, () => this.start(record.id))
        .finally(() => {
          this.activeBoots--;
          this.pump();
        });
    }
  }

  /** Starts no more agents (the broker is shutting down). */
  close(): void {
    this.closed = true;
  }

  private async start(id: string): Promise<void> {
    const { journal, options, store, log } = this.context;
    const queued = journal.record(id);
    if (queued.state !== 'queued') return;

    const record = journal.transition(id, 'starting', { stateReason: null });
    try {
      const image = options.loadImage();
      await options.policy?.prepare(record);
      const spec = agentVmSpec(options, record, image);
      fs.rmSync(path.join(spec.vmDir, 'overlay.qcow2'), { force: true });
      // The host checks the repository out while the VM starts; it never rejects.
      const taskRepo = prepareTaskRepo(options, record);
      const started = await log.timed('vm.start', { agentId: id }, () =>
        startAgentVm(options.driver, this.templates, spec, log),
      );
      const { vm, bootPath, reason, durationMs } = started;
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
      journal.append(id, { kind: 'info', message, data: { repo: repo.kind } });
      vm.channel.send({ type: 'task', task: agentTask(options, journal.record(id), repo) });
      journal.transition(id, 'running', {});
      this.limits.arm(id);
    } catch (error) {
      if (this.vms.has(id)) await this.vms.stop(id).catch(() => undefined);
      journal.fail(id, describeError(error));
    }
  }
}
