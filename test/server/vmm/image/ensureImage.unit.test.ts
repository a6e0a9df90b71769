import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AgentvmError } from '../../../../protocol/errors';
import type { AgentState } from '../../../../protocol/api';
import { agentsDir, imagesDir, storePath } from '../../../../server/config/paths';
import { Store } from '../../../../server/store/Store';
import { ensureImage } from '../../../../server/vmm/image/ensureImage';
import { hashImageInputs } from '../../../../server/vmm/image/imageInputs';
import { loadImage } from '../../../../server/vmm/image/loadImage';
import { anAgentRecord } from '../../../helpers/anAgentRecord';
import { writeOverlay, writeTemplate } from './imageDependents';
import { createImageFixture, type ImageFixture } from './imageFixture';

const mebibyte = 1024 * 1024;

function debugfsCat(image: string, file: string): string {
  return execFileSync('debugfs', ['-R', `cat ${file}`, image], {
    stdio: ['ignore', 'pipe', 'ignore'],
  }).toString();
}

function expectError(code: string, pattern: RegExp) {
  return (error: unknown) =>
    error instanceof AgentvmError && error.code === code && pattern.test(error.message);
}

describe('ensureImage (unit)', function () {
  // Staging chowns files to the agent user, which only root may do; builds need root anyway.
  before(function () {
    if (process.getuid?.() !== 0) this.skip();
  });

  let fixture: ImageFixture;
  let cachedRootfs: string;
  const build = (extra: { onProgress?: (line: string) => void; force?: boolean } = {}) =>
    ensureImage({
      dataDir: fixture.dataDir,
      sources: fixture.sources,
      freeSpaceBytes: 8 * mebibyte,
      ...extra,
    });

  beforeEach(() => {
    fixture = createImageFixture();
    cachedRootfs = fixture.seedRootfsCache(hashImageInputs(fixture.sources).rootfsCacheKey);
  });

  afterEach(() => {
    fixture.cleanup();
  });

  it('says no image was built yet before the first build', () => {
    assert.throws(
      () => loadImage(fixture.dataDir, fixture.sources),
      expectError('IMAGE_MISSING', /No guest image/),
    );
  });

  it('builds an image whose root filesystem carries the agent user, git config, init and bundles', async () => {
    const image = await build();

    assert.deepEqual(loadImage(fixture.dataDir, fixture.sources), image);
    assert.match(
      debugfsCat(image.rootfsPath, '/etc/passwd'),
      /^agent:x:1000:1000:.*:\/home\/agent:\/bin\/bash$/m,
    );
    assert.match(
      debugfsCat(image.rootfsPath, '/etc/gitconfig'),
      /directory = \*[\s\S]*defaultBranch = main/,
    );
    assert.equal(
      debugfsCat(image.rootfsPath, '/usr/local/bin/agentctl').split('\n')[0],
      '#!/usr/bin/node',
    );
    assert.match(debugfsCat(image.rootfsPath, '/sbin/agentvm-init'), /exec \/usr\/bin\/tini -s --/);
    const workspace = execFileSync('debugfs', ['-R', 'stat /workspace', image.rootfsPath], {
      stdio: ['ignore', 'pipe', 'ignore'],
    }).toString();
    assert.match(workspace, /User:\s+1000\s+Group:\s+1000/);
    assert.equal(spawnSync('e2fsck', ['-fn', image.rootfsPath]).status, 0);
  });

  it('leaves the hard-linked debootstrap cache as it was', async () => {
    await build();

    assert.equal(
      fs.readFileSync(path.join(cachedRootfs, 'etc/passwd'), 'utf8'),
      'root:x:0:0:root:/root:/bin/bash\n',
    );
    assert.equal(
      fs.readFileSync(path.join(cachedRootfs, 'etc/resolv.conf'), 'utf8'),
      'nameserver 192.0.2.1\n',
    );
    assert.equal(fs.existsSync(path.join(cachedRootfs, 'workspace')), false);
  });

  it('reuses a complete image instead of building again', async () => {
    await build();
    const lines: string[] = [];

    await build({ onProgress: (line) => lines.push(line) });

    assert.deepEqual(lines, []);
  });

  it('leaves no image directory and no temporary files when a build fails midway', async () => {
    await assert.rejects(
      build({
        onProgress: (line) => {
          if (/mke2fs/.test(line)) throw new Error('interrupted at mke2fs');
        },
      }),
      expectError('IMAGE_BUILD_FAILED', /interrupted at mke2fs/),
    );

    const names = fs.readdirSync(imagesDir(fixture.dataDir));
    assert.deepEqual(names.filter((name) => name !== 'cache').sort(), []);
    assert.throws(
      () => loadImage(fixture.dataDir, fixture.sources),
      expectError('IMAGE_MISSING', /No guest image/),
    );
  });

  it('reports IMAGE_CORRUPT when a file is not the size the manifest records', async () => {
    const image = await build();

    fs.appendFileSync(image.initramfsPath, 'x');

    assert.throws(
      () => loadImage(fixture.dataDir, fixture.sources),
      expectError('IMAGE_CORRUPT', /initramfs\.img is \d+ bytes; its manifest says/),
    );
  });

  it('reports IMAGE_CORRUPT when an image file is missing', async () => {
    const image = await build();

    fs.rmSync(image.kernelPath);

    assert.throws(
      () => loadImage(fixture.dataDir, fixture.sources),
      expectError('IMAGE_CORRUPT', /kernel is missing/),
    );
  });

  it('rebuilds a corrupt image on the next ensureImage', async () => {
    const image = await build();
    fs.rmSync(image.rootfsPath);

    const rebuilt = await build();

    assert.equal(rebuilt.key, image.key);
    assert.ok(fs.statSync(rebuilt.rootfsPath).size > 0);
  });

  describe('an image rebuilt under the same key', () => {
    /** An agent stored in `state` whose disk is an overlay on the image's root filesystem. */
    const agentOn = (image: { rootfsPath: string }, id: string, state: AgentState) => {
      const store = new Store(storePath(fixture.dataDir));
      store.insertAgent(
        anAgentRecord({ id, title: id, text: id, profile: 'p', owner: 'o', state }),
      );
      store.close();
      writeOverlay(
        path.join(agentsDir(fixture.dataDir), id, 'overlay.qcow2'),
        image.rootfsPath,
        'raw',
      );
    };

    it('is refused with --force while an agent that has not ended has its disk on it, and names the agent', async () => {
      const image = await build();
      agentOn(image, 'paused1', 'awaiting_review');
      const manifest = fs.readFileSync(
        path.join(imagesDir(fixture.dataDir), image.key, 'manifest.json'),
      );

      await assert.rejects(build({ force: true }), expectError('INVALID_STATE', /paused1/));
      // Nothing was touched.
      assert.deepEqual(
        fs.readFileSync(path.join(imagesDir(fixture.dataDir), image.key, 'manifest.json')),
        manifest,
      );
    });

    it('takes the templates built on the old image with it (regression: clones of them failed on the new root filesystem)', async () => {
      const image = await build();
      const templateDisk = writeTemplate(
        fixture.dataDir,
        'tpl-on-image',
        image.key,
        image.rootfsPath,
      );
      const otherTemplate = writeTemplate(
        fixture.dataDir,
        'tpl-other',
        'f'.repeat(64),
        image.rootfsPath,
      );
      agentOn(image, 'ended1', 'done');
      fs.rmSync(image.rootfsPath); // corrupt: the next build replaces the image

      const lines: string[] = [];
      await build({ onProgress: (line) => lines.push(line) });

      assert.equal(fs.existsSync(path.dirname(templateDisk)), false);
      assert.equal(fs.existsSync(path.dirname(otherTemplate)), true);
      assert.ok(lines.some((line) => /removed template tpl-on-image/.test(line)));
    });

    it('keeps the templates while an agent that has not ended is on the image being repaired', async () => {
      const image = await build();
      const templateDisk = writeTemplate(
        fixture.dataDir,
        'tpl-on-image',
        image.key,
        image.rootfsPath,
      );
      agentOn(image, 'running1', 'running');
      fs.rmSync(image.rootfsPath);

      await build();

      assert.equal(fs.existsSync(templateDisk), true);
    });
  });

  it('names the changed input when the guest agent changes, and rebuilds without debootstrap', async () => {
    const first = await build();
    fs.appendFileSync(fixture.sources.guestAgentPath, '// v2\n');

    assert.throws(
      () => loadImage(fixture.dataDir, fixture.sources),
      expectError('IMAGE_MISSING', /out of date \(changed inputs: guest-agent;/),
    );
    const lines: string[] = [];
    const second = await build({ onProgress: (line) => lines.push(line) });

    assert.notEqual(second.key, first.key);
    assert.ok(lines.some((line) => /reusing debootstrap cache/.test(line)));
    assert.equal(
      debugfsCat(second.rootfsPath, '/opt/agentvm/guest-agent.js').endsWith('// v2\n'),
      true,
    );
    assert.deepEqual(loadImage(fixture.dataDir, fixture.sources), second);
  });

  it('removes temporary directories of dead builds on the next build', async () => {
    const exited = spawnSync('true');
    const stale = path.join(imagesDir(fixture.dataDir), `.tmp-abc-${exited.pid}-0badc0de`);
    fs.mkdirSync(stale, { recursive: true });
    fs.writeFileSync(path.join(stale, 'rootfs.ext4'), 'half written');

    await build();

    assert.equal(fs.existsSync(stale), false);
  });
});
