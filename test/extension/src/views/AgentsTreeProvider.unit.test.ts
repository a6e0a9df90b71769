import '../../support/vscodeStub';
import assert from 'node:assert/strict';
import type { Agent } from '../../../../protocol/api';
import type { AgentStore, BrokerStatus } from '../../../../extension/src/model/AgentStore';
import type { AgentGroupTreeItem } from '../../../../extension/src/views/AgentGroupTreeItem';
import type { AgentTreeItem } from '../../../../extension/src/views/AgentTreeItem';
import { AgentsTreeProvider } from '../../../../extension/src/views/AgentsTreeProvider';
import { anAgent } from '../../../helpers/anAgent';

/** The little of a store the tree reads, holding `agents` received `receivedAgoMs` ago. */
function storeOf(agents: Agent[], receivedAgoMs: number, status: BrokerStatus): AgentStore {
  const receivedAtMs = Date.now() - receivedAgoMs;
  return {
    all: agents,
    status,
    get: (id: string) => agents.find((agent) => agent.id === id),
    receivedAt: () => receivedAtMs,
    onDidChange: () => ({ dispose: () => undefined }),
  } as unknown as AgentStore;
}

/** The tooltip of the agent's item in the tree, as Markdown. */
function tooltipOf(store: AgentStore, agentId: string): string {
  const provider = new AgentsTreeProvider(store);
  try {
    const groups = provider.getChildren() as AgentGroupTreeItem[];
    const items = groups.flatMap((group) => provider.getChildren(group) as AgentTreeItem[]);
    const item = items.find((candidate) => candidate.agent.id === agentId);
    assert.ok(item, `the tree lists ${agentId}`);
    return (item.tooltip as { value: string }).value;
  } finally {
    provider.dispose();
  }
}

describe('AgentsTreeProvider (unit)', () => {
  it("shows a running agent's VM time in its tooltip, counted on from when it arrived", () => {
    const store = storeOf(
      [anAgent({ id: 'a1', state: 'running', vmSeconds: 90 })],
      30_000,
      'connected',
    );
    assert.match(tooltipOf(store, 'a1'), /^VM time: 2m0\ds so far {2}$/m);
  });

  it("shows a finished agent's VM time as it is", () => {
    const store = storeOf(
      [anAgent({ id: 'a1', state: 'done', vmSeconds: 90 })],
      30_000,
      'connected',
    );
    assert.match(tooltipOf(store, 'a1'), /^VM time: 1m30s {2}$/m);
  });

  it('says when a running VM time was true while the broker is unreachable', () => {
    const store = storeOf(
      [anAgent({ id: 'a1', state: 'running', vmSeconds: 90 })],
      30_000,
      'unreachable',
    );
    assert.match(tooltipOf(store, 'a1'), /^VM time: 1m30s at \d\d:\d\d {2}$/m);
  });

  it('has no VM time line for an agent from a broker that does not send it', () => {
    const store = storeOf([anAgent({ id: 'a1', state: 'running' })], 30_000, 'connected');
    const tooltip = tooltipOf(store, 'a1');
    assert.doesNotMatch(tooltip, /VM time/);
    assert.match(tooltip, /^State: running {2}$/m);
  });

  it('gives the item for reveal the same VM time', () => {
    const store = storeOf(
      [anAgent({ id: 'a1', state: 'reviewing', vmSeconds: 90 })],
      30_000,
      'connected',
    );
    const provider = new AgentsTreeProvider(store);
    try {
      const tooltip = provider.itemFor('a1')?.tooltip as { value: string } | undefined;
      assert.match(String(tooltip?.value), /^VM time: 2m0\ds so far {2}$/m);
    } finally {
      provider.dispose();
    }
  });
});
