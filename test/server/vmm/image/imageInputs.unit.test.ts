import assert from 'node:assert/strict';
import fs from 'node:fs';
import { AgentvmError } from '../../../../protocol/errors';
import { hashImageInputs, resolveModules } from '../../../../server/vmm/image/imageInputs';
import { createImageFixture, type ImageFixture } from './imageFixture';

describe('imageInputs (unit)', () => {
  let fixture: ImageFixture;

  beforeEach(() => {
    fixture = createImageFixture();
  });

  afterEach(() => {
    fixture.cleanup();
  });

  it('gives the same key for the same inputs', () => {
    assert.equal(hashImageInputs(fixture.sources).key, hashImageInputs(fixture.sources).key);
  });

  const editable = [
    ['kernel', 'kernelPath'],
    ['initramfs init script', 'initramfsInitPath'],
    ['root filesystem init script', 'rootfsInitPath'],
    ['guest agent bundle', 'guestAgentPath'],
    ['agentctl bundle', 'agentctlPath'],
  ] as const;
  for (const [label, field] of editable) {
    it(`changes the image key but not the debootstrap cache key when the ${label} changes`, () => {
      const before = hashImageInputs(fixture.sources);

      fs.appendFileSync(fixture.sources[field], '\n// edited');
      const after = hashImageInputs(fixture.sources);

      assert.notEqual(after.key, before.key);
      assert.equal(after.rootfsCacheKey, before.rootfsCacheKey);
    });
  }

  it('changes the image key when a kernel module changes', () => {
    const before = hashImageInputs(fixture.sources);

    fs.appendFileSync(`${fixture.sources.modulesDir}/kernel/virtio_blk.ko`, 'x');

    assert.notEqual(hashImageInputs(fixture.sources).key, before.key);
  });

  it('changes both keys when the debootstrap package list changes', () => {
    const before = hashImageInputs(fixture.sources);
    const recipe = {
      ...fixture.sources.debootstrap,
      packages: [...fixture.sources.debootstrap.packages, 'curl'],
    };

    const after = hashImageInputs({ ...fixture.sources, debootstrap: recipe });

    assert.notEqual(after.key, before.key);
    assert.notEqual(after.rootfsCacheKey, before.rootfsCacheKey);
  });

  it('resolves modules in load order, compressed ones included, and leaves out built-in ones', () => {
    const modules = resolveModules(fixture.sources.modulesDir, [
      'virtio',
      'failover',
      'net_failover',
      'virtio_net',
    ]);

    assert.deepEqual(
      modules.map((module) => module.name),
      ['virtio', 'net_failover', 'virtio_net'],
    );
    assert.match(modules[2].path, /virtio_net\.ko\.gz$/);
  });

  it('reports a module that is neither a file nor built in as a missing host requirement', () => {
    assert.throws(
      () => resolveModules(fixture.sources.modulesDir, ['virtio', 'vhost_vsock']),
      (error: unknown) =>
        error instanceof AgentvmError &&
        error.code === 'HOST_REQUIREMENT_MISSING' &&
        /vhost_vsock/.test(error.message),
    );
  });

  it('reports an unbuilt guest agent bundle as a missing image with a build hint', () => {
    fs.rmSync(fixture.sources.guestAgentPath);

    assert.throws(
      () => hashImageInputs(fixture.sources),
      (error: unknown) =>
        error instanceof AgentvmError &&
        error.code === 'IMAGE_MISSING' &&
        /npm run build/.test(error.hint),
    );
  });
});
