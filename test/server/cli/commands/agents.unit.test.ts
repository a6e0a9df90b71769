import assert from 'node:assert/strict';
import { agentEventSchema } from '../../../../protocol/api';
import {
  startBrokerWithBootSlotTaken,
  type BrokerWithBootSlotTaken,
} from '../../../helpers/imagelessBroker';
import { until } from '../../../helpers/until';
import { runCli, type CliOutput, type CliRun } from '../runCli';
import { startBrokerWithAgents, type BrokerWithAgents } from '../startBrokerWithAgents';

/**
 * `agentvm cancel` and `rm` in this process against a real broker whose VMs never boot. One agent
 * holds the single boot slot for good, so each agent a test makes stays `queued`: not ended.
 */
describe('agentvm cancel and rm (unit)', function () {
  this.timeout(30_000);
  let broker: BrokerWithBootSlotTaken;

  before(async () => {
    broker = await startBrokerWithBootSlotTaken();
  });

  after(async () => {
    await broker?.stop();
  });

  const newAgent = () => broker.newAgent();

  async function exists(id: string): Promise<boolean> {
    return (await broker.client.listAgents()).some((agent) => agent.id === id);
  }

  function run(args: string[]): Promise<CliRun> {
    return runCli(args, { AGENTVM_URL: broker.url, AGENTVM_TOKEN: broker.token });
  }

  it('cancels an agent that has not ended', async () => {
    const id = await newAgent();

    const run1 = await run(['cancel', id]);

    assert.equal(run1.exitCode, 0, run1.stderr);
    assert.equal(run1.stdout, `agent ${id} is cancelled\n`);
  });

  it('fails to cancel an agent that has already ended, naming its state (regression: exit 0)', async () => {
    const id = await newAgent();
    await broker.client.cancel(id);

    const again = await run(['cancel', id]);

    assert.equal(again.exitCode, 1, again.stderr);
    assert.equal(again.stdout, '');
    assert.match(
      again.stderr,
      new RegExp(
        `^error \\[INVALID_STATE\\]: cannot cancel agent ${id}: it has already ended \\(state cancelled\\)$`,
        'm',
      ),
    );
    assert.match(
      again.stderr,
      new RegExp(`^ {2}hint: .*agentvm logs ${id}.*agentvm rm ${id}`, 'm'),
    );
  });

  it('refuses to rm an agent that has not ended without --force (nothing removed), and removes it with --force', async () => {
    const id = await newAgent();

    const refused = await run(['rm', id]);

    assert.equal(refused.exitCode, 1, refused.stderr);
    assert.match(
      refused.stderr,
      new RegExp(`^error \\[INVALID_STATE\\]: agent ${id} is queued, not ended`, 'm'),
    );
    assert.match(refused.stderr, /^ {2}hint: .*agentvm cancel .*--force/m);
    assert.ok(await exists(id), 'the agent is still there');

    const forced = await run(['rm', '--force', id]);

    assert.equal(forced.exitCode, 0, forced.stderr);
    assert.equal(forced.stdout, `removed ${id}\n`);
    assert.ok(!(await exists(id)), 'the agent is gone');
  });

  it('removes none of several agents when one of them has not ended', async () => {
    const ended = await newAgent();
    await broker.client.cancel(ended);
    const live = await newAgent();

    const refused = await run(['rm', ended, live]);

    assert.equal(refused.exitCode, 1, refused.stderr);
    assert.match(refused.stderr, new RegExp(`agent ${live} is queued, not ended`));
    assert.ok(await exists(ended), 'the ended agent is still there');
    assert.ok(await exists(live), 'the live agent is still there');

    const removed = await run(['rm', ended]);

    assert.equal(removed.exitCode, 0, removed.stderr);
    assert.ok(!(await exists(ended)), 'the ended agent is gone');
  });
});

