import fs from 'node:fs';
import path from 'node:path';
import type { GuestTask } from '../../protocol/control';
import { agentDir } from '../config/paths';
import type { AgentRecord } from '../store/Store';
import type { GuestImage, VmSpec } from '../vmm/VmmDriver';
import type { AgentManagerOptions } from './AgentManager';

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

/** The task sent to a freshly started guest: the repository bundle, command, env and files. */
export function agentTask(options: AgentManagerOptions, record: AgentRecord): GuestTask {
  const bundle = fs.readFileSync(path.join(agentDir(record.id, options.dataDir), 'repo.bundle'));
  return {
    agentId: record.id,
    text: record.text,
    title: record.title,
    command: record.profileSpec.command,
    env: { ...record.profileSpec.env, ...options.policy?.guestEnv(record.id) },
    bundle: bundle.toString('base64'),
    baseCommit: record.repo.baseCommit,
    branch: record.repo.branch,
    timeLimitMs: 0,
    files: [...options.profiles.taskFiles(record.profile), ...(options.policy?.guestFiles() ?? [])],
  };
}
