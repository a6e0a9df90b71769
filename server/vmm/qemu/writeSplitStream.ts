import type net from 'node:net';
import fs from 'node:fs';
import { MigrationStreamSplitter } from './MigrationStreamSplitter';
import type { WrittenFile } from './snapshotFile';
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
          splitter.end();
          if (splitter.blockBytes !== split.blockBytes) {
            throw new Error(
              `RAM block ${split.blockName} has ${splitter.blockBytes ?? 'no'} bytes, expected ${split.blockBytes}`,
            );
          }
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
