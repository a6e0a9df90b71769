import type { Duplex } from 'node:stream';
import { AgentvmError } from '../../protocol/errors';

/**
 * Node's HTTP parser rejects some requests before the API sees them (a request line or headers
 * over its 16 KiB limit, broken framing). Its default reply is a bare 400 or 431 with no body; this
 * answers with the registry's BAD_REQUEST body instead, so every rejection carries a known code.
 */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }

  const detail =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? 'the request line or headers are over 16 KiB'
      : 'the request is not valid HTTP/1.1';
  const body = JSON.stringify(new AgentvmError('BAD_REQUEST', detail).toBody());
  socket.end(
    'HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
