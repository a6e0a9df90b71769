import { StringDecoder } from 'node:string_decoder';

/** Longest line kept by default, in UTF-16 code units (characters for ASCII JSON). */
const DEFAULT_MAX_LINE_CHARS = 256 * 1024 * 1024;

export interface LineReaderOptions {
  /**
   * Longest line delivered, in characters. A longer one is dropped whole: what was buffered is
   * freed at once, and the rest of it is skipped up to its `\n`, so the consumer never sees a
   * fragment. 256 Mi characters by default.
   */
  maxLineChars?: number;
  /** Called once per dropped line, as soon as it passes the limit (`chars` buffered so far). */
  onOverflow?: (chars: number) => void;
}

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
  /** True while skipping the rest of a line that went over the limit. */
  private discarding = false;
  private readonly maxLineChars: number;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly options: LineReaderOptions = {},
  ) {
    this.maxLineChars = options.maxLineChars ?? DEFAULT_MAX_LINE_CHARS;
  }

  push(chunk: Buffer): void {
    let text = this.decoder.write(chunk);
    let newline = text.indexOf('\n');
    while (newline !== -1) {
      const tail = text.slice(0, newline);
      text = text.slice(newline + 1);
      newline = text.indexOf('\n');
      if (this.discarding) {
        this.discarding = false;
        continue;
      }

      if (this.pendingLength + tail.length > this.maxLineChars) {
        this.overflow(this.pendingLength + tail.length);
        this.discarding = false;
        continue;
      }

      this.pieces.push(tail);
      const line = this.pieces.join('');
      this.pieces = [];
      this.pendingLength = 0;
      if (line.trim() !== '') this.onLine(line);
    }

    if (text === '' || this.discarding) return;

    this.pieces.push(text);
    this.pendingLength += text.length;
    // A peer that never sends a newline must not grow this buffer without bound.
    if (this.pendingLength > this.maxLineChars) this.overflow(this.pendingLength);
  }

  /** Forgets a partial line, e.g. when the peer reconnects and the old line can never finish. */
  reset(): void {
    this.decoder = new StringDecoder('utf8');
    this.pieces = [];
    this.pendingLength = 0;
    this.discarding = false;
  }

  private overflow(chars: number): void {
    this.pieces = [];
    this.pendingLength = 0;
    this.discarding = true;
    this.options.onOverflow?.(chars);
  }
}
