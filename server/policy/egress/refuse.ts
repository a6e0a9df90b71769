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

/**
 * Answers what Node could not parse as an HTTP request (a server's `clientError`) with one
 * refusal naming why, then closes: headers over Node's limit get 431, a request that took too
 * long 408, anything else malformed 400. A socket error, or one met while an answer is already on
 * its way, just ends the connection, as Node's own handler does.
 */
export function refuseUnparsable(error: NodeJS.ErrnoException, socket: Duplex): void {
  const code = error.code ?? '';
  // Node's own marker of a response in flight on this connection; a refusal would corrupt it.
  const answering = Boolean((socket as { _httpMessage?: unknown })._httpMessage);
  const parseFailure = code.startsWith('HPE_') || code === 'ERR_HTTP_REQUEST_TIMEOUT';
  if (!parseFailure || answering || !socket.writable) {
    socket.destroy();
    return;
  }

  if (code === 'HPE_HEADER_OVERFLOW')
    return refuseSocket(socket, 431, `the request's headers exceed ${http.maxHeaderSize} bytes`);
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return refuseSocket(socket, 408, 'the request did not arrive in time');
  refuseSocket(socket, 400, `the request is not valid HTTP/1.1 (${code}: ${error.message})`);
}

function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}
