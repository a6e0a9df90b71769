import type http from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Requests one guest connection may have waiting behind the one being answered. Clients that
 * pipeline at all send a few; a deeper pipeline is a guest trying to get around the per-agent
 * connection limit, and its connection is closed.
 */
export const MAX_PIPELINED_REQUESTS = 16;

/** Per guest connection: the requests waiting for the one in progress to be answered. */
const waiting = new WeakMap<Duplex, Array<() => void>>();

/**
 * Starts handling a request once every earlier request on its connection has been answered, so a
 * guest connection carries one upstream exchange at a time. Node parses pipelined requests as fast
 * as they arrive and emits each at once: without this, one connection could open any number of
 * upstream connections, each with its own descriptor in the broker. Returns false, having closed
 * the connection, when more than {@link MAX_PIPELINED_REQUESTS} would wait.
 */
export function answerInTurn(
  request: http.IncomingMessage,
  response: http.ServerResponse,
  start: () => void,
): boolean {
  const socket = request.socket;
  const run = () => {
    // 'close' follows the end of the answer, or the connection's end, whichever comes first.
    response.once('close', () => {
      const next = waiting.get(socket)?.shift();
      if (next && !socket.destroyed) return next();

      waiting.delete(socket);
    });
    start();
  };

  const queue = waiting.get(socket);
  if (!queue) {
    waiting.set(socket, []);
    run();
    return true;
  }

  if (queue.length >= MAX_PIPELINED_REQUESTS) {
    socket.destroy();
    return false;
  }
  queue.push(run);
  return true;
}
