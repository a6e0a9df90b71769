import { randomBytes } from 'node:crypto';
import type { CreateAgentRequest, Profile } from '../../protocol/api';
import type { AgentRecord } from '../store/Store';

/** The record of an agent just accepted: queued, with nothing run yet. */
export function newAgentRecord(
  id: string,
  owner: string,
  request: CreateAgentRequest,
  profile: Profile,
  issueRef: string | undefined,
): AgentRecord {
  const now = Date.now();
  return {
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
}

/** A new agent id. */
export function newAgentId(): string {
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
