import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../log';
import { isDiskFullError } from '../../store/storeFullError';
import type { EgressAgent } from './EgressAgent';
import { refuse, refuseSocket } from './refuse';

/**
 * Runs a request handler so that its failure refuses that one request instead of ending the
 * broker (an exception in a server's event handler, or a rejected promise nobody awaits, would).
 * The usual failure is the audit log's write on a full disk: what cannot be audited does not
 * leave the VM, so the request is refused before anything is sent upstream.
 */
export function guarded(
  agent: EgressAgent,
  client: http.ServerResponse | Duplex,
  log: Logger | undefined,
  handle: () => void | Promise<void>,
): void {
  const fail = (error: unknown) => {
    const diskFull = isDiskFullError(error);
    const reason = diskFull
      ? 'the broker cannot write its audit log (its disk is full), so nothing leaves the VM until it can'
      : `the egress proxy failed: ${(error as Error).message}`;
    log?.error('egress.handler_failed', { agentId: agent.id, error: (error as Error).message });
    const status = diskFull ? 503 : 502;
    if (client instanceof http.ServerResponse) {
      if (client.headersSent) client.destroy();
      else refuse(client, status, reason);
    } else if (!client.destroyed) {
      refuseSocket(client, status, reason);
    }
  };

  try {
    const pending = handle();
    if (pending) pending.catch(fail);
  } catch (error) {
    fail(error);
  }
}
