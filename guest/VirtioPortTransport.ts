import fs from 'node:fs';
import path from 'node:path';
import { CONTROL_PORT_NAME } from '../protocol/control';
import { QueuedLineTransport } from './QueuedLineTransport';
import type { GuestLog } from './guestLog';

const PORTS_DIR = '/sys/class/virtio-ports';
const READ_BUFFER_BYTES = 64 * 1024;
/**
 * How long to wait before reading again after EOF (host side not connected): short at first, since
 * after a restore the broker reconnects within milliseconds, then backing off to the longest.
 */
const RECONNECT_POLL_FIRST_MS = 5;
const RECONNECT_POLL_MS = 100;
const FIND_PORT_RETRY_MS = 200;
/** Queued lines are joined into writes of up to this many characters (one line may be longer). */
const MAX_WRITE_CHARS = 64 * 1024;

/** Finds the character device of the virtio-serial port named `name` (no udev in the guest). */
export function findVirtioPort(name: string, portsDir = PORTS_DIR): string | null {
  let entries: string[];
  try {
    entries = fs.readdirSync(portsDir);
  } catch {
    return null;
  }

  for (const entry of entries) {
    try {
      if (fs.readFileSync(path.join(portsDir, entry, 'name'), 'utf8').trim() === name) {
        return path.join('/dev', entry);
      }
    } catch {
      // A port without a name file is not ours.
    }
  }

  return null;
}

/**
 * The control channel over the guest's virtio-serial port.
 *
 * Linux's virtio_console returns 0 from read() while the host end is closed (broker restart,
 * before/after a snapshot restore) and blocks write() until it is open again. libuv's
 * non-blocking streams do not cope with that device, so reads and writes are plain blocking
 * fs.read/fs.write calls on the threadpool: one read and at most one write in flight. `close()`
 * leaves the fd open: a blocked read on the threadpool still uses it, and the process is ending.
 */
export class VirtioPortTransport extends QueuedLineTransport {
  private fd: number | null = null;
  private writing = false;
  private hostConnected = false;
  private reconnectPollMs = RECONNECT_POLL_FIRST_MS;

  constructor(
    private readonly log: GuestLog,
    private readonly portName = CONTROL_PORT_NAME,
  ) {
    super();
  }

  protected open(): void {
    this.openPort(0);
  }

  private openPort(attempt: number): void {
    if (this.closed) return;

    const device = findVirtioPort(this.portName);
    if (!device) {
      // The virtio_console module may still be probing; log once, then keep looking.
      if (attempt === 0) this.log('warn', `virtio port ${this.portName} not found yet`);
      this.timer = setTimeout(() => this.openPort(attempt + 1), FIND_PORT_RETRY_MS);
      return;
    }

    try {
      this.fd = fs.openSync(device, 'r+');
    } catch (error) {
      this.log('error', `cannot open ${device}: ${(error as Error).message}`);
      this.timer = setTimeout(() => this.openPort(attempt + 1), FIND_PORT_RETRY_MS);
      return;
    }

    this.log('info', `control channel on ${device}`);
    this.handlers?.onConnect();
    this.readLoop(Buffer.alloc(READ_BUFFER_BYTES));
    this.flush();
  }

  private readLoop(buffer: Buffer): void {
    if (this.closed || this.fd === null) return;

    fs.read(this.fd, buffer, 0, buffer.length, null, (error, bytesRead) => {
      if (error || bytesRead === 0) {
        if (error) this.log('warn', `control port read failed: ${error.message}`);
        if (this.hostConnected) this.reader.reset();
        this.hostConnected = false;
        this.timer = setTimeout(() => this.readLoop(buffer), this.reconnectPollMs);
        this.reconnectPollMs = Math.min(this.reconnectPollMs * 2, RECONNECT_POLL_MS);
        return;
      }

      this.hostConnected = true;
      this.reconnectPollMs = RECONNECT_POLL_FIRST_MS;
      // Copy out: the same buffer is handed to the next read before the lines are consumed.
      this.reader.push(Buffer.from(buffer.subarray(0, bytesRead)));
      this.readLoop(buffer);
    });
  }

  protected flush(): void {
    if (this.writing || this.fd === null || this.closed || this.queue.length === 0) return;

    // Every line queued so far goes in one write: each write is a trip through the threadpool
    // and a virtqueue kick, which under emulation cost milliseconds, and events come in bursts
    // (a phase change with the first output, everything queued while a sync call held the loop).
    this.writing = true;
    const lines = [this.queue.shift() as string];
    let chars = lines[0].length;
    while (this.queue.length > 0 && chars + this.queue[0].length <= MAX_WRITE_CHARS) {
      chars += this.queue[0].length;
      lines.push(this.queue.shift() as string);
    }
    this.writeAll(Buffer.from(lines.join(''), 'utf8'), 0);
  }

  private writeAll(data: Buffer, offset: number): void {
    if (this.fd === null) return;

    fs.write(this.fd, data, offset, data.length - offset, null, (error, written) => {
      if (error) {
        // EAGAIN/EIO while the host end flips; retry the same bytes shortly.
        this.log('warn', `control port write failed: ${error.message}`);
        this.timer = setTimeout(() => this.writeAll(data, offset), RECONNECT_POLL_MS);
        return;
      }

      if (offset + written < data.length) {
        this.writeAll(data, offset + written);
        return;
      }

      this.writing = false;
      this.flush();
    });
  }
}
