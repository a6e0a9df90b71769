import type { Agent, AgentState, Profile, RepoInfo } from '../../protocol/api';
import type { SnapshotInfo } from '../vmm/VmmDriver';
import type { AgentRecord } from './Store';

/** A row as better-sqlite3 reads and writes it: column name to value. */
export type Row = Record<string, unknown>;

/** The `agents` row of a record, JSON columns serialized. */
export function toAgentRow(agent: AgentRecord): Row {
  return {
    id: agent.id,
    owner: agent.owner,
    title: agent.title,
    text: agent.text,
    profile: agent.profile,
    profile_json: JSON.stringify(agent.profileSpec),
    state: agent.state,
    state_reason: agent.stateReason,
    created_at: agent.createdAt,
    updated_at: agent.updatedAt,
    ended_at: agent.endedAt,
    repo_json: JSON.stringify(agent.repo),
    review_json: agent.review ? JSON.stringify(agent.review) : null,
    last_progress: agent.lastProgress,
    last_output_json: JSON.stringify(agent.lastOutput),
    result_json: agent.result ? JSON.stringify(agent.result) : null,
    boot_path: agent.bootPath,
    accel: agent.accel,
    vm_pid: agent.vmPid,
    guest_seq: agent.guestSeq,
    snapshot_json: agent.snapshot ? JSON.stringify(agent.snapshot) : null,
    exit_code: agent.exitCode,
    issue_ref: agent.issueRef,
    vm_seconds: agent.vmSeconds,
  };
}

/** The record an `agents` row holds. */
export function fromAgentRow(row: Row): AgentRecord {
  const json = <T>(value: unknown): T | null =>
    value == null ? null : (JSON.parse(String(value)) as T);
  return {
    id: String(row.id),
    owner: String(row.owner),
    title: String(row.title),
    text: String(row.text),
    profile: String(row.profile),
    profileSpec: json<Profile>(row.profile_json)!,
    state: row.state as AgentState,
    stateReason: (row.state_reason as string | null) ?? null,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    endedAt: row.ended_at == null ? null : Number(row.ended_at),
    repo: json<RepoInfo>(row.repo_json)!,
    review: json(row.review_json),
    lastProgress: (row.last_progress as string | null) ?? null,
    lastOutput: json<string[]>(row.last_output_json) ?? [],
    result: json(row.result_json),
    bootPath: (row.boot_path as Agent['bootPath']) ?? null,
    accel: (row.accel as Agent['accel']) ?? null,
    vmPid: row.vm_pid == null ? null : Number(row.vm_pid),
    guestSeq: Number(row.guest_seq),
    snapshot: json<SnapshotInfo>(row.snapshot_json),
    exitCode: row.exit_code == null ? null : Number(row.exit_code),
    issueRef: (row.issue_ref as string | null) ?? null,
    vmSeconds: Number(row.vm_seconds ?? 0),
  };
}
