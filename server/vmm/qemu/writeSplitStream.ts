import type net from 'node:net';
import fs from 'node:fs';
import { Transform } from 'node:stream';
import { MemoryBaseReader } from './MemoryBaseReader';
import { MigrationStreamSplitter } from './MigrationStreamSplitter';
import type { WrittenFile } from './MigrationSink';
import { SparseMemoryWriter } from './SparseMemoryFile';
import type { StreamChecksum } from './stateChecksum';

/** Write one RAM block of the stream to its own sparse file (see MigrationStreamSplitter). */
export interface MemorySplit {
  /** Where the block's pages go (created or truncated). */
  memoryPath: string;
  /** The block's name in the stream (`mem`) and its size. */
  blockName: string;
  blockBytes: number;
  /** The stream carries block addresses (`x-ignore-shared` was set). */
  blockAddresses: boolean;
}

/**
 * Keep of one RAM block only the pages that differ from the file its RAM maps (see
 * MigrationStreamSplitter's `basePage`): the state file then holds the block's changes.
 */
export interface MemoryDelta {
  /** The file the VM's RAM maps copy-on-write: a template's memory. */
  basePath: string;
  /** The block's name in the stream (`mem`) and its size, which the base file must have. */
  blockName: string;
  blockBytes: number;
  /** The stream carries block addresses (`x-ignore-shared` was set). */
  blockAddresses: boolean;
}

/**
 * The stream from `socket` with the pages equal to the base dropped, as a readable stream of the
 * state file's bytes. An error of either side ends both.
 */
export function withoutBasePages(socket: net.Socket, delta: MemoryDelta): Transform {
  const base = MemoryBaseReader.open(delta.basePath, delta.blockBytes);
  let splitter: MigrationStreamSplitter;
  const filter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      try {
        splitter.push(chunk);
        done();
      } catch (error) {
        done(error as Error);
      }
    },
    flush(done) {
      try {
        endOfStream(splitter, delta);
        done();
      } catch (error) {
        done(error as Error);
      }
    },
  });
  splitter = new MigrationStreamSplitter(
    { ...delta, basePage: (offset) => base.page(offset) },
    {
      state: (bytes) => filter.push(bytes),
      page: () => {
        throw new Error('a page split off while comparing against a base');
      },
    },
  );
  socket.on('error', (error) => filter.destroy(error));
  filter.once('close', () => {
    base.close();
    socket.destroy();
  });
  socket.pipe(filter);
  return filter;
}

/** Device state is small (≈100 KiB); a split stream whose state outgrows this is refused. */
const MAX_SPLIT_STATE_BYTES = 64 * 2 ** 20;

/** The socket pauses while this much of the memory file waits for the disk. */
const MEMORY_HIGH_WATER_BYTES = 32 * 2 ** 20;

/**
 * Split the stream as it arrives: the RAM block's pages to a sparse file, the rest (kept in memory,
 * it is small) to `filePath` once the stream ended. The socket pauses while the disk lags.
 */
export async function writeSplitStream(
  socket: net.Socket,
  filePath: string,
  checksum: StreamChecksum,
  split: MemorySplit,
): Promise<WrittenFile> {
  let memory: SparseMemoryWriter;
  try {
    memory = await SparseMemoryWriter.create(split.memoryPath, split.blockBytes);
  } catch (error) {
    socket.destroy();
    throw error;
  }

  const state: Buffer[] = [];
  let stateBytes = 0;
  const splitter = new MigrationStreamSplitter(split, {
    state: (bytes) => {
      state.push(bytes);
      stateBytes += bytes.length;
      if (stateBytes > MAX_SPLIT_STATE_BYTES) throw new Error('device state is too large');
    },
    page: (offset, data) => memory.page(offset, data),
  });

  try {
    await new Promise<void>((resolve, reject) => {
      socket.on('data', (chunk: Buffer) => {
        try {
          splitter.push(chunk);
        } catch (error) {
          socket.destroy();
          reject(error as Error);
          return;
        }
        if (memory.pendingBytes > MEMORY_HIGH_WATER_BYTES) {
          socket.pause();
          void memory.drained().then(() => socket.resume());
        }
      });
      socket.once('end', () => {
        try {
          endOfStream(splitter, split);
          resolve();
        } catch (error) {
          reject(error as Error);
        }
      });
      socket.once('error', reject);
    });
  } catch (error) {
    await memory.abort();
    throw error;
  }

  const written = await memory.finish();
  const file = await fs.promises.open(filePath, 'w', 0o600);
  try {
    await file.writev(state);
    await file.datasync();
  } finally {
    await file.close();
  }
  for (const part of state) checksum.update(part);
  return { sizeBytes: stateBytes, checksum: checksum.digest(), memory: written };
}

/** The stream ended: throws unless it was complete and its RAM block had the expected size. */
function endOfStream(
  splitter: MigrationStreamSplitter,
  block: { blockName: string; blockBytes: number },
): void {
  splitter.end();
  if (splitter.blockBytes !== block.blockBytes) {
    throw new Error(
      `RAM block ${block.blockName} has ${splitter.blockBytes ?? 'no'} bytes, expected ${block.blockBytes}`,
    );
  }
}
