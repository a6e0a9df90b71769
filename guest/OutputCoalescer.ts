import { StringDecoder } from 'node:string_decoder';

/** Limits of one output stream. */
export interface OutputLimits {
  /** How often buffered lines are sent, in milliseconds. */
  flushIntervalMs: number;
  /** Most characters sent per flush; the rest of that interval's output is dropped and counted. */
  maxCharsPerFlush: number;
  /** A partial line is sent anyway once it grows past this many characters. */
  maxLineChars: number;
  /** A partial line is sent anyway after waiting this many flush intervals (e.g. a prompt). */
  maxHeldFlushes: number;
}

export const defaultOutputLimits: OutputLimits = {
  flushIntervalMs: 100,
  maxCharsPerFlush: 64 * 1024,
  maxLineChars: 16 * 1024,
  maxHeldFlushes: 10,
};

/**
 * Collects one stream of the agent command's output and hands it on in whole lines, at most once
 * per interval and at most `maxCharsPerFlush` at a time. A line that ends a quiet spell goes at
 * once (a reviewer watching the timeline, or a start that waits for the first output, should not
 * wait out an interval); lines that follow it within the interval are sent together. What a flood pushes over the cap is
 * dropped, and the next flush says how much, so memory stays bounded whatever the command prints.
 * `accept` lets the owner refuse output too (e.g. while the host has not acknowledged a backlog).
 */
export class OutputCoalescer {
  private readonly decoder = new StringDecoder('utf8');
  private buffered = '';
  /** Characters over the per-flush cap since the last flush. */
  private droppedChars = 0;
  /** Characters refused by `accept` (the host has not caught up). */
  private refusedChars = 0;
  private timer: NodeJS.Timeout | null = null;
  /** When output was last handed on (`performance.now()`), or never. */
  private lastFlushAt = -Infinity;
  /** Flushes that kept back the same partial line. */
  private heldFlushes = 0;

  constructor(
    private readonly emit: (text: string) => void,
    private readonly limits: OutputLimits = defaultOutputLimits,
    private readonly accept: (chars: number) => boolean = () => true,
  ) {}

  write(chunk: Buffer): void {
    this.take(this.decoder.write(chunk));
    const quiet = performance.now() - this.lastFlushAt >= this.limits.flushIntervalMs;
    if (!this.timer && quiet && this.buffered.includes('\n')) this.flush(false);
    if (this.buffered !== '') this.schedule();
  }

  /** Sends everything buffered, partial line included; call when the stream ended. */
  end(): void {
    this.take(this.decoder.end());
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.flush(true);
  }

  private take(text: string): void {
    if (text === '') return;

    const room = this.limits.maxCharsPerFlush - this.buffered.length;
    const kept = room > 0 ? text.slice(0, room) : '';
    this.droppedChars += text.length - kept.length;
    this.buffered += kept;
  }

  private schedule(): void {
    if (this.timer) return;

    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush(false);
      if (this.buffered !== '') this.schedule();
    }, this.limits.flushIntervalMs);
  }

  private flush(all: boolean): void {
    let cut = all ? this.buffered.length : this.buffered.lastIndexOf('\n') + 1;
    // Keep a partial line for the next flush unless the buffer is full or the line is huge.
    if (cut === 0 && this.buffered.length >= this.limits.maxLineChars) cut = this.buffered.length;
    if (cut === 0 && this.buffered !== '' && ++this.heldFlushes >= this.limits.maxHeldFlushes) {
      cut = this.buffered.length;
    }
    if (cut > 0) this.heldFlushes = 0;
    if (this.droppedChars > 0 || this.refusedChars > 0) cut = this.buffered.length;

    if (cut > 0) this.lastFlushAt = performance.now();
    const payload = this.buffered.slice(0, cut);
    let text = payload;
    this.buffered = this.buffered.slice(cut);

    const notes: string[] = [];
    if (this.droppedChars > 0) {
      notes.push(
        `[agentvm: ${this.droppedChars} characters of output dropped: over ${this.limits.maxCharsPerFlush} per ${this.limits.flushIntervalMs} ms]`,
      );
    }
    if (this.refusedChars > 0) {
      notes.push(
        `[agentvm: ${this.refusedChars} characters of output dropped: the host fell behind]`,
      );
    }
    if (notes.length > 0 && text !== '' && !text.endsWith('\n')) text += '\n';
    text += notes.map((note) => note + '\n').join('');

    if (text === '') return;

    if (!this.accept(text.length)) {
      this.refusedChars += payload.length;
      return;
    }

    this.droppedChars = 0;
    this.refusedChars = 0;
    this.emit(text);
  }
}
