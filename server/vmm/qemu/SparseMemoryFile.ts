import fs from 'node:fs';
import { AgentvmError } from '../../../protocol/errors';
import type { Logger } from '../../log';
import type { SnapshotMemory } from '../VmmDriver';
import { requireFileSize } from './requireFileSize';
import { checksumAlgorithm, createChecksum, type StreamChecksum } from './stateChecksum';

/** A run of pages is written in pieces of at most this size (one `writev` of 256 pages each). */
const PIECE_BYTES = 2 ** 20;

/** Flush what is written every this many bytes, so the final fdatasync finds little left. */
const SYNC_EVERY_BYTES = 32 * 2 ** 20;

/** Pieces read by verification and warm-up. */
const READ_BYTES = 4 * 2 ** 20;

/** Reads verification keeps in flight (libuv's thread pool has four threads). */
const READS_IN_FLIGHT = 3;

/**
 * Writes a VM's RAM as a sparse file: each page at its guest offset, zero pages left as holes. The
 * checksum covers the pages in the order they were written, then the run list, so verification
 * reads only what was written (a 512 MiB guest usually has about 150 MiB of it).
 */
export class SparseMemoryWriter {
  private readonly runs: Array<[offset: number, bytes: number]> = [];
  private piece: { offset: number; parts: Buffer[]; bytes: number } | undefined;
  private writing: Promise<void> = Promise.resolve();
  private queuedBytes = 0;
  private unsyncedBytes = 0;
  private failure: Error | undefined;

  private constructor(
    private readonly filePath: string,
    private readonly sizeBytes: number,
    private readonly fd: number,
    private readonly checksum: StreamChecksum,
  ) {}

  /** Create (or truncate) `filePath` as `sizeBytes` of holes. */
  static async create(filePath: string, sizeBytes: number): Promise<SparseMemoryWriter> {
    const checksum = await createChecksum();
    const fd = fs.openSync(filePath, 'w', 0o600);
    try {
      fs.ftruncateSync(fd, sizeBytes);
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
    return new SparseMemoryWriter(filePath, sizeBytes, fd, checksum);
  }

  /** Bytes handed over but not yet written: the caller pauses its input while this is high. */
  get pendingBytes(): number {
    return this.queuedBytes + (this.piece?.bytes ?? 0);
  }

  /** Resolves when every write queued so far is done (failed writes surface in `finish`). */
  drained(): Promise<void> {
    return this.writing;
  }

  page(offset: number, data: Buffer): void {
    if (offset + data.length > this.sizeBytes) {
      this.failure ??= new Error(`page at ${offset} is outside the ${this.sizeBytes}-byte memory`);
      return;
    }
    const piece = this.piece;
    if (piece && offset === piece.offset + piece.bytes && piece.bytes < PIECE_BYTES) {
      piece.parts.push(data);
      piece.bytes += data.length;
      return;
    }
    this.queuePiece();
    this.piece = { offset, parts: [data], bytes: data.length };
  }

  /** Write what is left, make it durable and close: the description for {@link SnapshotInfo}. */
  async finish(): Promise<SnapshotMemory> {
    this.queuePiece();
    try {
      await this.writing;
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve, reject) =>
        fs.fdatasync(this.fd, (error) => (error ? reject(error) : resolve())),
      );
    } finally {
      await new Promise<void>((resolve) => fs.close(this.fd, () => resolve()));
    }

    this.checksum.update(runListBytes(this.runs));
    return {
      path: this.filePath,
      sizeBytes: this.sizeBytes,
      checksum: this.checksum.digest(),
      runs: this.runs,
    };
  }

  /** Give up: close the file (the caller removes it). */
  async abort(): Promise<void> {
    this.failure ??= new Error('aborted');
    await this.writing.catch(() => undefined);
    await new Promise<void>((resolve) => fs.close(this.fd, () => resolve()));
  }

  private queuePiece(): void {
    const piece = this.piece;
    this.piece = undefined;
    if (!piece) return;

    const last = this.runs[this.runs.length - 1];
    if (last && last[0] + last[1] === piece.offset) last[1] += piece.bytes;
    else this.runs.push([piece.offset, piece.bytes]);
    for (const part of piece.parts) this.checksum.update(part);

    this.queuedBytes += piece.bytes;
    this.writing = this.writing.then(async () => {
      if (this.failure) return;
      try {
        await writev(this.fd, piece.parts, piece.offset, piece.bytes);
        this.unsyncedBytes += piece.bytes;
        if (this.unsyncedBytes >= SYNC_EVERY_BYTES) {
          this.unsyncedBytes = 0;
          await new Promise<void>((resolve, reject) =>
            fs.fdatasync(this.fd, (error) => (error ? reject(error) : resolve())),
          );
        }
      } catch (error) {
        this.failure ??= error as Error;
      } finally {
        this.queuedBytes -= piece.bytes;
      }
    });
  }
}

/** Bytes of guest RAM written to a snapshot's memory file (0 when RAM is in the state file). */
export function writtenMemoryBytes(memory: SnapshotMemory | undefined): number {
  return memory?.runs.reduce((sum, [, bytes]) => sum + bytes, 0) ?? 0;
}

