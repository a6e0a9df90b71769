import path from 'node:path';
import { storePath } from '../../server/config/paths';
import { Store } from '../../server/store/Store';
import { anAgentRecord } from './anAgentRecord';

/**
 * Writes an ended agent straight into a broker's store (before the broker starts), for tests that
 * need a valid agent id without booting a VM.
 */
export function seedEndedAgent(dataDir: string, id: string, owner: string, title = id): void {
  const now = Date.now();
  const record = anAgentRecord({
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
  });
  const store = new Store(storePath(path.resolve(dataDir)));
  try {
    store.insertAgent(record);
    store.appendEvent(id, { kind: 'state', message: 'failed: seeded by the test' });
  } finally {
    store.close();
  }
}
