import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { profileSchema } from '../../../protocol/api';
import type { AgentContext } from '../../../server/agents/AgentContext';
import { AgentJournal } from '../../../server/agents/AgentJournal';
import { AgentLocks } from '../../../server/agents/AgentLocks';
import type { LiveVms } from '../../../server/agents/LiveVms';
import { TimeLimits } from '../../../server/agents/TimeLimits';
import { storePath } from '../../../server/config/paths';
import { silentLogger } from '../../../server/log';
import { Store } from '../../../server/store/Store';
import { anAgentRecord } from '../../helpers/anAgentRecord';

describe('TimeLimits (unit)', () => {
  let dir: string;
  let store: Store;
  let limits: TimeLimits;
  let stopped: string[];

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-time-limits-'));
    store = new Store(storePath(dir));
    const profileSpec = profileSchema.parse({
      name: 'p',
      command: 'true',
      timeLimitMs: 1000,
      onLimit: 'stop',
    });
    store.insertAgent(anAgentRecord({ id: 't1', profile: 'p', profileSpec, state: 'running' }));
    const journal = new AgentJournal(store, silentLogger);
    const context = {
      store,
      log: silentLogger,
      journal,
      locks: new AgentLocks(),
      options: {},
    } as unknown as AgentContext;
    stopped = [];
    const vms = {
      liveMs: () => 0,
      stop: async (id: string) => void stopped.push(id),
    } as unknown as LiveVms;
    limits = new TimeLimits(context, vms, async () => undefined);
  });

  afterEach(() => {
    limits.clearAll();
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('counts the wall-clock limit from when the run began, so a broker restart does not grant a new period (regression: a 1 min limit stopped an agent after 1 min 42 s)', async () => {
    // As recovery arms a reattached agent that started running 900 ms ago.
    limits.arm('t1', Date.now() - 900);
    await new Promise((resolve) => setTimeout(resolve, 400));

    const record = store.getAgent('t1');
    assert.equal(record?.state, 'failed');
    assert.equal(record?.stateReason, 'time limit of 1 s reached');
    assert.deepEqual(stopped, ['t1']);
  });

  it('gives a fresh start or resume the whole period', async () => {
    limits.arm('t1');
    await new Promise((resolve) => setTimeout(resolve, 400));

    assert.equal(store.getAgent('t1')?.state, 'running');
    assert.deepEqual(stopped, []);
  });
});
