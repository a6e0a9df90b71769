import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AgentState } from '../../../../protocol/api';
import { storePath } from '../../../../server/config/paths';
import { Store } from '../../../../server/store/Store';
import { pruneImages } from '../../../../server/vmm/image/pruneImages';
import { anAgentRecord } from '../../../helpers/anAgentRecord';
import { writeOverlay, writeTemplate } from './imageDependents';

const key = (letter: string) => letter.repeat(64);

describe('pruneImages (unit)', () => {
  let root: string;

  /** An image directory holding a 1 MiB root filesystem. */
  const image = (letter: string) => {
    const dir = path.join(root, 'images', key(letter));
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'rootfs.ext4'), Buffer.alloc(1024 * 1024, 1));
    return path.join(dir, 'rootfs.ext4');
  };

  const overlay = writeOverlay;
  const template = (name: string, imageLetter: string, backing: string) =>
    writeTemplate(root, name, key(imageLetter), backing);

  const agent = (
    store: Store,
    id: string,
    state: AgentState,
    backing: string,
    format: 'raw' | 'qcow2',
  ) => {
    store.insertAgent(anAgentRecord({ id, title: id, text: id, profile: 'p', owner: 'o', state }));
    overlay(path.join(root, 'agents', id, 'overlay.qcow2'), backing, format);
  };

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-prune-'));
    image('a'); // the current image
    const running = image('b');
    const endedOnly = image('c');
    const unused = image('d');
    const viaTemplate = image('e');
    template('t-unused', 'd', unused);
    const liveTemplate = template('t-live', 'e', viaTemplate);

    const store = new Store(storePath(root));
    try {
      agent(store, 'runner', 'running', running, 'raw');
      agent(store, 'finished', 'done', endedOnly, 'raw');
      agent(store, 'clone', 'awaiting_review', liveTemplate, 'qcow2');
    } finally {
      store.close();
    }
  });

  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  const present = () =>
    fs
      .readdirSync(path.join(root, 'images'))
      .filter((name) => name.length === 64)
      .sort();

  it("keeps the current image and those unfinished agents' disks chain to, directly or through a template", async () => {
    const outcome = await pruneImages(root, key('a'));

    assert.deepEqual(present(), [key('a'), key('b'), key('e')]);
    const kept = Object.fromEntries(
      outcome.images.map((verdict) => [verdict.key[0], verdict.keptBecause]),
    );
    assert.deepEqual(kept, {
      a: 'the current image',
      b: 'used by agent runner',
      c: undefined,
      d: undefined,
      e: 'used by agent clone',
    });
    assert.ok(outcome.images.every((verdict) => verdict.bytes >= 1024 * 1024));
  });

  it('finds the users of an image when the data directory is named through a symlink', async () => {
    const link = `${root}-link`;
    fs.symlinkSync(root, link);
    try {
      await pruneImages(link, key('a'));
    } finally {
      fs.rmSync(link);
    }

    assert.deepEqual(present(), [key('a'), key('b'), key('e')]);
  });

  it('removes the templates built on a removed image, and no other', async () => {
    const outcome = await pruneImages(root, key('a'));

    assert.deepEqual(outcome.templates, [path.join(root, 'templates', 't-unused')]);
    assert.deepEqual(fs.readdirSync(path.join(root, 'templates')), ['t-live']);
  });

  it('changes nothing on a dry run, and says the same', async () => {
    const dry = await pruneImages(root, key('a'), { dryRun: true });

    assert.deepEqual(present(), ['a', 'b', 'c', 'd', 'e'].map(key));
    assert.deepEqual(fs.readdirSync(path.join(root, 'templates')).sort(), ['t-live', 't-unused']);
    assert.deepEqual(
      dry.images.filter((verdict) => !verdict.keptBecause).map((verdict) => verdict.key[0]),
      ['c', 'd'],
    );
  });
});
