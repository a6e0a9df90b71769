import fs from 'node:fs';
import { PAGE_BYTES } from './MigrationStreamSplitter';

/** Bytes read at once: QEMU sends pages in address order, so one read serves 256 of them. */
const WINDOW_BYTES = 2 ** 20;

/**
 * Pages of a memory file (a template's RAM) by byte offset, for comparing a migration stream
 * against it. Reads are synchronous and a window at a time: the stream's parser is synchronous, the
 * file is in the page cache (every clone maps it), and a 1 MiB read takes a fraction of a
 * millisecond, where a read per page would be 131,072 system calls for a 512 MiB guest.
 */
export class MemoryBaseReader {
  private readonly window = Buffer.alloc(WINDOW_BYTES);
  private windowStart = -1;
  private windowBytes = 0;

  private constructor(
    private readonly fd: number,
    private readonly sizeBytes: number,
  ) {}

  /** Opens `filePath`, which must be `sizeBytes` long (the RAM block it stands for). */
  static open(filePath: string, sizeBytes: number): MemoryBaseReader {
    const fd = fs.openSync(filePath, 'r');
    const actual = fs.fstatSync(fd).size;
    if (actual !== sizeBytes) {
      fs.closeSync(fd);
      throw new Error(`memory base ${filePath} has ${actual} bytes, the RAM block ${sizeBytes}`);
    }
    return new MemoryBaseReader(fd, sizeBytes);
  }

  /** The page at `offset`: a view valid until the next call. */
  page(offset: number): Buffer {
    if (offset % PAGE_BYTES !== 0 || offset + PAGE_BYTES > this.sizeBytes) {
      throw new Error(`migration stream: page offset ${offset} is outside the memory base`);
    }
    if (offset < this.windowStart || offset + PAGE_BYTES > this.windowStart + this.windowBytes) {
      this.windowStart = offset - (offset % WINDOW_BYTES);
      const length = Math.min(WINDOW_BYTES, this.sizeBytes - this.windowStart);
      this.windowBytes = readFully(this.fd, this.window, length, this.windowStart);
    }
    const at = offset - this.windowStart;
    return this.window.subarray(at, at + PAGE_BYTES);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

function readFully(fd: number, into: Buffer, length: number, position: number): number {
  let done = 0;
  while (done < length) {
    const read = fs.readSync(fd, into, done, length - done, position + done);
    if (read === 0) throw new Error(`memory base ended at ${position + done}`);
    done += read;
  }
  return done;
}
