import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withBuildLock } from '../../../../server/vmm/image/buildLock';

describe('withBuildLock (unit)', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-lock-'));
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs builds of one images directory one after the other', async () => {
    const order: string[] = [];
    const step = (name: string) => async () => {
      order.push(`${name} start`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      order.push(`${name} end`);
    };

    await Promise.all([withBuildLock(dir, step('a')), withBuildLock(dir, step('b'))]);

    assert.deepEqual(order, ['a start', 'a end', 'b start', 'b end']);
    assert.equal(fs.existsSync(path.join(dir, '.build.lock')), false);
  });

  it('takes over a lock left by a process that has ended', async () => {
    const exited = spawnSync('true');
    fs.writeFileSync(path.join(dir, '.build.lock'), String(exited.pid));

    const result = await withBuildLock(dir, async () => 'built');

    assert.equal(result, 'built');
  });

  it('releases the lock when the build throws', async () => {
    await assert.rejects(
      withBuildLock(dir, async () => Promise.reject(new Error('boom'))),
      /boom/,
    );

    assert.equal(fs.existsSync(path.join(dir, '.build.lock')), false);
  });
});
