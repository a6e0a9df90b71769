import assert from 'node:assert/strict';
import fs from 'node:fs';
import WebSocket from 'ws';
import { bundleRepository } from '../../client/repoBundle';
import type { Agent, ServerStreamMessage } from '../../protocol/api';
import type { ChildBroker } from '../helpers/childBroker';
import { makeTempRepo } from '../helpers/repos';
import { removeVmChildBroker, startVmChildBroker } from '../helpers/vmChildBroker';
import { faultProfilesDir, sleep } from './faultAgents';

const AGENTS = Number(process.env.AGENTVM_LOAD_AGENTS ?? 20);
const DEADLINE_MS = 25 * 60_000;

/**
 * Issue 6, item 6: twenty delegations at once against `agentvm serve`. Every agent must end done
 * (or stopped by a limit), each agent's event stream must carry only that agent, and the API must
 * keep answering; the test reports its latency.
 */
describe(`load: ${AGENTS} delegations at once (vm)`, function () {
  this.timeout(DEADLINE_MS + 10 * 60_000);
  let broker: ChildBroker;
  let repoDir = '';
  const streams = new Map<string, { socket: WebSocket; messages: ServerStreamMessage[] }>();

  before(async function () {
    this.timeout(40 * 60_000);
    broker = await startVmChildBroker(faultProfilesDir);
    repoDir = makeTempRepo({ 'README.md': '# load\n' });
  });

  after(async () => {
    for (const { socket } of streams.values()) socket.terminate();
    await removeVmChildBroker(broker);
    if (repoDir) fs.rmSync(repoDir, { recursive: true, force: true });
  });

  it('finishes every agent, keeps streams apart and the API responsive', async () => {
    const repo = await bundleRepository(repoDir);
    const created = await Promise.all(
      Array.from({ length: AGENTS }, (_, index) =>
        broker.client.createAgent({ text: `quick: load agent ${index}`, profile: 'faults', repo }),
      ),
    );
    const ids = created.map((agent) => agent.id);
    assert.equal(new Set(ids).size, AGENTS);
    for (const id of ids) streams.set(id, await subscribe(id));

    // Measure the API while the agents run: list, and one agent's detail, ten times a second.
    const latenciesMs: number[] = [];
    let states = new Map<string, Agent>();
    const deadline = Date.now() + DEADLINE_MS;
    for (let round = 0; Date.now() < deadline && round < 100_000; round++) {
      const startedAt = performance.now();
      const agents = await broker.client.listAgents();
      latenciesMs.push(performance.now() - startedAt);
      const detailAt = performance.now();
      await broker.client.getAgent(ids[round % AGENTS]);
      latenciesMs.push(performance.now() - detailAt);

      states = new Map(agents.map((agent) => [agent.id, agent]));
      if (ids.every((id) => ['done', 'failed', 'cancelled'].includes(states.get(id)?.state ?? '')))
        break;

      await sleep(100);
    }

    latenciesMs.sort((a, b) => a - b);
    const percentile = (p: number) =>
      latenciesMs[Math.min(latenciesMs.length - 1, Math.floor((p / 100) * latenciesMs.length))];
    console.log(
      `      ${latenciesMs.length} API calls during the run: p50 ${percentile(50).toFixed(1)} ms, p99 ${percentile(99).toFixed(1)} ms, max ${latenciesMs[latenciesMs.length - 1].toFixed(1)} ms`,
    );

    const ended = [...states.values()].filter((agent) => ids.includes(agent.id));
    const counts = new Map<string, number>();
    for (const agent of ended) counts.set(agent.state, (counts.get(agent.state) ?? 0) + 1);
    console.log(
      `      end states: ${[...counts].map(([state, count]) => `${count} ${state}`).join(', ')}`,
    );
    const summary = ended
      .map((agent) => `${agent.id} ${agent.state} ${agent.stateReason ?? ''}`)
      .join('\n');
    for (const id of ids) {
      const agent = states.get(id);
      if (agent?.state === 'done') continue;

      const limited = (await broker.client.events(id)).some((event) => event.kind === 'limit');
      assert.ok(limited, `agent ${id} ended ${agent?.state} without reaching a limit:\n${summary}`);
    }

    // Every stream carried its own agent only, and saw it end.
    await sleep(500);
    for (const [id, { messages }] of streams) {
      const foreign = messages.filter((message) => streamAgentId(message) !== id);
      assert.deepEqual(foreign, [], `stream of ${id} carried other agents' messages`);
      assert.ok(
        messages.some(
          (message) =>
            message.type === 'event' &&
            message.event.kind === 'state' &&
            /^(done|failed)/.test(message.event.message),
        ),
        `stream of ${id} saw the agent end`,
      );
    }
  });

  async function subscribe(
    agentId: string,
  ): Promise<{ socket: WebSocket; messages: ServerStreamMessage[] }> {
    const socket = new WebSocket(`${broker.url.replace('http', 'ws')}/v1/events`, {
      headers: { authorization: `Bearer ${broker.token}` },
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    const messages: ServerStreamMessage[] = [];
    socket.on('message', (data) =>
      messages.push(JSON.parse(data.toString()) as ServerStreamMessage),
    );
    socket.send(JSON.stringify({ type: 'subscribe', agentId, afterEventId: 0 }));
    return { socket, messages };
  }
});

function streamAgentId(message: ServerStreamMessage): string {
  if (message.type === 'event') return message.event.agentId;
  if (message.type === 'agent') return message.agent.id;
  if (message.type === 'removed') return message.agentId;
  if (message.type === 'subscribed') return message.agentId ?? 'all agents';
  return `error: ${message.message}`;
}
