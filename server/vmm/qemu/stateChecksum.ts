import crypto from 'node:crypto';
import fs from 'node:fs';
import xxhash from 'xxhash-wasm';

/**
 * Checksums of snapshot state files, written as `algorithm:hex`. They catch a file that changed on
 * disk (bit rot, truncation, a stray write), not an attacker: whoever can write the data directory
 * can also rewrite the checksum beside it. So the default is XXH64, which hashes a 150 MiB stream in
 * ≈30 ms where sha256 took ≈140 ms, on the path of every resume. sha256 stays readable for
 * snapshots written before.
 */
export type ChecksumAlgorithm = 'xxh64' | 'sha256';

export const DEFAULT_CHECKSUM_ALGORITHM: ChecksumAlgorithm = 'xxh64';

/** `algorithm:hex` with a lowercase hex digest of the algorithm's length. */
export const checksumPattern = /^(xxh64:[0-9a-f]{16}|sha256:[0-9a-f]{64})$/;

/**
 * For records written before checksums named their algorithm: a zod preprocess step that turns a
 * bare sha256 hex field `legacyKey` into `key: "sha256:<hex>"`, and leaves anything else alone.
 */
export function namingLegacySha256(legacyKey: string, key: string) {
  return (value: unknown): unknown => {
    if (typeof value !== 'object' || value === null || !(legacyKey in value)) return value;
    const { [legacyKey]: hex, ...rest } = value as Record<string, unknown>;
    return { [key]: `sha256:${String(hex)}`, ...rest };
  };
}

/** Something that hashes a stream chunk by chunk. */
export interface StreamChecksum {
  update(chunk: Uint8Array): void;
  /** `algorithm:hex` of everything passed to `update`. */
  digest(): string;
}

let xxhashApi: ReturnType<typeof xxhash> | undefined;

export async function createChecksum(
  algorithm: ChecksumAlgorithm = DEFAULT_CHECKSUM_ALGORITHM,
): Promise<StreamChecksum> {
  if (algorithm === 'sha256') {
    const hash = crypto.createHash('sha256');
    return {
      update: (chunk) => hash.update(chunk),
      digest: () => `sha256:${hash.digest('hex')}`,
    };
  }

  // The WebAssembly module is compiled once per process.
  xxhashApi ??= xxhash();
  const hash = (await xxhashApi).create64();
  return {
    update: (chunk) => hash.update(chunk),
    digest: () => `xxh64:${hash.digest().toString(16).padStart(16, '0')}`,
  };
}

/** The algorithm a stored checksum was made with. */
export function checksumAlgorithm(checksum: string): ChecksumAlgorithm {
  if (!checksumPattern.test(checksum)) throw new Error(`not a checksum: ${checksum}`);
  return checksum.slice(0, checksum.indexOf(':')) as ChecksumAlgorithm;
}

/**
 * Bytes hashed per read: a restore waits for this checksum, and 64 KiB reads (a read stream's
 * default) cost one thread-pool round trip each.
 */
const CHUNK_BYTES = 4 * 2 ** 20;

/** Checksum of a file, `algorithm:hex`. The next chunk is read while the current one is hashed. */
export async function checksumFile(
  filePath: string,
  algorithm: ChecksumAlgorithm = DEFAULT_CHECKSUM_ALGORITHM,
): Promise<string> {
  const checksum = await createChecksum(algorithm);
  const file = await fs.promises.open(filePath, 'r');
  try {
    const read = async () => {
      const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      const { bytesRead } = await file.read(chunk, 0, CHUNK_BYTES, null);
      return chunk.subarray(0, bytesRead);
    };
    let next = read();
    for (;;) {
      const data = await next;
      if (data.length === 0) break;

      next = read();
      checksum.update(data);
    }
  } finally {
    await file.close();
  }

  return checksum.digest();
}
