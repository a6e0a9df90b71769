import { StringDecoder } from 'node:string_decoder';

/** One of the agent command's output streams. */
export type OutputStream = 'stdout' | 'stderr';

/** Limits of the agent command's output. */
export interface OutputLimits {
  /** How often buffered lines are sent, in milliseconds. */
  flushIntervalMs: number;
  /**
   * Most characters of each stream buffered and sent per flush; the rest of that interval's output
   * of the stream is dropped and counted.
   */
  maxCharsPerFlush: number;
  /** A partial line is sent anyway once it grows past this many characters. */
  maxLineChars: number;
  /** A partial line is sent anyway after waiting this many flush intervals (e.g. a prompt). */
  maxHeldFlushes: number;
  /**
   * Most events one flush sends. Every change of stream starts an event, so output that switches
   * streams more often than this waits, in order, for the next flush.
   */
  maxEventsPerFlush: number;
}

export const defaultOutputLimits: OutputLimits = {
  flushIntervalMs: 100,
  maxCharsPerFlush: 64 * 1024,
  maxLineChars: 16 * 1024,
  maxHeldFlushes: 10,
  maxEventsPerFlush: 32,
};

/** Output of one stream that arrived without output of the other in between. */
interface Segment {
  stream: OutputStream;
  text: string;
}

const streams: readonly OutputStream[] = ['stdout', 'stderr'];

/**
 * Collects the agent command's stdout and stderr and hands them on in whole lines, at most once
 * per interval and at most `maxCharsPerFlush` of each stream at a time, in the order the output
 * arrived across both streams: a partial line is only held back while it is the newest output, so
 * a stdout prompt is never sent after the stderr line that followed it. A line that ends a quiet
 * spell goes at once (a reviewer watching the timeline, or a start that waits for the first
 * output, should not wait out an interval); lines that follow it within the interval are sent
 * together. What a flood pushes over the cap is dropped, and the next flush says how much, so
 * memory stays bounded whatever the command prints. `accept` lets the owner refuse output too
 * (e.g. while the host has not acknowledged a backlog).
 */
export class OutputCoalescer {
  private readonly decoders = {
    stdout: new StringDecoder('utf8'),
    stderr: new StringDecoder('utf8'),
  };
  /** What waits to be sent, oldest first; neighbours are of different streams. */
  private segments: Segment[] = [];
  private readonly bufferedChars = { stdout: 0, stderr: 0 };
  /** Characters over the per-flush cap since the last flush. */
  private readonly droppedChars = { stdout: 0, stderr: 0 };
  /** Characters refused by `accept` (the host has not caught up). */
  private readonly refusedChars = { stdout: 0, stderr: 0 };
  private timer: NodeJS.Timeout | null = null;
  /** When output was last handed on (`performance.now()`), or never. */
  private lastFlushAt = -Infinity;
  /** Flushes that kept back the same partial line. */
  private heldFlushes = 0;

  constructor(
    private readonly emit: (stream: OutputStream, text: string) => void,
    private readonly limits: OutputLimits = defaultOutputLimits,
    private readonly accept: (chars: number) => boolean = () => true,
  ) {}

  write(stream: OutputStream, chunk: Buffer): void {
    this.take(stream, this.decoders[stream].write(chunk));
    const quiet = performance.now() - this.lastFlushAt >= this.limits.flushIntervalMs;
    if (!this.timer && quiet && this.hasWholeOutput()) this.flush(false);
    if (this.segments.length > 0) this.schedule();
  }

  /** Sends everything buffered, partial lines included; call when both streams ended. */
  end(): void {
    for (const stream of streams) this.take(stream, this.decoders[stream].end());
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.flush(true);
  }

  private take(stream: OutputStream, text: string): void {
    if (text === '') return;

    const room = this.limits.maxCharsPerFlush - this.bufferedChars[stream];
    const kept = room > 0 ? text.slice(0, room) : '';
    this.droppedChars[stream] += text.length - kept.length;
    if (kept === '') return;

    this.bufferedChars[stream] += kept.length;
    const newest = this.segments.at(-1);
    if (newest?.stream === stream) newest.text += kept;
    else this.segments.push({ stream, text: kept });
  }

  /** Whether anything but a partial line of the newest output waits. */
  private hasWholeOutput(): boolean {
    return this.segments.length > 1 || (this.segments[0]?.text.includes('\n') ?? false);
  }

  private schedule(): void {
    if (this.timer) return;

    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush(false);
      if (this.segments.length > 0) this.schedule();
    }, this.limits.flushIntervalMs);
  }

  private flush(all: boolean): void {
    const lost = streams.some(
      (stream) => this.droppedChars[stream] > 0 || this.refusedChars[stream] > 0,
    );
    const count = all
      ? this.segments.length
      : Math.min(this.segments.length, this.limits.maxEventsPerFlush);
    const sending = this.segments.slice(0, count).map((segment) => ({ ...segment }));
    let rest = this.segments.slice(count);

    // Only the newest output may keep its partial line back: anything that arrived after it would
    // otherwise be sent first. It goes anyway when the line is huge, has waited long enough, or
    // output was lost (the note about it must follow everything that came before).
    const newest = sending.at(-1);
    if (newest && rest.length === 0 && !all && !lost) {
      const partialChars = newest.text.length - (newest.text.lastIndexOf('\n') + 1);
      const keep = partialChars > 0 && partialChars < this.limits.maxLineChars;
      const nothingElse = sending.length === 1 && partialChars === newest.text.length;
      if (keep && nothingElse && ++this.heldFlushes < this.limits.maxHeldFlushes) return;
      if (keep && !nothingElse) {
        rest = [{ stream: newest.stream, text: newest.text.slice(-partialChars) }];
        newest.text = newest.text.slice(0, -partialChars);
      }
    }

    this.segments = rest;
    for (const stream of streams) this.bufferedChars[stream] = 0;
    for (const segment of rest) this.bufferedChars[segment.stream] += segment.text.length;
    const payload = sending.filter((segment) => segment.text !== '');
    if (payload.length > 0) {
      this.heldFlushes = 0;
      this.lastFlushAt = performance.now();
    }

    const events = payload.map((segment) => ({ ...segment }));
    for (const stream of streams) this.addNotes(events, stream);
    if (events.length === 0) return;

    if (!this.accept(events.reduce((chars, event) => chars + event.text.length, 0))) {
      for (const segment of payload) this.refusedChars[segment.stream] += segment.text.length;
      return;
    }

    for (const stream of streams) {
      this.droppedChars[stream] = 0;
      this.refusedChars[stream] = 0;
    }
    for (const event of events) this.emit(event.stream, event.text);
  }

  /** Adds the notes about `stream`'s lost output after everything else this flush sends. */
  private addNotes(events: Segment[], stream: OutputStream): void {
    const notes: string[] = [];
    if (this.droppedChars[stream] > 0) {
      notes.push(
        `[agentvm: ${this.droppedChars[stream]} characters of output dropped: over ${this.limits.maxCharsPerFlush} per ${this.limits.flushIntervalMs} ms]`,
      );
    }
    if (this.refusedChars[stream] > 0) {
      notes.push(
        `[agentvm: ${this.refusedChars[stream]} characters of output dropped: the host fell behind]`,
      );
    }
    if (notes.length === 0) return;

    const text = notes.map((note) => note + '\n').join('');
    const last = events.at(-1);
    if (last?.stream !== stream) {
      events.push({ stream, text });
      return;
    }

    if (!last.text.endsWith('\n')) last.text += '\n';
    last.text += text;
  }
}
