import { INCOMING_FD } from './QemuProcess';
import type { QmpClient } from './QmpClient';
import { waitForMigration } from './waitForMigration';

/**
 * Load the snapshot into a QEMU started with `-incoming defer` and the snapshot's state file as
 * descriptor {@link INCOMING_FD}, with the capabilities it was saved with, and wait until the
 * migration completed (the guest stays paused).
 */
export async function loadSnapshot(
  qmp: QmpClient,
  capabilities: string[],
  deadline: number,
): Promise<void> {
  if (capabilities.length > 0) {
    const list = capabilities.map((capability) => ({ capability, state: true }));
    await qmp.execute('migrate-set-capabilities', { capabilities: list });
  }

  // QEMU inherited the open state file as this descriptor (see startQemu) and closes it once the
  // load is done. `exec:cat` would cost a shell and a `cat` forked from QEMU, ≈5 ms of each start.
  await qmp.execute('migrate-incoming', { uri: `fd:${INCOMING_FD}` });
  await waitForMigration(qmp, deadline);
}
