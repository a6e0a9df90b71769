import fs from 'node:fs';
import path from 'node:path';
import type { GuestTask } from '../../protocol/control';
import { agentDir } from '../config/paths';
import type { AgentRecord } from '../store/Store';
import type { GuestImage, VmSpec } from '../vmm/VmmDriver';
import type { AgentManagerOptions } from './AgentManager';
import { checkoutForGuest, MAX_GUEST_TREE_BYTES } from './checkoutForGuest';
import { loadProfileFiles } from './profileFileCopies';

/** The VM an agent runs in: its profile's shape, its directory, and its egress listener. */
export function agentVmSpec(
  options: AgentManagerOptions,
  record: AgentRecord,
  image: GuestImage,
): VmSpec & { lastSeq: number } {
  return {
    id: record.id,
    vmDir: agentDir(record.id, options.dataDir),
    image,
    memoryMiB: record.profileSpec.memoryMiB,
    vcpus: record.profileSpec.vcpus,
    bootTimeoutMs: record.profileSpec.bootTimeoutMs,
    lastSeq: record.guestSeq,
    egress: options.policy?.egress(record.id),
  };
}

/** How the repository goes to the guest, and a line for the agent's event log saying so. */
export interface TaskRepo {
  repo: GuestTask['repo'];
  message: string;
}

/**
 * Check the agent's repository out on the host for its guest; never rejects: when the checkout is
 * too large or fails, the guest gets the bundle and clones it itself (slower, same result).
 */
export async function prepareTaskRepo(
  options: AgentManagerOptions,
  record: AgentRecord,
): Promise<TaskRepo> {
  const dir = agentDir(record.id, options.dataDir);
  const bundlePath = path.join(dir, 'repo.bundle');
  const bundle = (reason: string): TaskRepo => ({
    repo: { kind: 'bundle', data: fs.readFileSync(bundlePath).toString('base64') },
    message: `workspace: ${reason}; the VM clones the repository bundle`,
  });
  try {
    const checkout = await checkoutForGuest(
      bundlePath,
      record.repo.baseCommit,
      record.repo.branch,
      dir,
    );
    if (checkout.kind === 'too-large') {
      return bundle(`the checkout is over ${describeSize(MAX_GUEST_TREE_BYTES)}`);
    }

    return {
      repo: { kind: 'tree', entries: checkout.entries },
      message: `workspace: checked out by the broker (${checkout.files} files, ${describeSize(checkout.bytes)})`,
    };
  } catch (error) {
    return bundle(`the broker's checkout failed (${(error as Error).message})`);
  }
}

/** The task sent to a freshly started guest: the repository, command, env and files. */
export function agentTask(
  options: AgentManagerOptions,
  record: AgentRecord,
  repo: GuestTask['repo'],
): GuestTask {
  return {
    agentId: record.id,
    text: record.text,
    title: record.title,
    command: record.profileSpec.command,
    env: { ...record.profileSpec.env, ...options.policy?.guestEnv(record.id) },
    repo,
    baseCommit: record.repo.baseCommit,
    branch: record.repo.branch,
    timeLimitMs: 0,
    files: [
      // Agents delegated before copies were kept read their profile's files now.
      ...(loadProfileFiles(agentDir(record.id, options.dataDir)) ??
        options.profiles.taskFiles(record.profileSpec)),
      ...(options.policy?.guestFiles() ?? []),
    ],
  };
}

function describeSize(bytes: number): string {
  return bytes < 2 ** 20 ? `${Math.ceil(bytes / 1024)} KiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
