import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SpareVms } from '../../../server/agents/SpareVms';
import { agentDir } from '../../../server/config/paths';
import type { TemplateShape } from '../../../server/vmm/templates/templateKey';
import type { VmSpec, VmTemplate } from '../../../server/vmm/VmmDriver';
import {
  newSpareVms,
  RecordingSpareDriver,
  spareShape,
  templateKeyOf,
  untilPrepared,
} from './spareVmsTestKit';

describe('a spare whose template changed while it waited (unit)', () => {
  let dataDir: string;
  let templatesDir: string;
  let driver: RecordingSpareDriver;
  let spares: SpareVms;
  /** The template in use, by image key (one per image, as for one profile's shape). */
  let inUse: Map<string, VmTemplate>;

  const shapeOf = spareShape;
  const keyOf = (imageKey: string) => `${imageKey}/512/1/true`;

  /** Writes a template's files (anew: new inodes), as a build does, and puts it in use. */
  function buildTemplate(imageKey: string): VmTemplate {
    const dir = path.join(templatesDir, keyOf(imageKey).replaceAll('/', '-'));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    for (const name of ['memory.ram', 'overlay.qcow2', 'snapshot.state']) {
      fs.writeFileSync(path.join(dir, name), 'the same inputs, built again');
    }
    const template: VmTemplate = {
      key: keyOf(imageKey),
      memoryPath: path.join(dir, 'memory.ram'),
      diskPath: path.join(dir, 'overlay.qcow2'),
      snapshot: {
        statePath: path.join(dir, 'snapshot.state'),
        sizeBytes: 1,
        checksum: 'sha256:0',
        durationMs: 1,
      },
      memoryMiB: 512,
      vcpus: 1,
      egress: true,
    };
    inUse.set(imageKey, template);
    return template;
  }

  async function sparePrepared(imageKey: string): Promise<VmSpec> {
    const before = driver.prepared.length;
    spares.replenishSoon(shapeOf(imageKey), inUse.get(imageKey)!);
    await untilPrepared(driver, before);
    return driver.prepared[before];
  }

  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-spare-template-'));
    templatesDir = path.join(dataDir, 'templates');
    driver = new RecordingSpareDriver();
    inUse = new Map();
    spares = newSpareVms(dataDir, driver, {
      keyFor: templateKeyOf,
      find: (of: TemplateShape) => {
        const template = inUse.get(of.image.key);
        return template ? { template } : { reason: 'none' };
      },
    });
  });

  afterEach(async () => {
    await spares.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('is not claimed when the template was removed and built again under the same key', async () => {
    buildTemplate('image-1');
    const spare = await sparePrepared('image-1');
    // The operator removes the template and builds it again: same inputs, same key, new files.
    buildTemplate('image-1');

    assert.equal(spares.claim(shapeOf('image-1')), undefined);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(driver.discarded, [spare.vmDir]);
    assert.equal(fs.existsSync(spare.vmDir), false);
  });

  it('is still claimed while its template files are the ones it was launched with', async () => {
    buildTemplate('image-1');
    const spare = await sparePrepared('image-1');

    assert.equal(spares.claim(shapeOf('image-1')), spare.id);
    assert.deepEqual(driver.discarded, []);
  });

  it('is ended before the start of the agent that claimed it when the template was rebuilt meanwhile', async () => {
    buildTemplate('image-1');
    await sparePrepared('image-1');
    const id = spares.claim(shapeOf('image-1'))!;
    buildTemplate('image-1');

    await spares.releaseOutdated(id);
    assert.deepEqual(driver.discarded, [agentDir(id, dataDir)]);
    // The directory is the queued agent's.
    assert.equal(fs.existsSync(agentDir(id, dataDir)), true);
  });

  it('of an image no longer in use is ended at the next claim, not kept until the broker stops', async () => {
    buildTemplate('image-1');
    const old = await sparePrepared('image-1');
    // A new image: agents of the same profile now clone another template.
    inUse.delete('image-1');
    buildTemplate('image-2');

    assert.equal(spares.claim(shapeOf('image-2')), undefined);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(driver.discarded, [old.vmDir]);
    assert.equal(fs.existsSync(old.vmDir), false);
  });
});
