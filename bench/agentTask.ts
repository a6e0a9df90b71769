import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { GuestTask } from '../protocol/control';
import type { Vm } from '../server/vmm/VmmDriver';

/** A one-commit repository bundled as a task whose command only prints a line. */
export function benchTask(root: string): GuestTask {
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
  return {
    agentId: 'bench',
    text: 'bench',
    title: 'bench',
    command: 'echo agent running',
    env: {},
    bundle: fs.readFileSync(bundlePath).toString('base64'),
    baseCommit: git('rev-parse', 'HEAD'),
    branch: 'main',
    timeLimitMs: 0,
    files: [],
  };
}

/** Milliseconds (since `startedAt`) at which the guest reported each milestone. */
export interface Milestones {
  synced: number;
  checkout?: number;
  running?: number;
}

/**
 * Send `sync` (and `task`, when given) the way the broker does right after `ready`, and wait for
 * `synced` and, with a task, the `running` phase (the agent command started).
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
        if (event.kind === 'phase' && event.phase !== 'exporting') seen[event.phase] = at();
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
