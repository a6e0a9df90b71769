import assert from 'node:assert/strict';
import fs from 'node:fs';
import { BrokerClient, type EventStream } from '../../../client/BrokerClient';
import { bundleRepository } from '../../../client/repoBundle';
import type { ServerStreamMessage } from '../../../protocol/api';
import {
  hangingDriver,
  startImagelessBroker,
  type ImagelessBroker,
} from '../../helpers/imagelessBroker';
import { makeTempRepo } from '../../helpers/repos';
import { until } from '../../helpers/until';

describe('the event stream (unit)', function () {
  this.timeout(20_000);
  let imageless: ImagelessBroker;
  let repo: string;
  const streams: EventStream[] = [];

  beforeEach(async () => {
    imageless = await startImagelessBroker({ driver: hangingDriver });
    repo = makeTempRepo();
  });

  afterEach(async () => {
    for (const stream of streams.splice(0)) stream.close();
    await imageless.stop();
    fs.rmSync(repo, { recursive: true, force: true });
  });

  /** Every message `client` receives on a stream of all its agents, replayed from the start. */
  function watchAll(client: BrokerClient): ServerStreamMessage[] {
    const received: ServerStreamMessage[] = [];
    streams.push(
      client.stream({ afterEventId: 0 }, { onMessage: (message) => received.push(message) }),
    );
    return received;
  }

  it("tells a user who follows all their agents that one was removed (regression: only admins and that agent's own subscribers heard it)", async () => {
    const { url } = imageless;
    const alice = new BrokerClient({ url, token: imageless.broker.store.createToken('alice') });
    const admin = new BrokerClient({ url, token: imageless.token });
    const agent = await alice.createAgent({
      text: 'a task',
      profile: 'plain',
      repo: await bundleRepository(repo),
    });
    const heardByAlice = watchAll(alice);
    const heardByAdmin = watchAll(admin);
    // The replay of the agent's timeline shows each subscription is in place.
    for (const heard of [heardByAlice, heardByAdmin])
      await until(() => heard.some((message) => message.type === 'event'), 'the replay arrived');

    await alice.remove(agent.id, { force: true });

    const removal = { type: 'removed', agentId: agent.id };
    await until(
      () => heardByAdmin.some((message) => message.type === 'removed'),
      'the admin heard the removal',
    );
    await until(
      () => heardByAlice.some((message) => message.type === 'removed'),
      'alice heard the removal of her agent',
    );
    assert.deepEqual(
      heardByAlice.filter((message) => message.type === 'removed'),
      [removal],
    );
  });

  it("does not tell another user that someone else's agent was removed", async () => {
    const { url } = imageless;
    const alice = new BrokerClient({ url, token: imageless.broker.store.createToken('alice') });
    const bob = new BrokerClient({ url, token: imageless.broker.store.createToken('bob') });
    const mine = await bob.createAgent({
      text: "bob's",
      profile: 'plain',
      repo: await bundleRepository(repo),
    });
    const agent = await alice.createAgent({
      text: 'a task',
      profile: 'plain',
      repo: await bundleRepository(repo),
    });
    const heardByBob = watchAll(bob);
    await until(() => heardByBob.some((message) => message.type === 'event'), 'the replay arrived');

    await alice.remove(agent.id, { force: true });
    await bob.remove(mine.id, { force: true });
    await until(
      () => heardByBob.some((message) => message.type === 'removed'),
      'bob heard the removal of his agent',
    );
    assert.deepEqual(
      heardByBob.filter((message) => message.type === 'removed'),
      [{ type: 'removed', agentId: mine.id }],
    );
  });
});
