import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { profileSchema } from '../../../protocol/api';
import type { GuestEvent } from '../../../protocol/control';
import type { AgentContext } from '../../../server/agents/AgentContext';
import { AgentJournal } from '../../../server/agents/AgentJournal';
import { AgentLocks } from '../../../server/agents/AgentLocks';
import { GuestMessageHandler } from '../../../server/agents/GuestMessageHandler';
import type { LiveVms } from '../../../server/agents/LiveVms';
import type { ReviewSnapshots } from '../../../server/agents/ReviewSnapshots';
import { storePath } from '../../../server/config/paths';
import { silentLogger } from '../../../server/log';
import { Store, type AgentRecord } from '../../../server/store/Store';

const VALUE = 'RTREALVALUE-s3cr3t-7d41c9';

function runningAgent(id: string): AgentRecord {
  const now = Date.now();
  return {
    id,
    title: id,
    text: id,
    profile: 'p',
    owner: 'alice',
    state: 'running',
    stateReason: null,
    createdAt: now,
    updatedAt: now,
    endedAt: null,
    repo: {
      baseCommit: '0'.repeat(40),
      branch: 'main',
      uncommitted: [],
      uncommittedIncluded: false,
    },
    review: null,
    lastProgress: null,
    lastOutput: [],
    result: null,
    bootPath: null,
    accel: null,
    profileSpec: profileSchema.parse({ name: 'p', command: 'true' }),
    vmPid: null,
    guestSeq: 0,
    snapshot: null,
    exitCode: null,
    issueRef: null,
    vmSeconds: 0,
  };
}

describe('GuestMessageHandler (unit)', () => {
  let dir: string;
  let store: Store;
  let journal: AgentJournal;
  let handler: GuestMessageHandler;
  let seq = 0;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-guest-messages-'));
    store = new Store(storePath(dir));
    store.insertAgent(runningAgent('a1'));
    journal = new AgentJournal(store, silentLogger, undefined, (id) =>
      id === 'a1' ? [VALUE] : [],
    );
    const context = {
      store,
      log: silentLogger,
      journal,
      locks: new AgentLocks(),
    } as unknown as AgentContext;
    const vms = { get: () => undefined } as unknown as LiveVms;
    handler = new GuestMessageHandler(context, vms, {} as ReviewSnapshots, () => ({
      bundle: '',
      patch: '',
    }));
    seq = 0;
  });

  afterEach(() => {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const send = (event: GuestEvent) => handler.handle('a1', { type: 'event', seq: ++seq, event });
  const stored = () => JSON.stringify([store.events('a1'), store.getAgent('a1')]);

  it('stores an output line that contains a secret value redacted, in the timeline and the record', () => {
    send({ kind: 'output', stream: 'stdout', text: `token is ${VALUE}\n` });

    assert.equal(store.events('a1').at(-1)?.message, 'token is [redacted]\n');
    assert.deepEqual(store.getAgent('a1')?.lastOutput, ['token is [redacted]']);
    assert.ok(!stored().includes(VALUE));
  });

  it('redacts progress and error messages, and leaves placeholders and other text alone', () => {
    send({
      kind: 'progress',
      message: `PROBE {"key":"${VALUE}","placeholder":"agentvm-secret-K-ab12"}`,
    });
    send({ kind: 'error', message: `failed with Bearer ${VALUE}` });

    const messages = store.events('a1').map((event) => event.message);
    assert.ok(
      messages.includes('PROBE {"key":"[redacted]","placeholder":"agentvm-secret-K-ab12"}'),
    );
    assert.ok(messages.includes('failed with Bearer [redacted]'));
    assert.ok(!stored().includes(VALUE));
  });

  it('redacts a state reason built from guest text, such as console lines of a failed VM', () => {
    journal.fail('a1', `VM died; console: export K=${VALUE}`);

    assert.equal(store.getAgent('a1')?.stateReason, 'VM died; console: export K=[redacted]');
    assert.ok(!stored().includes(VALUE));
  });
});
