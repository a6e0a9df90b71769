import type http from 'node:http';
import type { Duplex } from 'node:stream';

/** One connection's clock: what it runs for, and how many of its requests are being answered. */
interface HeaderClock {
  timer: NodeJS.Timeout | null;
  unanswered: number;
}

/**
 * Gives each request on `server`'s connections `timeoutMs` for its headers, counted from the
 * moment the connection reaches the server or the answer before it ends, and calls `onExpired`
 * with the connection when they have not all arrived by then. No clock runs while a request is
 * being answered, so a slow upstream (or pipelined requests waiting their turn) never trips it,
 * and `onExpired` never meets an answer in flight. Returns `release`, which stops a connection's
 * clock for good: for one that leaves HTTP (a CONNECT's, which becomes a tunnel).
 *
 * Node's own `headersTimeout` falls short twice. It runs only on connections a listening server
 * accepted, and an agent's inner server never listens: the proxy hands it the TLS connections it
 * terminated, where each header byte restarted the idle timeout. And on a kept-alive connection it
 * starts only with the next request's first byte: blank lines before a request are not part of
 * it, so a guest sending one every few seconds held the connection without end.
 */
export function enforceHeaderDeadline(
  server: http.Server,
  timeoutMs: number,
  onExpired: (socket: Duplex) => void,
): (socket: Duplex) => void {
  const clocks = new WeakMap<Duplex, HeaderClock>();

  const start = (socket: Duplex, clock: HeaderClock) => {
    clock.timer = setTimeout(() => {
      clock.timer = null;
      if (!socket.destroyed) onExpired(socket);
    }, timeoutMs);
  };
  const stop = (clock: HeaderClock | undefined) => {
    if (clock?.timer) clearTimeout(clock.timer);
    if (clock) clock.timer = null;
  };

  server.on('connection', (socket: Duplex) => {
    const clock: HeaderClock = { timer: null, unanswered: 0 };
    clocks.set(socket, clock);
    start(socket, clock);
    socket.once('close', () => stop(clock));
  });

  // Emitted once a request's headers are complete.
  server.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => {
    const socket = request.socket;
    const clock = clocks.get(socket);
    if (!clock) return;

    clock.unanswered++;
    stop(clock);
    response.once('close', () => {
      clock.unanswered--;
      if (clock.unanswered === 0 && !socket.destroyed && clocks.has(socket)) start(socket, clock);
    });
  });

  return (socket) => {
    stop(clocks.get(socket));
    clocks.delete(socket);
  };
}
