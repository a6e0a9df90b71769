import { StringDecoder } from 'node:string_decoder';

/** Longest line kept; a longer one is cut off and reported whole-or-nothing to the consumer. */
const MAX_LINE_BYTES = 256 * 1024 * 1024;

/**
 * Splits a byte stream into `\n`-terminated UTF-8 lines. A multi-byte character split across
 * chunks is decoded once both halves arrived.
 */
export class LineReader {
  private decoder = new StringDecoder('utf8');
  /**
   * The unfinished line in pieces. Only each new chunk is searched for `\n`: searching (and so
   * flattening) the whole pending string on every chunk made a line of a few tens of MiB (a task
   * carrying a repository) take minutes under emulation.
   */
  private pieces: string[] = [];
  private pendingLength = 0;

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    let text = this.decoder.write(chunk);
    let newline = text.indexOf('\n');
    while (newline !== -1) {
      this.pieces.push(text.slice(0, newline));
      const line = this.pieces.join('');
      this.pieces = [];
      this.pendingLength = 0;
      if (line.trim() !== '') this.onLine(line);
      text = text.slice(newline + 1);
      newline = text.indexOf('\n');
    }

    if (text !== '') {
      this.pieces.push(text);
      this.pendingLength += text.length;
    }
    // A peer that never sends a newline must not grow this buffer without bound.
    if (this.pendingLength > MAX_LINE_BYTES) this.reset();
  }

  /** Forgets a partial line, e.g. when the peer reconnects and the old line can never finish. */
  reset(): void {
    this.decoder = new StringDecoder('utf8');
    this.pieces = [];
    this.pendingLength = 0;
  }
}
