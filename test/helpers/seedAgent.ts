import path from 'node:path';
import { storePath } from '../../server/config/paths';
import { Store, type AgentRecord } from '../../server/store/Store';
import { profileSchema } from '../../protocol/api';

/**
 * Writes an ended agent straight into a broker's store (before the broker starts), for tests that
 * need a valid agent id without booting a VM.
 */
export function seedEndedAgent(dataDir: string, id: string, owner: string, title = id): void {
  const now = Date.now();
  const record: AgentRecord = {
    id,
    title,
    text: title,
    profile: 'seeded',
    owner,
    state: 'failed',
    stateReason: 'seeded by the test',
    createdAt: now,
    updatedAt: now,
    endedAt: now,
    repo: {
      baseCommit: '0'.repeat(40),
      branch: 'main',
      uncommitted: [],
      uncommittedIncluded: false,
    },
    review: null,
    lastProgress: null,
    lastOutput: [],
    result: null,
    bootPath: null,
    accel: null,
    profileSpec: profileSchema.parse({ name: 'seeded', command: 'true' }),
    vmPid: null,
    guestSeq: 0,
    snapshot: null,
    exitCode: null,
    issueRef: null,
    vmSeconds: 0,
  };
  const store = new Store(storePath(path.resolve(dataDir)));
  try {
    store.insertAgent(record);
    store.appendEvent(id, { kind: 'state', message: 'failed: seeded by the test' });
  } finally {
    store.close();
  }
}
