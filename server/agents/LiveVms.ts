import { randomBytes } from 'node:crypto';
import type { GuestMessage } from '../../protocol/control';
import { AgentvmError } from '../../protocol/errors';
import type { Logger } from '../log';
import type { Store } from '../store/Store';
import type { Vm, VmExit } from '../vmm/VmmDriver';

/** An agent's running VM as the broker watches it. */
export interface LiveVm {
  vm: Vm;
  /** Set before a stop or snapshot, so the process ending is not reported as a failure. */
  expectedExit: boolean;
  /** Since when this VM's time is not yet in the agent's `vmSeconds` (epoch milliseconds). */
  runningSince: number;
  dispose(): void;
}

export interface LiveVmsOptions {
  store: Store;
  log: Logger;
  /** A control-channel message from an agent's guest. */
  onMessage(agentId: string, message: GuestMessage): void;
  /** The VM of an agent ended while attached, with no stop or snapshot asking it to. */
  onUnexpectedExit(agentId: string, exit: VmExit): void;
  /** The broker stopped watching an agent's VM (its limit timer must go with it). */
  onDetached(agentId: string): void;
}

/**
 * The registry of agents' live VMs: attaching one subscribes to its guest messages and its exit.
 * When the VM ends ({@link ended}) the broker stops watching it, charges the VM-seconds it ran to
 * the agent's record and forgets its pid. A VM left running for the next broker
 * ({@link leaveRunning}) is not charged: the broker that sees it end charges its whole run,
 * from when it began (see recoverAgents), so no second is charged twice or lost in between.
 */
export class LiveVms {
  private readonly live = new Map<string, LiveVm>();

  constructor(private readonly options: LiveVmsOptions) {}

  get(agentId: string): LiveVm | undefined {
    return this.live.get(agentId);
  }

  has(agentId: string): boolean {
    return this.live.has(agentId);
  }

  /** Ids of the agents that have a live VM. */
  agentIds(): string[] {
    return [...this.live.keys()];
  }

  /** The agent's live VM; GUEST_UNREACHABLE when it has none. */
  require(agentId: string): LiveVm {
    const live = this.live.get(agentId);
    if (!live) throw new AgentvmError('GUEST_UNREACHABLE', `agent ${agentId} has no running VM`);

    return live;
  }

  /**
   * Watches the agent's VM. `runningSince` is when it began to run: now for a VM just started or
   * restored, earlier for one a broker restart left running (its run is charged from then).
   */
  attach(agentId: string, vm: Vm, runningSince = Date.now()): void {
    const live: LiveVm = {
      vm,
      expectedExit: false,
      runningSince,
      dispose: () => subscription.dispose(),
    };
    const subscription = vm.channel.onMessage((message) =>
      this.options.onMessage(agentId, message),
    );
    void vm.exited.then((exit) => {
      if (this.live.get(agentId) !== live || live.expectedExit) return;

      this.options.onUnexpectedExit(agentId, exit);
    });
    this.live.set(agentId, live);
  }

  /**
   * The agent's VM process has ended (or is ending: a snapshot was written, a stop was asked):
   * stops watching it, charges its VM-seconds and clears its pid from the record.
   */
  ended(agentId: string): void {
    const live = this.forget(agentId);
    if (!live) return;

    const seconds = Math.max(0, Date.now() - live.runningSince) / 1000;
    const record = this.options.store.getAgent(agentId);
    if (record) {
      this.options.store.updateAgent(agentId, {
        vmSeconds: record.vmSeconds + seconds,
        vmPid: null,
      });
    }
  }

  /**
   * Stops watching the agent's VM and leaves it running for the next broker to reattach; its run
   * is charged by the broker that sees it end.
   */
  leaveRunning(agentId: string): void {
    this.forget(agentId);
  }

  private forget(agentId: string): LiveVm | undefined {
    const live = this.live.get(agentId);
    if (!live) return undefined;

    this.live.delete(agentId);
    this.options.onDetached(agentId);
    live.dispose();
    // Every connection, not only the control channel: a monitor connection left open keeps this
    // process alive after shutdown and keeps the next broker from attaching (QEMU serves one QMP
    // client at a time).
    live.vm.detach();
    return live;
  }

  /** Ends the agent's VM (if it has one); see {@link ended}. */
  async stop(agentId: string): Promise<void> {
    const live = this.live.get(agentId);
    if (!live) return;

    live.expectedExit = true;
    await this.options.log.timed('vm.stop', { agentId }, () => live.vm.stop());
    this.ended(agentId);
  }

  /** Milliseconds the agent's current VM has been running; 0 when it has none. */
  liveMs(agentId: string): number {
    const live = this.live.get(agentId);
    return live ? Date.now() - live.runningSince : 0;
  }

  /**
   * Sets a fresh or restored guest's clock and reseeds its entropy: a restored guest wakes with
   * the time and random state of the moment it was saved.
   */
  sync(vm: Vm): void {
    vm.channel.send({
      type: 'sync',
      timeMs: Date.now(),
      entropy: randomBytes(64).toString('base64'),
    });
  }
}
