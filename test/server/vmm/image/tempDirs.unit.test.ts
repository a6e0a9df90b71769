import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  makeTempDir,
  removeStaleTempDirs,
  removeTree,
} from '../../../../server/vmm/image/tempDirs';

describe('tempDirs (unit)', () => {
  let parent: string;

  beforeEach(() => {
    parent = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-temp-'));
  });

  afterEach(() => {
    fs.rmSync(parent, { recursive: true, force: true });
  });

  it('removes temporary directories of ended processes and keeps those of live ones', () => {
    const live = makeTempDir(parent, 'live');
    const dead = path.join(parent, `.tmp-dead-${spawnSync('true').pid}-00ff00ff`);
    fs.mkdirSync(dead);
    fs.mkdirSync(path.join(parent, 'not-temporary'));

    const removed = removeStaleTempDirs(parent);

    assert.deepEqual(removed, [path.basename(dead)]);
    assert.equal(fs.existsSync(live), true);
    assert.equal(fs.existsSync(path.join(parent, 'not-temporary')), true);
  });

  it('unmounts a file system left mounted inside a tree before deleting it', function () {
    if (process.getuid?.() !== 0) this.skip();
    const tree = makeTempDir(parent, 'mounted');
    const mountPoint = path.join(tree, 'rootfs', 'proc');
    fs.mkdirSync(mountPoint, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', mountPoint]);
    fs.writeFileSync(path.join(mountPoint, 'inside'), 'x');

    removeTree(tree);

    assert.equal(fs.existsSync(tree), false);
    assert.equal(fs.readFileSync('/proc/mounts', 'utf8').includes(mountPoint), false);
  });
});
