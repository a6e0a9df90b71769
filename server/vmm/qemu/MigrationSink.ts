import fs from 'node:fs';
import net from 'node:net';
import type { Readable } from 'node:stream';
import type { SnapshotMemory, SnapshotMemoryBase } from '../VmmDriver';
import { createChecksum, type StreamChecksum } from './stateChecksum';
import {
  withoutBasePages,
  writeSplitStream,
  type MemoryDelta,
  type MemorySplit,
} from './writeSplitStream';

/**
 * How much of a stream may wait in memory for the disk. With the default 16 KiB the socket paused
 * for every 64 KiB write; batched writes took a 150 MiB stream from ≈0.6 s to ≈0.3 s.
 */
const WRITE_BUFFER_BYTES = 16 * 2 ** 20;

/** Flush what is written every this many bytes, so the final fsync finds little left (≈70 → 15 ms). */
const FLUSH_EVERY_BYTES = 32 * 2 ** 20;

export interface WrittenFile {
  sizeBytes: number;
  /** `algorithm:hex`, see stateChecksum.ts. */
  checksum: string;
  /** The RAM block written apart, when the sink split the stream. */
  memory?: SnapshotMemory;
  /** The file the RAM block's dropped pages are in, when the sink compared against one. */
  memoryBase?: SnapshotMemoryBase;
}

/**
 * Receives a migration stream on a unix socket and writes it to a file, hashing on the way.
 *
 * Why not `migrate exec:cat > file`: once the stream ends QEMU closes the pipe and, if `cat` has
 * not exited that very instant, sends it SIGTERM and 10 ms later SIGKILL (io/channel-command.c),
 * which can cut the tail of the file. Here the driver itself owns the writer and knows when the
 * last byte is on disk.
 */
export class MigrationSink {
  private readonly result: Promise<WrittenFile>;
  private connection: net.Socket | undefined;

  private constructor(
    private readonly server: net.Server,
    readonly socketPath: string,
    filePath: string,
    checksum: StreamChecksum,
    split: MemorySplit | MemoryDelta | undefined,
  ) {
    this.result = new Promise<WrittenFile>((resolve, reject) => {
      server.once('connection', (socket) => {
        this.connection = socket;
        server.close();
        let writing: Promise<WrittenFile>;
        try {
          writing = !split
            ? writeStream(socket, filePath, checksum)
            : 'basePath' in split
              ? writeStream(withoutBasePages(socket, split), filePath, checksum)
              : writeSplitStream(socket, filePath, checksum, split);
        } catch (error) {
          socket.destroy();
          writing = Promise.reject(error as Error);
        }
        writing.then(resolve, reject);
      });
      server.once('error', reject);
    });
    this.result.catch((error: Error) => {
      this.failure = error;
    });
  }

  /** Why writing the file failed (e.g. ENOSPC), once it has; QEMU then only sees a reset socket. */
  failure: Error | undefined;

  /**
   * Listen on `socketPath`; the stream will be written to `filePath` (truncated), with `split`'s
   * RAM block either apart in its own file ({@link MemorySplit}) or reduced to the pages that
   * differ from its base ({@link MemoryDelta}).
   */
  static async listen(
    socketPath: string,
    filePath: string,
    split?: MemorySplit | MemoryDelta,
  ): Promise<MigrationSink> {
    const checksum = await createChecksum();
    fs.rmSync(socketPath, { force: true });
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    return new MigrationSink(server, socketPath, filePath, checksum, split);
  }

  /** The URI to give QMP `migrate`. */
  get uri(): string {
    return `unix:${this.socketPath}`;
  }

  /** Resolves when QEMU closed the stream and the file is fsynced. */
  written(): Promise<WrittenFile> {
    return this.result;
  }

  /** Stop listening and drop the connection. Safe to call twice. */
  close(): void {
    this.server.close();
    this.connection?.destroy();
    fs.rmSync(this.socketPath, { force: true });
  }
}

function writeStream(
  socket: Readable,
  filePath: string,
  checksum: StreamChecksum,
): Promise<WrittenFile> {
  return new Promise((resolve, reject) => {
    let fd: number;
    let syncFd: number;
    try {
      fd = fs.openSync(filePath, 'w', 0o600);
      syncFd = fs.openSync(filePath, 'r');
    } catch (error) {
      socket.destroy();
      reject(error);
      return;
    }

    // The stream owns `fd` and closes it on every path (a failed write closes it before 'error' is
    // emitted); flushing goes through a second descriptor so it never races that close.
    const out = fs.createWriteStream('', { fd, highWaterMark: WRITE_BUFFER_BYTES });
    const flusher = new Flusher(syncFd);
    let sizeBytes = 0;
    let failed = false;
    const fail = (error: Error) => {
      if (failed) return;

      failed = true;
      socket.destroy();
      out.destroy();
      void flusher.close().catch(() => undefined);
      reject(error);
    };

    socket.on('data', (chunk: Buffer) => {
      checksum.update(chunk);
      sizeBytes += chunk.length;
      flusher.written(out.bytesWritten);
    });
    socket.on('error', fail);
    out.on('error', fail);
    out.on('close', () => {
      if (failed) return;

      flusher.final().then(() => resolve({ sizeBytes, checksum: checksum.digest() }), fail);
    });
    socket.pipe(out);
  });
}

/** Flushes a file while it is written, so that the fsync at the end has little left to do. */
class Flusher {
  private flushedBytes = 0;
  private flushing: Promise<void> = Promise.resolve();
  private isFlushing = false;
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly fd: number) {}

  /** `bytesWritten` are in the file: start a flush when enough arrived since the last one. */
  written(bytesWritten: number): void {
    if (this.isFlushing || bytesWritten - this.flushedBytes < FLUSH_EVERY_BYTES) return;

    this.isFlushing = true;
    this.flushedBytes = bytesWritten;
    this.flushing = new Promise((resolve) =>
      fs.fdatasync(this.fd, (error) => {
        this.isFlushing = false;
        if (error) this.failure ??= error;
        resolve();
      }),
    );
  }

  /** fsync once every write is in, then close; throws when any flush failed. */
  async final(): Promise<void> {
    await this.flushing;
    try {
      if (this.failure) throw this.failure;

      await new Promise<void>((resolve, reject) =>
        fs.fsync(this.fd, (error) => (error ? reject(error) : resolve())),
      );
    } finally {
      await this.close();
    }
  }

  /** Close the descriptor once the flush in flight ended. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= this.flushing.then(
      () => new Promise<void>((resolve) => fs.close(this.fd, () => resolve())),
    );
    return this.closing;
  }
}
