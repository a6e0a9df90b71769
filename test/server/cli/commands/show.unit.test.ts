import assert from 'node:assert/strict';
import { agentSchema } from '../../../../protocol/api';
import { runCli } from '../runCli';
import { startBrokerWithAgents, type BrokerWithAgents } from '../startBrokerWithAgents';

/**
 * `agentvm show` and the VM TIME of `agentvm ls`, against a real broker whose store holds an
 * agent that ended after its VM ran 187.25 s, an hour after it was delegated.
 */
describe('agentvm show and ls with the time an agent ran (unit)', function () {
  this.timeout(30_000);
  let broker: BrokerWithAgents;
  const delegatedAt = Date.UTC(2026, 0, 5, 9, 0, 0);

  before(async () => {
    broker = await startBrokerWithAgents(
      { ran1: 'done' },
      {
        ran1: {
          title: 'Fix the flaky login test',
          vmSeconds: 187.25,
          createdAt: delegatedAt,
          endedAt: delegatedAt + 3_600_000,
          result: {
            headCommit: 'b'.repeat(40),
            commits: [{ sha: 'b'.repeat(40), subject: 'Retry the login once' }],
            exitCode: 0,
          },
        },
      },
    );
  });

  after(async () => {
    await broker?.stop();
  });

  const run = (args: string[]) =>
    runCli(args, { AGENTVM_URL: broker.url, AGENTVM_TOKEN: broker.token });

  it('the API gives the VM-seconds charged to the agent (regression: the Agent had no VM time)', async () => {
    const listed = await run(['ls', '--json']);
    const shown = await run(['show', 'ran1', '--json']);

    assert.equal(listed.exitCode, 0, listed.stderr);
    const [inList] = agentSchema.array().parse(JSON.parse(listed.stdout));
    assert.equal(inList!.vmSeconds, 187.25);
    assert.equal(shown.exitCode, 0, shown.stderr);
    assert.equal(agentSchema.parse(JSON.parse(shown.stdout)).vmSeconds, 187.25);
  });

  it('`ls` shows the VM time, not the hour since delegation', async () => {
    const listed = await run(['ls']);

    assert.equal(listed.exitCode, 0, listed.stderr);
    assert.match(listed.stdout, /^ID +STATE +PROFILE +VM TIME +TITLE$/m);
    assert.match(listed.stdout, /^ran1 +done +\S+ +3m07s +Fix the flaky login test$/m);
  });

  it('`show` says how long the VM ran, when it was delegated and ended, and its result', async () => {
    const shown = await run(['show', 'ran1']);

    assert.equal(shown.exitCode, 0, shown.stderr);
    const lines = shown.stdout.split('\n');
    assert.equal(lines[0], 'agent ran1: Fix the flaky login test');
    assert.match(shown.stdout, /^ {2}state +done$/m);
    assert.match(shown.stdout, /^ {2}VM time +3m07s/m);
    assert.match(shown.stdout, /^ {2}delegated +2026-01-05 09:00:00 UTC \(/m);
    assert.match(shown.stdout, /^ {2}ended +2026-01-05 10:00:00 UTC \(1h00m after delegation\)$/m);
    assert.match(shown.stdout, /^ {2}result +1 commit\(s\), agent command exited with 0$/m);
    assert.match(shown.stdout, /^ {13}bbbbbbbbbbbb Retry the login once$/m);
  });

  it('`show` of an unknown id fails with AGENT_NOT_FOUND and a hint', async () => {
    const shown = await run(['show', 'nosuch']);

    assert.equal(shown.exitCode, 5, shown.stderr);
    assert.equal(shown.stdout, '');
    assert.match(shown.stderr, /^error \[AGENT_NOT_FOUND\]: no agent with id "nosuch"$/m);
    assert.match(shown.stderr, /^ {2}hint: .*agentvm ls/m);
  });
});
