import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentvmError } from '../../../../protocol/errors';
import {
  SparseMemoryWriter,
  verifyMemoryFile,
  warmMemoryFile,
} from '../../../../server/vmm/qemu/SparseMemoryFile';
import type { SnapshotMemory } from '../../../../server/vmm/VmmDriver';

const PAGE = 4096;
const SIZE = 64 * PAGE;

describe('SparseMemoryFile (unit)', () => {
  let dir: string;
  let memory: SnapshotMemory;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-memory-'));
    const writer = await SparseMemoryWriter.create(path.join(dir, 'snapshot.memory'), SIZE);
    // Two contiguous pages, one far away, then one before them: runs keep the write order.
    writer.page(4 * PAGE, Buffer.alloc(PAGE, 4));
    writer.page(5 * PAGE, Buffer.alloc(PAGE, 5));
    writer.page(40 * PAGE, Buffer.alloc(PAGE, 40));
    writer.page(1 * PAGE, Buffer.alloc(PAGE, 1));
    memory = await writer.finish();
  });

  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const corrupt = (error: unknown) =>
    error instanceof AgentvmError && error.code === 'SNAPSHOT_CORRUPT';

  it('puts each page at its offset, leaves the rest zero, and lists what it wrote in order', () => {
    const content = fs.readFileSync(memory.path);
    assert.equal(content.length, SIZE);
    assert.deepEqual(memory.runs, [
      [4 * PAGE, 2 * PAGE],
      [40 * PAGE, PAGE],
      [PAGE, PAGE],
    ]);
    for (const index of [1, 4, 5, 40]) assert.equal(content[index * PAGE + 100], index);
    assert.equal(content[0], 0);
    assert.equal(content[10 * PAGE], 0);
    assert.equal(content[63 * PAGE + 4095], 0);
  });

  it('verifies an intact file', async () => {
    await verifyMemoryFile(memory);
  });

  it('refuses a file with one flipped bit in a written page', async () => {
    const fd = fs.openSync(memory.path, 'r+');
    fs.writeSync(fd, Buffer.from([40 ^ 0x01]), 0, 1, 40 * PAGE + 7);
    fs.closeSync(fd);
    await assert.rejects(verifyMemoryFile(memory), corrupt);
  });

  it('refuses a run list that was changed', async () => {
    const runs = memory.runs.map(([offset, bytes]) => [offset, bytes] as [number, number]);
    runs[0] = [3 * PAGE, 3 * PAGE];
    await assert.rejects(verifyMemoryFile({ ...memory, runs }), corrupt);
  });

  it('refuses a truncated or missing file', async () => {
    fs.truncateSync(memory.path, SIZE / 2);
    await assert.rejects(verifyMemoryFile(memory), corrupt);
    fs.rmSync(memory.path);
    await assert.rejects(verifyMemoryFile(memory), /is missing/);
  });

  it('verifies runs longer than its read buffers, and sees a flip deep inside one', async () => {
    const size = 64 * 2 ** 20;
    const writer = await SparseMemoryWriter.create(path.join(dir, 'large.memory'), size);
    // 20 MiB of distinct pages: five read pieces, so every read buffer is used more than once.
    for (let offset = 8 * 2 ** 20; offset < 28 * 2 ** 20; offset += PAGE) {
      const page = Buffer.alloc(PAGE, offset / PAGE);
      page.writeUInt32LE(offset / PAGE);
      writer.page(offset, page);
    }
    const large = await writer.finish();
    assert.deepEqual(large.runs, [[8 * 2 ** 20, 20 * 2 ** 20]]);
    await verifyMemoryFile(large);

    const fd = fs.openSync(large.path, 'r+');
    fs.writeSync(fd, Buffer.from([0xff]), 0, 1, 25 * 2 ** 20 + 9);
    fs.closeSync(fd);
    await assert.rejects(verifyMemoryFile(large), corrupt);
  });

  it('refuses a page outside the memory', async () => {
    const writer = await SparseMemoryWriter.create(path.join(dir, 'other.memory'), SIZE);
    writer.page(SIZE, Buffer.alloc(PAGE, 1));
    await assert.rejects(writer.finish(), /outside/);
  });

  it('warms a file through a handle even after its path is gone', async () => {
    const file = await fs.promises.open(memory.path, 'r');
    fs.rmSync(memory.path);
    await warmMemoryFile(file);
    // The handle is closed: using it again fails.
    await assert.rejects(file.stat());
  });
});
