import fs from 'node:fs';
import type { GuestEvent } from '../../protocol/control';
import type { AgentRecord } from '../store/Store';
import type { AgentJournal } from './AgentJournal';

type ResultEvent = Extract<GuestEvent, { kind: 'result' }>;

/**
 * Writes the guest's result (its commits as a bundle, and the patch) where the result API reads
 * them, each synced to disk: they are written before the store records the result and the guest
 * is told it arrived, so a record with a result always has its files.
 */
export function writeResultFiles(
  files: { bundle: string; patch: string },
  result: ResultEvent,
): void {
  writeFileSynced(files.bundle, Buffer.from(result.bundle, 'base64'));
  writeFileSynced(files.patch, result.patch);
}

/** What the record keeps of a result: the commits and how the agent command exited. */
export function resultSummary(
  result: ResultEvent,
  exitCode: number | null,
): NonNullable<AgentRecord['result']> {
  return { headCommit: result.headCommit, commits: result.commits, exitCode };
}

/**
 * Ends an agent whose result is stored (its VM already stopped): `done` when the agent command
 * exited with 0, else `failed` with how it ended.
 */
export function endWithResult(journal: AgentJournal, id: string): void {
  const record = journal.record(id);
  if (record.exitCode === 0) {
    journal.transition(id, 'done', { endedAt: Date.now(), stateReason: null, review: null });
    return;
  }

  journal.transition(id, 'failed', {
    endedAt: Date.now(),
    // No code: a signal ended the command (its `exit` entry names it).
    stateReason:
      record.exitCode === null
        ? 'agent command was ended by a signal'
        : `agent command exited with code ${record.exitCode}`,
    review: null,
  });
}

function writeFileSynced(file: string, data: string | Buffer): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
