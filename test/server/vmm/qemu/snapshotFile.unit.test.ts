import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PAGE_BYTES } from '../../../../server/vmm/qemu/MigrationStreamSplitter';
import { MigrationSink } from '../../../../server/vmm/qemu/MigrationSink';
import { replaceFile } from '../../../../server/vmm/qemu/snapshotFile';
import { checksumOfBuffer } from './checksumOfBuffer';
import { page, PAGE, sampleStream } from './sampleMigrationStream';

const MiB = 2 ** 20;

/** Bytes that differ at every offset, so a dropped or reordered chunk changes the checksum. */
function patterned(sizeBytes: number, seed: number): Buffer {
  const data = Buffer.alloc(sizeBytes);
  for (let offset = 0; offset + 4 <= sizeBytes; offset += 4) {
    data.writeUInt32LE((offset ^ seed) >>> 0, offset);
  }
  return data;
}

describe('snapshot files (unit)', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-snapfile-'));
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes a stream longer than one flush interval byte for byte, with its checksum', async () => {
    // 70 MiB crosses the 16 MiB write buffer and the 32 MiB flush interval more than once.
    const data = patterned(70 * MiB, 0x1234567);
    const file = path.join(dir, 'snapshot.state.tmp');
    const sink = await MigrationSink.listen(path.join(dir, 'migrate.sock'), file);
    const client = net.connect(sink.socketPath);
    for (let offset = 0; offset < data.length; offset += 3 * MiB + 17) {
      client.write(data.subarray(offset, Math.min(offset + 3 * MiB + 17, data.length)));
    }
    client.end();

    const written = await sink.written();
    sink.close();
    assert.equal(written.sizeBytes, data.length);
    assert.equal(written.checksum, await checksumOfBuffer(data));
    assert.ok(fs.readFileSync(file).equals(data), 'the file holds exactly the streamed bytes');
  });

  it('writes against a base only the pages that differ from it, with the checksum of what it wrote', async () => {
    // The sample's `mem` pages as the base holds them: the state keeps no `mem` record at all.
    const { stream, expectedState } = sampleStream();
    const basePath = path.join(dir, 'memory.ram');
    fs.writeFileSync(basePath, Buffer.concat([1, 0, 2, 3, 0, 0, 0, 7].map((fill) => page(fill))));
    const file = path.join(dir, 'snapshot.state.tmp');
    const delta = { basePath, blockName: 'mem', blockBytes: 8 * PAGE_BYTES, blockAddresses: true };
    const sink = await MigrationSink.listen(path.join(dir, 'migrate.sock'), file, delta);
    const client = net.connect(sink.socketPath);
    for (let offset = 0; offset < stream.length; offset += 1000) {
      client.write(stream.subarray(offset, offset + 1000));
    }
    client.end();

    const written = await sink.written();
    sink.close();
    assert.ok(fs.readFileSync(file).equals(expectedState), 'the file holds the state only');
    assert.equal(written.sizeBytes, expectedState.length);
    assert.equal(written.checksum, await checksumOfBuffer(expectedState));
    assert.equal(written.memory, undefined);

    // One page changed since: the state carries it, named, and nothing else of `mem`.
    fs.writeFileSync(basePath, page(9), { flag: 'r+' });
    const again = await MigrationSink.listen(path.join(dir, 'migrate2.sock'), file, delta);
    net.connect(again.socketPath).end(stream);
    await again.written();
    again.close();
    const state = fs.readFileSync(file);
    assert.equal(state.length, expectedState.length + 8 + 4 + PAGE_BYTES);
    assert.ok(
      state.includes(
        Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, PAGE, 3]), Buffer.from('mem'), page(1)]),
      ),
    );
  });

  it('fails a delta whose base is not the size of the RAM block, and says so', async () => {
    const { stream } = sampleStream();
    const basePath = path.join(dir, 'memory.ram');
    fs.writeFileSync(basePath, page(0));
    const delta = { basePath, blockName: 'mem', blockBytes: 8 * PAGE_BYTES, blockAddresses: true };
    const sink = await MigrationSink.listen(
      path.join(dir, 'migrate.sock'),
      path.join(dir, 'snapshot.state.tmp'),
      delta,
    );
    const client = net.connect(sink.socketPath);
    client.on('error', () => undefined);
    client.end(stream);

    await assert.rejects(sink.written(), /memory base .* has 4096 bytes, the RAM block 32768/);
    sink.close();
  });

  it('replaces a snapshot atomically and frees the old one only on discard', async () => {
    const final = path.join(dir, 'snapshot.state');
    const temp = path.join(dir, 'snapshot.state.tmp');
    fs.writeFileSync(final, 'old');
    fs.writeFileSync(temp, 'new');

    const replaced = replaceFile(temp, final);
    assert.equal(fs.readFileSync(final, 'utf8'), 'new');
    assert.equal(fs.existsSync(temp), false);
    assert.equal(fs.readFileSync(`${final}.old`, 'utf8'), 'old');

    await replaced.discard();
    assert.deepEqual(fs.readdirSync(dir), ['snapshot.state']);
  });

  it('replaces nothing when there was no snapshot yet', async () => {
    const final = path.join(dir, 'snapshot.state');
    const temp = path.join(dir, 'snapshot.state.tmp');
    fs.writeFileSync(temp, 'first');

    await replaceFile(temp, final).discard();
    assert.deepEqual(fs.readdirSync(dir), ['snapshot.state']);
    assert.equal(fs.readFileSync(final, 'utf8'), 'first');
  });

  it('drops a leftover of an earlier replace that never discarded', async () => {
    const final = path.join(dir, 'snapshot.state');
    const temp = path.join(dir, 'snapshot.state.tmp');
    fs.writeFileSync(`${final}.old`, 'stale');
    fs.writeFileSync(final, 'old');
    fs.writeFileSync(temp, 'new');

    const replaced = replaceFile(temp, final);
    assert.equal(fs.readFileSync(`${final}.old`, 'utf8'), 'old');
    await replaced.discard();
    assert.deepEqual(fs.readdirSync(dir), ['snapshot.state']);
  });
});
