import type { SnapshotInfo } from '../VmmDriver';
import type { QmpClient } from './QmpClient';
import { waitForMigration } from './waitForMigration';

/**
 * Load `snapshot` into a QEMU started with `-incoming defer`, with the capabilities it was saved
 * with, and wait until the migration completed (the guest stays paused).
 */
export async function loadSnapshot(
  qmp: QmpClient,
  snapshot: SnapshotInfo,
  capabilities: string[],
  deadline: number,
): Promise<void> {
  if (capabilities.length > 0) {
    const list = capabilities.map((capability) => ({ capability, state: true }));
    await qmp.execute('migrate-set-capabilities', { capabilities: list });
  }

  // Reading through `cat` is safe (unlike writing): QEMU only stops it after taking all it needs.
  await qmp.execute('migrate-incoming', { uri: `exec:cat ${shellQuote(snapshot.statePath)}` });
  await waitForMigration(qmp, deadline);
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
