import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { AgentvmError } from '../../../protocol/errors';
import type { SnapshotInfo } from '../VmmDriver';

export interface WrittenFile {
  sizeBytes: number;
  sha256: string;
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
  ) {
    this.result = new Promise<WrittenFile>((resolve, reject) => {
      server.once('connection', (socket) => {
        this.connection = socket;
        server.close();
        writeStream(socket, filePath).then(resolve, reject);
      });
      server.once('error', reject);
    });
    this.result.catch((error: Error) => {
      this.failure = error;
    });
  }

  /** Why writing the file failed (e.g. ENOSPC), once it has; QEMU then only sees a reset socket. */
  failure: Error | undefined;

  /** Listen on `socketPath`; the stream will be written to `filePath` (truncated). */
  static async listen(socketPath: string, filePath: string): Promise<MigrationSink> {
    fs.rmSync(socketPath, { force: true });
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    return new MigrationSink(server, socketPath, filePath);
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

function writeStream(socket: net.Socket, filePath: string): Promise<WrittenFile> {
  return new Promise((resolve, reject) => {
    let fd: number;
    try {
      fd = fs.openSync(filePath, 'w', 0o600);
    } catch (error) {
      socket.destroy();
      reject(error);
      return;
    }

    const hash = crypto.createHash('sha256');
    // The stream owns the descriptor and closes it on every path (a failed write closes it before
    // 'error' is emitted); closing it here too threw EBADF from an event handler on a full disk.
    const out = fs.createWriteStream('', { fd });
    let sizeBytes = 0;
    let failed = false;
    const fail = (error: Error) => {
      if (failed) return;

      failed = true;
      socket.destroy();
      out.destroy();
      reject(error);
    };

    socket.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      sizeBytes += chunk.length;
    });
    socket.on('error', fail);
    out.on('error', fail);
    out.on('finish', () => {
      // 'finish' runs before the stream's own close, so the descriptor is still open here.
      try {
        fs.fsyncSync(fd);
      } catch (error) {
        fail(error as Error);
        return;
      }
      resolve({ sizeBytes, sha256: hash.digest('hex') });
    });
    socket.pipe(out);
  });
}

/** sha256 of a file, hex. */
export async function sha256File(filePath: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(filePath)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Throw SNAPSHOT_CORRUPT unless the state file has the recorded size and checksum. */
export async function verifySnapshot(snapshot: SnapshotInfo): Promise<void> {
  checkSnapshotSize(snapshot);
  const sha256 = await sha256File(snapshot.statePath);
  if (sha256 !== snapshot.sha256) {
    throw new AgentvmError(
      'SNAPSHOT_CORRUPT',
      `snapshot file ${snapshot.statePath} fails its sha256 check`,
    );
  }
}

/** The cheap part of {@link verifySnapshot}: throw SNAPSHOT_CORRUPT unless the file has its size. */
export function checkSnapshotSize(snapshot: SnapshotInfo): void {
  let sizeBytes: number;
  try {
    sizeBytes = fs.statSync(snapshot.statePath).size;
  } catch {
    throw new AgentvmError('SNAPSHOT_CORRUPT', `snapshot file ${snapshot.statePath} is missing`);
  }

  if (sizeBytes !== snapshot.sizeBytes) {
    throw new AgentvmError(
      'SNAPSHOT_CORRUPT',
      `snapshot file ${snapshot.statePath} has ${sizeBytes} bytes, expected ${snapshot.sizeBytes}`,
    );
  }
}

/** fsync a directory so a rename inside it survives a crash. */
export function fsyncDirectory(dirPath: string): void {
  const fd = fs.openSync(dirPath, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
