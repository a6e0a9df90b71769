import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buildInitramfs } from '../../../../server/vmm/image/buildInitramfs';
import { hashImageInputs } from '../../../../server/vmm/image/imageInputs';
import { createImageFixture, type ImageFixture } from './imageFixture';

describe('buildInitramfs (unit)', () => {
  let fixture: ImageFixture;
  let archive: Buffer;

  before(() => {
    fixture = createImageFixture();
    const output = path.join(fixture.root, 'initramfs.img');
    buildInitramfs(hashImageInputs(fixture.sources), output);
    archive = fs.readFileSync(output);
  });

  after(() => {
    fixture.cleanup();
  });

  const extract = (member: string) =>
    execFileSync('cpio', ['-i', '--to-stdout', '--quiet', member], { input: archive }).toString();

  it('lists the modules to load in dependency order, without built-in ones', () => {
    assert.deepEqual(extract('etc/agentvm-modules').trim().split('\n'), [
      'virtio_ring',
      'virtio',
      'virtio_mmio',
      'virtio_console',
      'virtio_blk',
      'net_failover',
      'virtio_net',
      'virtio_rng',
    ]);
  });

  it('stores compressed modules decompressed, under the name insmod is given', () => {
    assert.equal(extract('lib/modules/virtio_net.ko'), 'module virtio_net');
    assert.equal(extract('lib/modules/virtio_rng.ko'), 'module virtio_rng');
  });

  it('contains /init, busybox with an sh link, and a console device node', () => {
    const listing = execFileSync('cpio', ['-t', '-v', '--quiet'], { input: archive }).toString();

    assert.match(listing, /^-rwxr-xr-x .* init$/m);
    assert.match(listing, /^-rwxr-xr-x .* bin\/busybox$/m);
    assert.match(listing, /^lrwxrwxrwx .* bin\/sh -> busybox$/m);
    assert.match(listing, /^crw------- .* 5,\s+1 .* dev\/console$/m);
    assert.match(extract('init'), /switch_root \/newroot \/sbin\/agentvm-init/);
  });
});