describe('agentvm logs -f, wait and delegate: where the timeline goes (unit)', function () {
  this.timeout(30_000);
  let broker: BrokerWithBootSlotTaken;
  let env: Record<string, string | undefined>;

  before(async () => {
    broker = await startBrokerWithBootSlotTaken();
    env = { AGENTVM_URL: broker.url, AGENTVM_TOKEN: broker.token, AGENTVM_PROFILE: undefined };
  });

  after(async () => {
    await broker?.stop();
  });

  const newAgent = () => broker.newAgent();

  /** Cancels agent `id` once `seen` is true of the command's output: an entry after the history. */
  function cancelWhen(id: string, seen: (output: CliOutput) => boolean) {
    return async (output: CliOutput) => {
      await until(() => seen(output), 'the command printed the history', 2_000);
      await broker.client.cancel(id);
    };
  }

  it('`logs -f` prints the whole timeline on stdout, entries that come while following too (regression: those went to stderr, so `logs -f ID | grep` missed them)', async () => {
    const id = await newAgent();

    const run = await runCli(
      ['logs', '-f', id],
      env,
      cancelWhen(id, (output) => /\] state {4}queued$/m.test(output.stdout)),
    );

    assert.equal(run.exitCode, 0, run.stderr);
    const rows = run.stdout.trimEnd().split('\n');
    assert.match(rows[0], /^\[\d\d:\d\d\.\d\] state {4}queued$/);
    assert.match(rows.at(-1)!, /^\[\d\d:\d\d\.\d\] state {4}cancelled\b/, run.stdout);
    assert.doesNotMatch(run.stderr, /\] state /, 'no timeline entry on stderr');
    assert.match(
      run.stderr,
      new RegExp(`agent ${id} is cancelled`),
      'the next step stays on stderr',
    );
  });

  it('`logs -f --json` prints one event a line, in the shape of `logs --json` (regression: --json was ignored)', async () => {
    const id = await newAgent();

    const run = await runCli(
      ['logs', '-f', '--json', id],
      env,
      cancelWhen(id, (output) => output.stdout.includes('"message":"queued"')),
    );

    assert.equal(run.exitCode, 0, run.stderr);
    assert.equal(run.stderr, '');
    const events = run.stdout
      .trimEnd()
      .split('\n')
      .map((line) => agentEventSchema.parse(JSON.parse(line)));
    assert.deepEqual(
      events,
      await broker.client.events(id),
      'the same events as `logs --json` lists',
    );
    assert.deepEqual(
      events
        .map((event) => `${event.kind} ${event.message}`)
        .filter((row) => row.startsWith('state')),
      ['state queued', 'state cancelled: cancelled by the user'],
    );
  });

  it('`wait` prints no timeline, and the final state alone on stdout', async () => {
    const id = await newAgent();

    const run = await runCli(
      ['wait', id],
      env,
      cancelWhen(id, () => true),
    );

    assert.equal(run.exitCode, 3, run.stderr);
    assert.equal(run.stdout, 'cancelled\n');
    assert.doesNotMatch(run.stderr, /\] state /);
  });

  it('`delegate` follows the agent on stderr and leaves stdout empty', async () => {
    let id = '';

    const run = await runCli(
      ['delegate', '--repo', broker.repo, '--profile', 'plain', 'do it'],
      env,
      async (output) => {
        await until(() => /\] state {4}queued$/m.test(output.stderr), 'delegate followed', 2_000);
        id = /^agent (\w+) queued/m.exec(output.stderr)![1];
        await broker.client.cancel(id);
      },
    );

    assert.equal(run.exitCode, 3, run.stderr);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /\] state {4}cancelled\b/m);
  });

  for (const command of ['logs -f', 'wait', 'delegate'] as const) {
    it(`\`${command}\` of an agent removed meanwhile ends with AGENT_NOT_FOUND "was removed", exit 5 (regression: it polled forever)`, async () => {
      const given = command === 'delegate' ? undefined : await newAgent();
      const args =
        command === 'delegate'
          ? ['delegate', '--repo', broker.repo, '--profile', 'plain', 'do it']
          : [...command.split(' '), given!];
      let id = given ?? '';

      const run = await runCli(
        args,
        env,
        async (output) => {
          // Following: delegate and logs -f have printed the first entry by then; wait prints
          // nothing, so it is given time to look the agent up and subscribe.
          if (command === 'wait') await new Promise((resolve) => setTimeout(resolve, 500));
          else
            await until(
              () => /\] state {4}queued$/m.test(output.stdout + output.stderr),
              'the command is following',
              2_000,
            );
          id ||= /^agent (\w+) queued/m.exec(output.stderr)![1];
          await broker.client.remove(id, { force: true });
        },
        { deadlineMs: 10_000 },
      );

      assert.equal(run.exitCode, 5, run.stderr);
      assert.match(
        run.stderr,
        new RegExp(
          `^error \\[AGENT_NOT_FOUND\\]: agent ${id} was removed while it was being followed`,
          'm',
        ),
      );
      assert.match(run.stderr, /^ {2}hint: .*agentvm ls/m);
      assert.equal(run.stderr.match(/^error /gm)?.length, 1, 'one error');
    });
  }
});

describe('agentvm rm of an agent awaiting review (unit)', function () {
  this.timeout(30_000);
  let broker: BrokerWithAgents;

  before(async () => {
    broker = await startBrokerWithAgents({ waiting1: 'awaiting_review' });
  });

  after(async () => {
    await broker?.stop();
  });

  it('says its paused VM is a snapshot on disk, not that removing it stops its VM (regression: "stops its VM")', async () => {
    const run = await runCli(['rm', 'waiting1'], {
      AGENTVM_URL: broker.url,
      AGENTVM_TOKEN: broker.token,
    });

    assert.equal(run.exitCode, 1, run.stderr);
    assert.match(
      run.stderr,
      /^error \[INVALID_STATE\]: agent waiting1 is awaiting_review, not ended: .*deletes that snapshot/m,
    );
    assert.doesNotMatch(run.stderr, /stops its VM/);
    assert.match(
      run.stderr,
      /^ {2}hint: .*agentvm resume waiting1 --message .*agentvm cancel waiting1.*--force/m,
    );
  });
});
