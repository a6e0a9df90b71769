import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { GuestTask } from '../protocol/control';
import { checkoutForGuest } from '../server/agents/checkoutForGuest';
import type { Vm } from '../server/vmm/VmmDriver';

/**
 * A one-commit repository, checked out by the host as the broker does, as a task whose command
 * only prints a line.
 */
export async function benchTask(root: string): Promise<GuestTask> {
  const repo = path.join(root, 'repo');
  fs.mkdirSync(repo, { recursive: true });
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@invalid', ...args], {
      cwd: repo,
      encoding: 'utf8',
    }).trim();
  git('init', '-q', '-b', 'main');
  fs.writeFileSync(path.join(repo, 'README.md'), '# bench\n');
  git('add', 'README.md');
  git('commit', '-q', '-m', 'bench');
  const bundlePath = path.join(root, 'repo.bundle');
  git('bundle', 'create', '-q', bundlePath, 'main');
  const baseCommit = git('rev-parse', 'HEAD');
  const checkout = await checkoutForGuest(bundlePath, baseCommit, 'main', root);
  if (checkout.kind !== 'tree') throw new Error('the bench repository is too large for a tree');
  return {
    agentId: 'bench',
    text: 'bench',
    title: 'bench',
    command: 'echo agent running',
    env: {},
    repo: { kind: 'tree', entries: checkout.entries },
    baseCommit,
    branch: 'main',
    timeLimitMs: 0,
    files: [],
  };
}

/** Milliseconds (since `startedAt`) at which the guest reported each milestone. */
export interface Milestones {
  synced: number;
  /** The guest began writing the workspace. */
  checkout?: number;
  /** The guest is starting the agent command (its process is being spawned). */
  spawning?: number;
  /** The agent command ran: its first output reached the host. */
  running?: number;
  /** The same milestones by the guest's own clock (set by the sync), where the event carried it. */
  guest?: { checkout?: number; spawning?: number; running?: number };
}

/**
 * Send `sync` (and `task`, when given) the way the broker does right after `ready`, and wait for
 * `synced` and, with a task, the agent command's first output.
 */
export function untilMilestones(
  vm: Vm,
  startedAt: number,
  task?: GuestTask,
  timeoutMs = 60_000,
): Promise<Milestones> {
  return new Promise((resolve, reject) => {
    const seen: Partial<Milestones> = {};
    const at = () => Math.round(performance.now() - startedAt);
    const startedAtEpoch = Date.now() - (performance.now() - startedAt);
    const guest: NonNullable<Milestones['guest']> = {};
    const guestAt = (epochMs?: number) =>
      epochMs === undefined ? undefined : Math.round(epochMs - startedAtEpoch);
    const done = () => seen.synced !== undefined && (!task || seen.running !== undefined);
    const timer = setTimeout(() => {
      subscription.dispose();
      reject(
        new Error(`guest milestones incomplete after ${timeoutMs} ms: ${JSON.stringify(seen)}`),
      );
    }, timeoutMs);
    const subscription = vm.channel.onMessage((message) => {
      if (message.type === 'synced') seen.synced = at();
      if (message.type === 'event') {
        vm.channel.send({ type: 'ack', seq: message.seq });
        const event = message.event;
        if (event.kind === 'phase' && event.phase === 'checkout') {
          seen.checkout = at();
          guest.checkout = guestAt(message.at);
        }
        if (event.kind === 'phase' && event.phase === 'running') {
          seen.spawning = at();
          guest.spawning = guestAt(message.at);
        }
        if (event.kind === 'output' && seen.running === undefined) {
          seen.running = at();
          guest.running = guestAt(message.at);
          seen.guest = guest;
        }
        if (event.kind === 'error') {
          clearTimeout(timer);
          subscription.dispose();
          reject(new Error(`guest task failed: ${event.message}`));
          return;
        }
      }
      if (!done()) return;

      clearTimeout(timer);
      subscription.dispose();
      resolve(seen as Milestones);
    });
    vm.channel.send({
      type: 'sync',
      timeMs: Date.now(),
      entropy: randomBytes(64).toString('base64'),
    });
    if (task) vm.channel.send({ type: 'task', task });
  });
}
