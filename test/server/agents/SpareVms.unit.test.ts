import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SpareVms } from '../../../server/agents/SpareVms';
import { agentDir } from '../../../server/config/paths';
import type { TemplateShape } from '../../../server/vmm/templates/templateKey';
import type { VmTemplate } from '../../../server/vmm/VmmDriver';
import {
  newSpareVms,
  RecordingSpareDriver,
  spareShape,
  templateKeyOf,
  untilPrepared,
} from './spareVmsTestKit';

const shape = spareShape('image-1');

function template(key: string): VmTemplate {
  return {
    key,
    memoryPath: '/nonexistent/memory.ram',
    diskPath: '/nonexistent/overlay.qcow2',
    snapshot: {
      statePath: '/nonexistent/state',
      sizeBytes: 1,
      checksum: 'sha256:0',
      durationMs: 1,
    },
    memoryMiB: 512,
    vcpus: 1,
    egress: true,
  };
}

describe('SpareVms', () => {
  let dataDir: string;
  let driver: RecordingSpareDriver;
  let currentTemplate: VmTemplate | undefined;
  let spares: SpareVms;

  const templates: {
    keyFor(of: TemplateShape): string;
    find(of?: TemplateShape): { template?: VmTemplate; reason?: string };
  } = {
    keyFor: templateKeyOf,
    find: () => (currentTemplate ? { template: currentTemplate } : { reason: 'none' }),
  };
  const expectedKey = 'image-1/512/1/true';

  /** Replenish and wait until the driver has the spare ready (the delay is 0 in these tests). */
  async function replenished(of = template(expectedKey)): Promise<void> {
    const before = driver.prepared.length;
    spares.replenishSoon(shape, of);
    await untilPrepared(driver, before);
  }

  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-spares-'));
    driver = new RecordingSpareDriver();
    currentTemplate = template(expectedKey);
    spares = newSpareVms(dataDir, driver, templates as never);
  });

  afterEach(async () => {
    await spares.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('has nothing to claim before an agent of the shape was cloned', () => {
    assert.equal(spares.claim(shape), undefined);
  });

  it('prepares the next clone in the directory of a reserved agent id, which the next agent of the shape claims once', async () => {
    await replenished();
    assert.equal(driver.prepared.length, 1);
    const spec = driver.prepared[0];

    const id = spares.claim(shape);
    assert.equal(id, spec.id);
    assert.equal(spec.vmDir, agentDir(id!, dataDir));
    // The spare relays egress where the agent's own listener will be.
    assert.equal(
      spec.egress?.socketPath,
      path.join(agentDir(id!, dataDir), 'egress', 'proxy.sock'),
    );
    assert.equal(spec.memoryMiB, shape.memoryMiB);
    assert.equal(spares.claim(shape), undefined, 'one spare, one claim');

    // Another shape has its own template, and no spare.
    assert.equal(spares.claim({ ...shape, memoryMiB: 1024 }), undefined);
  });

  it('prepares one spare per template however often agents are cloned from it', async () => {
    await replenished();
    spares.replenishSoon(shape, template(expectedKey));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(driver.prepared.length, 1);
  });

  it('ends a spare whose template is no longer the one in use, and removes its directory', async () => {
    await replenished();
    const dir = driver.prepared[0].vmDir;
    currentTemplate = template('rebuilt');

    assert.equal(spares.claim(shape), undefined);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(driver.discarded, [dir]);
    assert.equal(fs.existsSync(dir), false);
  });

  it('ends a claimed spare its agent did not use, but keeps the directory, which is the agent’s', async () => {
    await replenished();
    const id = spares.claim(shape)!;

    await spares.release(id);
    assert.deepEqual(driver.discarded, [agentDir(id, dataDir)]);
    assert.equal(fs.existsSync(agentDir(id, dataDir)), true);
    // Released once: a second release (the agent's start ending too) does nothing.
    await spares.release(id);
    assert.equal(driver.discarded.length, 1);
  });

  it('ends every spare when closed: unclaimed ones with their directories', async () => {
    await replenished();
    const claimedId = spares.claim(shape)!;
    await replenished();
    const unclaimedDir = driver.prepared[1].vmDir;

    await spares.close();
    assert.deepEqual(
      [...driver.discarded].sort(),
      [agentDir(claimedId, dataDir), unclaimedDir].sort(),
    );
    assert.equal(fs.existsSync(unclaimedDir), false);
    assert.equal(fs.existsSync(agentDir(claimedId, dataDir)), true);

    // Nothing is prepared after the close, even for a clone that was just made.
    spares.replenishSoon(shape, template(expectedKey));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(driver.prepared.length, 2);
  });

  it('prepares, at broker start, a spare for each shape whose template exists, and none for the others', async () => {
    const other = { ...shape, memoryMiB: 2048 };
    const find = templates.find;
    templates.find = ((of: TemplateShape) =>
      of.memoryMiB === 2048 ? { reason: 'not built' } : find()) as typeof templates.find;
    try {
      spares.prepareForExisting([shape, other, shape]);
      for (let waited = 0; driver.prepared.length === 0 && waited < 100; waited++) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      templates.find = find;
    }
    assert.deepEqual(
      driver.prepared.map((spec) => spec.memoryMiB),
      [512],
    );
    assert.ok(spares.claim(shape));
  });

  it('offers no spare when the driver could not prepare one, and leaves no directory', async () => {
    driver.succeed = false;
    await replenished();
    assert.equal(spares.claim(shape), undefined);
    assert.equal(fs.existsSync(agentDir(driver.prepared[0].id, dataDir)), false);
  });
});
