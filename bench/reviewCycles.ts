import { randomBytes } from 'node:crypto';
import type { GuestEvent, GuestTask } from '../protocol/control';
import { writtenMemoryBytes } from '../server/vmm/qemu/SparseMemoryFile';
import type { VmmDriver, Vm, VmSpec } from '../server/vmm/VmmDriver';

/** Figures of one review cycle, in milliseconds. */
export interface ReviewCycle {
  /** Snapshot written and QEMU ended (the pause a reviewer waits through before nothing). */
  pauseMs: number;
  /** The state file, and the guest RAM written apart from it (0 when it is in the state file). */
  stateBytes: number;
  memoryBytes: number;
  /** From the start of the restore until the guest applied the clock and entropy. */
  syncedMs: number;
  /** From the start of the restore until the agent printed its next line after the answer. */
  runningAgainMs: number;
  vm: Vm;
}

/**
 * A task whose agent asks for review `cycles` times and prints `resumed N` after each answer: the
 * way an agent waits on a human, so the pause happens where the broker's does (on the `review`
 * event, with `agentctl review` blocked in the guest), not in the middle of some other work.
 */
export function reviewingTask(base: GuestTask, cycles: number): GuestTask {
  const command = `for n in $(seq 1 ${cycles}); do agentctl review "bench pause $n" >/dev/null && echo "resumed $n"; done`;
  return { ...base, command };
}

/**
 * Start `task` in `vm`, then run its review cycles as the broker does: on each `review` event
 * snapshot the VM (pause), restore it (resume from review), `sync`, send the reviewer's answer,
 * and wait for the agent's next line. Returns one figure set per cycle; the last VM is in
 * `vm` of the last cycle (running, for the caller to stop).
 */
export async function reviewCycles(
  driver: VmmDriver,
  spec: VmSpec,
  first: Vm,
  task: GuestTask,
  cycles: number,
  onVm: (vm: Vm | undefined, previous: Vm) => void,
): Promise<ReviewCycle[]> {
  let vm = first;
  acknowledgeEvents(vm);
  let review = nextEvent(vm, (event) => event.kind === 'review');
  vm.channel.send({ type: 'sync', timeMs: Date.now(), entropy: entropy() });
  vm.channel.send({ type: 'task', task });

  const figures: ReviewCycle[] = [];
  for (let cycle = 1; cycle <= cycles; cycle++) {
    const request = await review;
    if (request.kind !== 'review') throw new Error('expected a review event');

    const pausedAt = performance.now();
    const snapshot = await vm.snapshot();
    const pauseMs = performance.now() - pausedAt;
    onVm(undefined, vm);

    const restoredAt = performance.now();
    const restored = await driver.restore(spec, snapshot);
    onVm(restored, vm);
    vm = restored;
    acknowledgeEvents(vm);
    const synced = nextMessage(vm, 'synced');
    const resumed = nextEvent(
      vm,
      (event) => event.kind === 'output' && event.text.includes(`resumed ${cycle}`),
    );
    review = nextEvent(vm, (event) => event.kind === 'review');
    vm.channel.send({ type: 'sync', timeMs: Date.now(), entropy: entropy() });
    await synced;
    const syncedMs = performance.now() - restoredAt;
    vm.channel.send({ type: 'review-answer', requestId: request.requestId, message: 'go on' });
    await resumed;
    const runningAgainMs = performance.now() - restoredAt;
    const memoryBytes = writtenMemoryBytes(snapshot.memory);
    const stateBytes = snapshot.sizeBytes;
    figures.push({ pauseMs, stateBytes, memoryBytes, syncedMs, runningAgainMs, vm });
  }
  return figures;
}

/** Acknowledge every guest event, as the broker does, so the guest's outbox never backs up. */
function acknowledgeEvents(vm: Vm): void {
  vm.channel.onMessage((message) => {
    if (message.type === 'event') vm.channel.send({ type: 'ack', seq: message.seq });
  });
}

/** The next guest event that matches; an `error` event fails it. */
function nextEvent(
  vm: Vm,
  matches: (event: GuestEvent) => boolean,
  timeoutMs = 120_000,
): Promise<GuestEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      subscription.dispose();
      reject(new Error(`no matching guest event within ${timeoutMs} ms`));
    }, timeoutMs);
    const subscription = vm.channel.onMessage((message) => {
      if (message.type !== 'event') return;

      if (message.event.kind === 'error') {
        clearTimeout(timer);
        subscription.dispose();
        reject(new Error(`guest task failed: ${message.event.message}`));
      } else if (matches(message.event)) {
        clearTimeout(timer);
        subscription.dispose();
        resolve(message.event);
      }
    });
    void vm.exited.then(() => clearTimeout(timer));
  });
}

function nextMessage(vm: Vm, type: 'synced', timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      subscription.dispose();
      reject(new Error(`no '${type}' within ${timeoutMs} ms`));
    }, timeoutMs);
    const subscription = vm.channel.onMessage((message) => {
      if (message.type !== type) return;

      clearTimeout(timer);
      subscription.dispose();
      resolve();
    });
  });
}

function entropy(): string {
  return randomBytes(64).toString('base64');
}