/**
 * Throw SNAPSHOT_CORRUPT unless the memory file exists with its size and the pages of its runs
 * hash to the recorded checksum.
 */
export async function verifyMemoryFile(memory: SnapshotMemory): Promise<void> {
  checkMemoryFileSize(memory);
  const checksum = await createChecksum(checksumAlgorithm(memory.checksum));
  const file = await fs.promises.open(memory.path, 'r');
  try {
    await readRanges(file, memory.runs, (chunk) => checksum.update(chunk));
  } finally {
    await file.close();
  }

  checksum.update(runListBytes(memory.runs));
  if (checksum.digest() !== memory.checksum) {
    throw new AgentvmError('SNAPSHOT_CORRUPT', `memory file ${memory.path} fails its checksum`);
  }
}

/** The cheap part of {@link verifyMemoryFile}: the file is there and has its size. */
export function checkMemoryFileSize(memory: SnapshotMemory): void {
  requireFileSize(memory.path, memory.sizeBytes, 'memory file');
}

/** The run list as hashed: `offset:bytes` pairs, one per line. */
function runListBytes(runs: ReadonlyArray<readonly [number, number]>): Buffer {
  return Buffer.from(runs.map(([offset, bytes]) => `${offset}:${bytes}\n`).join(''));
}

/**
 * Read the whole memory file once, in the background, so its holes are in the page cache before
 * the VM's next snapshot. A snapshot reads every page of guest RAM; a hole read first through the
 * VM's private mapping costs a page-cache allocation per 4 KiB fault (≈1 s of QEMU time for a
 * 512 MiB guest), while pages already cached are mapped many at a time. Takes an open file, which
 * it closes: the path is unlinked once the restored VM runs.
 */
export async function warmMemoryFile(file: fs.promises.FileHandle): Promise<void> {
  try {
    const chunk = Buffer.allocUnsafe(READ_BYTES);
    let position = 0;
    for (;;) {
      const { bytesRead } = await file.read(chunk, 0, READ_BYTES, position);
      if (bytesRead === 0) break;
      position += bytesRead;
    }
  } finally {
    await file.close();
  }
}

/**
 * Read `ranges` in order, in pieces of at most {@link READ_BYTES}, with the next pieces in flight
 * while the caller handles the current one. A few buffers serve every piece: a fresh 4 MiB buffer
 * per read cost a page fault per 4 KiB, which made reading slower than hashing.
 */
/**
 * Open `memoryPath` now and {@link warmMemoryFile} it in the background; nobody waits for the
 * reading, and a file that cannot be opened is only logged.
 */
export async function warmInBackground(memoryPath: string, logger: Logger): Promise<void> {
  const file = await fs.promises.open(memoryPath, 'r').catch((error: Error) => {
    logger.warn('vm.memory_warm_failed', { memoryPath, error: error.message });
    return undefined;
  });
  if (!file) return;

  const startedAt = performance.now();
  void warmMemoryFile(file).then(
    () =>
      logger.debug('vm.memory_warmed', {
        memoryPath,
        ms: Math.round(performance.now() - startedAt),
      }),
    (error: Error) => logger.warn('vm.memory_warm_failed', { memoryPath, error: error.message }),
  );
}

async function readRanges(
  file: fs.promises.FileHandle,
  ranges: ReadonlyArray<readonly [number, number]>,
  onChunk: (chunk: Buffer) => void,
): Promise<void> {
  const pieces: Array<[position: number, size: number]> = [];
  for (const [offset, bytes] of ranges) {
    for (let at = 0; at < bytes; at += READ_BYTES) {
      pieces.push([offset + at, Math.min(READ_BYTES, bytes - at)]);
    }
  }

  const buffers = Array.from({ length: READS_IN_FLIGHT }, () => Buffer.allocUnsafe(READ_BYTES));
  const read = async (index: number) => {
    const [position, size] = pieces[index]!;
    const buffer = buffers[index % READS_IN_FLIGHT]!;
    const { bytesRead } = await file.read(buffer, 0, size, position);
    if (bytesRead !== size) throw new AgentvmError('SNAPSHOT_CORRUPT', 'memory file is short');
    return buffer.subarray(0, size);
  };
  // Piece i's buffer is reused by piece i + READS_IN_FLIGHT, which is read only after piece i was
  // handled.
  const inFlight = pieces.slice(0, READS_IN_FLIGHT - 1).map((_, index) => read(index));
  for (let index = 0; index < pieces.length; index++) {
    const ahead = index + READS_IN_FLIGHT - 1;
    if (ahead < pieces.length) inFlight.push(read(ahead));
    const chunk = await inFlight.shift()!;
    onChunk(chunk);
  }
}

function writev(fd: number, parts: Buffer[], position: number, bytes: number): Promise<void> {
  return new Promise((resolve, reject) =>
    fs.writev(fd, parts, position, (error, written) => {
      if (error) reject(error);
      else if (written !== bytes) reject(new Error('short write to the memory file'));
      else resolve();
    }),
  );
}
