import type { BrokerClient } from '../../../client/BrokerClient';
import { AgentvmError } from '../../../protocol/errors';

/**
 * Runs `fetch` (a request for agent `id`'s result). The broker answers RESULT_NOT_READY, "no
 * result yet", for any agent without one; for an agent that failed or was cancelled that reads as
 * if waiting would help, so the error is said again for its state: it has none and never will.
 */
export async function explainMissingResult<T>(
  client: BrokerClient,
  id: string,
  fetch: () => Promise<T>,
): Promise<T> {
  try {
    return await fetch();
  } catch (error) {
    if (!(error instanceof AgentvmError) || error.code !== 'RESULT_NOT_READY') throw error;

    const state = (await client.getAgent(id).catch(() => undefined))?.state;
    if (state !== 'failed' && state !== 'cancelled') throw error;

    const what = state === 'failed' ? 'failed' : 'was cancelled';
    throw new AgentvmError(
      'RESULT_NOT_READY',
      `agent ${id} ${what}, so it has no result and never will`,
      error.hint,
    );
  }
}
