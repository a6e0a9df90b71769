import { StringDecoder } from 'node:string_decoder';

/** Longest line kept; a longer one is cut off and reported whole-or-nothing to the consumer. */
const MAX_LINE_BYTES = 256 * 1024 * 1024;

/**
 * Splits a byte stream into `\n`-terminated UTF-8 lines. A multi-byte character split across
 * chunks is decoded once both halves arrived.
 */
export class LineReader {
  private decoder = new StringDecoder('utf8');
  private pending = '';

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    this.pending += this.decoder.write(chunk);

    let newline = this.pending.indexOf('\n');
    while (newline !== -1) {
      const line = this.pending.slice(0, newline);
      this.pending = this.pending.slice(newline + 1);
      if (line.trim() !== '') this.onLine(line);
      newline = this.pending.indexOf('\n');
    }

    // A peer that never sends a newline must not grow this buffer without bound.
    if (this.pending.length > MAX_LINE_BYTES) this.pending = '';
  }

  /** Forgets a partial line, e.g. when the peer reconnects and the old line can never finish. */
  reset(): void {
    this.decoder = new StringDecoder('utf8');
    this.pending = '';
  }
}
