import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { MigrationSink, replaceFile } from '../../../../server/vmm/qemu/snapshotFile';
import { checksumOfBuffer } from './checksumOfBuffer';

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
