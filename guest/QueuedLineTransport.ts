import { LineReader } from '../protocol/LineReader';
import type { ControlTransport, TransportHandlers } from './ControlTransport';

/**
 * What every control transport shares: lines from the host split by one reader, lines to the host
 * kept in a queue until the transport can write them. A subclass opens its connection in
 * `open()` and writes the queue out in `flush()` whenever it can.
 */
export abstract class QueuedLineTransport implements ControlTransport {
  protected handlers: TransportHandlers | null = null;
  protected readonly reader = new LineReader((line) => this.handlers?.onLine(line));
  /** Lines not yet handed to the kernel, each with its newline. */
  protected readonly queue: string[] = [];
  protected closed = false;
  protected timer: NodeJS.Timeout | null = null;

  start(handlers: TransportHandlers): void {
    this.handlers = handlers;
    this.open();
  }

  send(line: string): void {
    this.queue.push(line + '\n');
    this.flush();
  }

  dropQueued(predicate: (line: string) => boolean): void {
    const kept = this.queue.filter((line) => !predicate(line));
    this.queue.splice(0, this.queue.length, ...kept);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Opens the connection to the host; called once, from `start`. */
  protected abstract open(): void;

  /** Writes queued lines while the host end is there to take them. */
  protected abstract flush(): void;
}
