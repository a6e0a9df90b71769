import assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { Agent } from '../../protocol/api';
import type { ExtensionApi } from '../../extension/src/extension';
import { AgentStore } from '../../extension/src/model/AgentStore';
import { AgentPanel } from '../../extension/src/webview/AgentPanel';
import { memoryLog, PrivateFakeBroker, until } from './support/privateFakeBroker';
import { repoDir } from './support/extensionHostEnv';

/**
 * The agent list and the agent panel when the event stream goes away: each test builds its own
 * store on a fake broker of this suite's own, which the test takes down and brings back.
 */
describe('Agents under event-stream loss (vscode)', () => {
  let api: ExtensionApi;
  let broker: PrivateFakeBroker;
  const logLines: string[] = [];
  const disposables: vscode.Disposable[] = [];

  const newStore = () => {
    const store = new AgentStore(broker.connection(), memoryLog(logLines));
    disposables.push(store);
    return store;
  };
  const delegate = async (text: string, state: Agent['state'] = 'awaiting_review') => {
    const agent = await broker.delegate(repoDir, text);
    for (let waitedMs = 0; (await broker.client.getAgent(agent.id)).state !== state;) {
      if ((waitedMs += 100) > 20_000) throw new Error(`agent ${agent.id} never got ${state}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return agent;
  };

  before(async () => {
    const extension = vscode.extensions.getExtension<ExtensionApi>('agentvm.agentvm');
    assert.ok(extension);
    api = await extension.activate();
    broker = await PrivateFakeBroker.start();
  });

  // A test that failed inside an outage leaves the broker down for a while.
  beforeEach(() => broker.waitUp());

  afterEach(function () {
    for (const disposable of disposables.splice(0)) disposable.dispose();
    if (this.currentTest?.state === 'failed') console.error(logLines.join('\n'));
    logLines.length = 0;
  });

  after(() => broker?.stop());

  it('subscribes before it lists, so a change made right after the list is read still arrives', async () => {
    const agent = await delegate('change between list and subscription');
    await broker.hook('after-list', { agent: agent.id, state: 'cancelled' });

    const store = newStore();
    store.start();
    await until('the store connected', () => store.status === 'connected');
    await until('the change arrived', () => store.get(agent.id)?.state === 'cancelled', 3_000);
  });

  it('replays no past timeline when it connects: a window with many old agents opens quietly', async () => {
    const agent = await delegate('an agent with a long timeline');
    await broker.hook('emit', { agent: agent.id, count: '500' });

    const store = newStore();
    let received = 0;
    disposables.push(store.onDidReceiveEvent(() => received++));
    store.start();
    await until('the store connected', () => store.status === 'connected');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(received, 0, 'no event of the past was sent to the window');
  });

  it('says since when its states are stale while the broker is down, and Refresh reconnects at once', async () => {
    await delegate('an agent to show while the broker is down');
    const store = newStore();
    store.start();
    await until('the store connected', () => store.status === 'connected');
    assert.equal(store.disconnectedAt, undefined);

    const outageMs = 9_000;
    const outageStarted = Date.now();
    await broker.hook('outage', { ms: String(outageMs) });
    await until('the store saw the outage', () => store.status === 'unreachable');
    assert.equal(typeof store.disconnectedAt, 'number', 'the store knows since when it is stale');
    assert.ok(store.all.length > 0, 'the last known agents stay listed');

    // By now the backoff waits 8 s or more between attempts; Refresh must not wait for it.
    await until('the broker is back', () => Date.now() - outageStarted > outageMs + 500, 15_000);
    await store.refresh();
    assert.equal(store.status, 'connected', 'Refresh reconnected the stream');
    assert.equal(store.disconnectedAt, undefined);
  });

  it("catches the agent's panel up on the events it missed while the stream was down", async () => {
    const agent = await delegate('a panel that misses events');
    const store = newStore();
    store.start();
    await until('the store connected', () => store.status === 'connected');
    const panel = AgentPanel.show(agent.id, {
      extensionUri: api.services.context.extensionUri,
      store,
      connection: broker.connection(),
      guest: api.services.guest,
      log: memoryLog(logLines),
    });
    disposables.push(panel);
    await until('the webview is ready', () => panel.isReady);

    // The fake agent finishes 300 ms after the resume: inside the outage.
    await broker.client.resume(agent.id, 'go on');
    await broker.hook('outage', { ms: '2000' });
    await until('the store saw the agent done', () => store.get(agent.id)?.state === 'done');
    const events = await broker.client.events(agent.id);
    const lastId = events[events.length - 1].id;
    await until('the panel caught up', () => panel.lastEventId === lastId, 10_000);
  });
});
