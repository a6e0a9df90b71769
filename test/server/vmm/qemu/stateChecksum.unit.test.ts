import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  checksumAlgorithm,
  checksumFile,
  createChecksum,
} from '../../../../server/vmm/qemu/stateChecksum';
import { snapshotInfoSchema } from '../../../../server/vmm/qemu/snapshotFile';
import { checksumOfBuffer } from './checksumOfBuffer';

const MiB = 2 ** 20;

describe('stateChecksum (unit)', () => {
  let dir: string;

  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-checksum-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('gives the published XXH64 of empty input', async () => {
    // The reference implementation's value for zero bytes with seed 0.
    assert.equal((await createChecksum()).digest(), 'xxh64:ef46db3751d8e999');
  });

  it('hashes a file of several read chunks like one call over all of it', async () => {
    const data = crypto.randomBytes(9 * MiB + 5);
    const file = path.join(dir, 'state');
    fs.writeFileSync(file, data);

    assert.equal(await checksumFile(file), await checksumOfBuffer(data));
    assert.equal(
      await checksumFile(file, 'sha256'),
      `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`,
    );
  });

  it('sees a single flipped bit', async () => {
    const data = crypto.randomBytes(5 * MiB);
    const file = path.join(dir, 'state');
    fs.writeFileSync(file, data);
    const before = await checksumFile(file);
    data[4 * MiB + 3] ^= 0x10;
    fs.writeFileSync(file, data);

    assert.notEqual(await checksumFile(file), before);
  });

  it('names the algorithm of a stored checksum and refuses anything else', () => {
    assert.equal(checksumAlgorithm('xxh64:0123456789abcdef'), 'xxh64');
    assert.equal(checksumAlgorithm(`sha256:${'a'.repeat(64)}`), 'sha256');
    assert.throws(() => checksumAlgorithm('a'.repeat(64)), /not a checksum/);
    assert.throws(() => checksumAlgorithm('xxh64:0123'), /not a checksum/);
  });

  it('reads a snapshot description written with a bare sha256', () => {
    const legacy = { statePath: '/s', sizeBytes: 1, sha256: 'b'.repeat(64), durationMs: 2 };
    assert.deepEqual(snapshotInfoSchema.parse(legacy), {
      statePath: '/s',
      sizeBytes: 1,
      checksum: `sha256:${'b'.repeat(64)}`,
      durationMs: 2,
    });
    assert.throws(() => snapshotInfoSchema.parse({ ...legacy, sha256: 'not hex' }));
  });
});
