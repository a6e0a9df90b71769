import assert from 'node:assert/strict';
import fs from 'node:fs';
import { BrokerClient, type StreamHandlers } from '../../../client/BrokerClient';
import { bundleRepository } from '../../../client/repoBundle';
import type { Agent } from '../../../protocol/api';
import { AgentvmError } from '../../../protocol/errors';
import { followAgent, formatElapsed, interruptNotice } from '../../../server/cli/follow';
import { anAgent } from '../../helpers/anAgent';
import {
  hangingDriver,
  startImagelessBroker,
  type ImagelessBroker,
} from '../../helpers/imagelessBroker';
import { makeTempRepo } from '../../helpers/repos';
import { holdSubscriptions } from '../../helpers/streamServerHooks';
import { until } from '../../helpers/until';

describe('CLI timeline stamps (unit)', () => {
  it('writes minutes and seconds to the tenth', () => {
    assert.equal(formatElapsed(0), '[00:00.0]');
    assert.equal(formatElapsed(4_234), '[00:04.2]');
    assert.equal(formatElapsed(63_600), '[01:03.6]');
    assert.equal(formatElapsed(-5), '[00:00.0]');
  });

  it('carries a second that rounds up to 60 into the minutes', () => {
    assert.equal(formatElapsed(59_960), '[01:00.0]');
    assert.equal(formatElapsed(119_999), '[02:00.0]');
  });
});

describe('CLI follow interrupted (unit)', () => {
  it('says the agent keeps running and how to follow it again or stop it', () => {
    assert.equal(
      interruptNotice('7pfkdurd8e'),
      'stopped following; agent 7pfkdurd8e keeps running: follow it again with `agentvm logs -f 7pfkdurd8e`, or stop it with `agentvm cancel 7pfkdurd8e`',
    );
  });
});

describe('CLI follow of an agent that is removed (unit)', function () {
  // The old follower polled forever: a bounded test fails on it instead of hanging.
  this.timeout(5_000);

  const agent: Agent = anAgent({ id: 'gone1', profile: 'plain', owner: 'dev' });
  const notFound = () => new AgentvmError('AGENT_NOT_FOUND', 'no agent with id "gone1"');

  /**
   * A client whose agent is there for the follower's first look and gone after it. Its event
   * stream opens and subscribes, or drops, at once, as `stream` says.
   */
  function clientOfRemovedAgent(stream: 'opens' | 'drops'): BrokerClient {
    let looks = 0;
    return {
      getAgent: async () => {
        if (looks++ === 0) return agent;

        throw notFound();
      },
      events: async () => {
        throw notFound();
      },
      stream: (_options: unknown, handlers: StreamHandlers) => {
        setImmediate(() => {
          if (stream === 'drops') return handlers.onClose?.();

          handlers.onOpen?.();
          handlers.onSubscribed?.('acknowledgement');
        });
        return { close: () => undefined };
      },
    } as unknown as BrokerClient;
  }

  for (const stream of ['drops', 'opens'] as const) {
    const when =
      stream === 'drops'
        ? 'while the event stream is down (polling)'
        : 'before the event stream subscribed';
    it(`ends with AGENT_NOT_FOUND "was removed" when it is removed ${when} (regression: it never ended)`, async () => {
      await assert.rejects(
        followAgent(clientOfRemovedAgent(stream), 'gone1', { until: ['done'], timeline: 'none' }),
        (error: unknown) => {
          assert.ok(error instanceof AgentvmError);
          assert.equal(error.code, 'AGENT_NOT_FOUND');
          assert.match(error.message, /^agent gone1 was removed while it was being followed/);
          return true;
        },
      );
    });
  }
});

describe('CLI follow of an agent that ends before its subscription takes effect (unit)', function () {
  this.timeout(15_000);
  let harness: ImagelessBroker;
  let repo: string;

  beforeEach(async () => {
    harness = await startImagelessBroker({ driver: hangingDriver });
    repo = makeTempRepo();
  });

  afterEach(async () => {
    await harness.stop();
    fs.rmSync(repo, { recursive: true, force: true });
  });

  it('ends when the agent is cancelled after its first look but before the broker took up the subscription (regression: it looked as the socket opened, and waited for good)', async () => {
    const api = new BrokerClient({ url: harness.url, token: harness.token });
    const upload = await bundleRepository(repo);
    const { id } = await api.createAgent({ text: 'a task', profile: 'plain', repo: upload });
    const gate = holdSubscriptions(harness);
    const follower = new BrokerClient({ url: harness.url, token: harness.token });
    const seen: string[] = [];
    const getAgent = follower.getAgent.bind(follower);
    follower.getAgent = async (agentId) => {
      const agent = await getAgent(agentId);
      seen.push(agent.state);
      return agent;
    };

    const following = followAgent(follower, id, { until: ['cancelled'], timeline: 'none' });
    let ended: Agent | undefined;
    void following.then((agent) => (ended = agent));
    // A follower that looks as soon as the socket opens has looked by now (its second look).
    await until(() => seen.length >= 2, 'the follower looked', 300).catch(() => undefined);
    assert.equal((await api.cancel(id)).state, 'cancelled');
    gate.release();

    await until(() => ended !== undefined, 'the following ended', 5_000);
    assert.equal(ended?.state, 'cancelled');
  });
});
