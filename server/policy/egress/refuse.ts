import http from 'node:http';
import type { Duplex } from 'node:stream';

/** Answers a proxied HTTP request with `status` and the reason, in the body and a header. */
export function refuse(response: http.ServerResponse, status: number, reason: string): void {
  const body = `agentvm egress proxy refused this request: ${reason}\n`;
  response.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'x-agentvm-egress': headerSafe(reason),
  });
  response.end(body);
}

/** Answers a CONNECT on its raw socket (no response object exists yet) and closes it. */
export function refuseSocket(socket: Duplex, status: number, reason: string): void {
  const body = `agentvm egress proxy refused this request: ${reason}\n`;
  const statusText = http.STATUS_CODES[status] ?? 'Error';
  socket.end(
    `HTTP/1.1 ${status} ${statusText}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `X-Agentvm-Egress: ${headerSafe(reason)}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: close\r\n\r\n${body}`,
  );
}

function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}
