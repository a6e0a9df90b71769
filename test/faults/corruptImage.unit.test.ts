import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentvmError } from '../../protocol/errors';
import { loadImageFor } from '../../server/vmm/image/loadImage';
import { writeImageManifest } from '../../server/vmm/image/imageManifest';
import type { ImageInputs } from '../../server/vmm/image/imageInputs';

const key = 'c'.repeat(64);
const inputs = { key, hashes: { kernel: 'k' } } as unknown as ImageInputs;

/** Issue 6, fault 4: a damaged guest image is reported as IMAGE_CORRUPT before any VM boots. */
describe('corrupt guest image (unit)', () => {
  let imagesRoot: string;
  let imageDir: string;

  beforeEach(() => {
    imagesRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-images-'));
    imageDir = path.join(imagesRoot, key);
    fs.mkdirSync(imageDir);
    const kernel = crypto.randomBytes(64 * 1024);
    const initramfs = crypto.randomBytes(32 * 1024);
    fs.writeFileSync(path.join(imageDir, 'vmlinuz'), kernel);
    fs.writeFileSync(path.join(imageDir, 'initramfs.img'), initramfs);
    fs.writeFileSync(path.join(imageDir, 'rootfs.ext4'), '');
    fs.truncateSync(path.join(imageDir, 'rootfs.ext4'), 8 * 1048576);
    const sha256 = (data: Buffer) => crypto.createHash('sha256').update(data).digest('hex');
    writeImageManifest(imageDir, {
      formatVersion: 1,
      key,
      builtAt: new Date(0).toISOString(),
      builderVersion: 1,
      rootfsCacheKey: 'r',
      inputs: { kernel: 'k' },
      files: {
        kernel: { name: 'vmlinuz', sizeBytes: kernel.length, sha256: sha256(kernel) },
        initramfs: {
          name: 'initramfs.img',
          sizeBytes: initramfs.length,
          sha256: sha256(initramfs),
        },
        rootfs: { name: 'rootfs.ext4', sizeBytes: 8 * 1048576 },
      },
      rootfs: { contentBytes: 0, freeBytes: 0 },
      timings: { debootstrapReused: true, initramfsMs: 0, stageMs: 0, mke2fsMs: 0, totalMs: 0 },
    });
  });

  afterEach(() => {
    fs.rmSync(imagesRoot, { recursive: true, force: true });
  });

  function assertCorrupt(pattern: RegExp): void {
    assert.throws(
      () => loadImageFor(imagesRoot, inputs),
      (error: unknown) =>
        error instanceof AgentvmError &&
        error.code === 'IMAGE_CORRUPT' &&
        pattern.test(error.message),
    );
  }

  it('loads an intact image', () => {
    assert.equal(loadImageFor(imagesRoot, inputs).key, key);
  });

  it('reports a truncated root filesystem as IMAGE_CORRUPT', () => {
    fs.truncateSync(path.join(imageDir, 'rootfs.ext4'), 4 * 1048576);
    assertCorrupt(/rootfs\.ext4 is 4194304 bytes/);
  });

  it('reports a kernel with one flipped bit (same size) as IMAGE_CORRUPT', () => {
    const file = path.join(imageDir, 'vmlinuz');
    const data = fs.readFileSync(file);
    data[1000] ^= 0x01;
    fs.writeFileSync(file, data);
    assertCorrupt(/vmlinuz.*sha256/);
  });

  it('reports a missing initramfs as IMAGE_CORRUPT', () => {
    fs.rmSync(path.join(imageDir, 'initramfs.img'));
    assertCorrupt(/initramfs\.img is missing/);
  });

  it('reports a manifest that is not JSON as IMAGE_CORRUPT', () => {
    fs.writeFileSync(path.join(imageDir, 'manifest.json'), '{"formatVersion": 1, "key": "cc');
    assertCorrupt(/manifest .* unreadable/);
  });
});
