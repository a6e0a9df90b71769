import type { QmpClient } from './QmpClient';

const POLL_INTERVAL_MS = 5;

interface MigrationInfo {
  status?: string;
  'error-desc'?: string;
}

/**
 * Poll `query-migrate` until the migration (outgoing, or incoming on a `-incoming defer` QEMU)
 * completes. Throws when it fails, is cancelled, or is still running at `deadline` (epoch ms).
 */
export async function waitForMigration(qmp: QmpClient, deadline: number): Promise<void> {
  for (;;) {
    const info = await qmp.execute<MigrationInfo>('query-migrate');
    if (info.status === 'completed') return;

    if (info.status === 'failed' || info.status === 'cancelled') {
      throw new Error(
        `migration ${info.status}${info['error-desc'] ? `: ${info['error-desc']}` : ''}`,
      );
    }

    if (Date.now() + POLL_INTERVAL_MS > deadline) {
      throw new Error(`migration still ${info.status ?? 'not started'} at its deadline`);
    }

    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}
