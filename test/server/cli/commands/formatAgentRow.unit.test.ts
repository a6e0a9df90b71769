import assert from 'node:assert/strict';
import { agentSchema, type Agent } from '../../../../protocol/api';
import { agentListHeader, formatAgentRow } from '../../../../server/cli/commands/formatAgentRow';
import { runCli } from '../runCli';

const createdAt = Date.UTC(2026, 0, 5, 9, 0, 0);

/** An agent as the API returns it, parsed by its schema so the fixture cannot drift from it. */
function agent(overrides: Partial<Agent>): Agent {
  return agentSchema.parse({
    id: 'k3x9q2w7ab',
    title: 'Fix the flaky login test',
    text: 'Fix the flaky login test\n\nIt fails one run in ten.',
    profile: 'claude',
    owner: 'dev',
    state: 'running',
    stateReason: null,
    createdAt,
    updatedAt: createdAt,
    endedAt: null,
    repo: { baseCommit: 'a'.repeat(40), branch: 'main', remoteUrl: null, name: 'app' },
    review: null,
    lastProgress: null,
    lastOutput: [],
    result: null,
    bootPath: 'template',
    accel: 'tcg',
    ...overrides,
  });
}

/** Where the TITLE column starts in a row, read from the header. */
const titleColumn = agentListHeader.indexOf('TITLE');

describe('formatAgentRow (unit)', () => {
  it('shows the task title, not the review question, for an agent awaiting review', () => {
    const lines = formatAgentRow(
      agent({
        state: 'awaiting_review',
        lastProgress: 'committed the fix; asking for review',
        review: {
          requestId: 'r1',
          message: 'Should the retry stay at 3?',
          requestedAt: createdAt + 60_000,
        },
      }),
    );

    assert.equal(lines.length, 2);
    assert.equal(lines[0].slice(titleColumn), 'Fix the flaky login test');
    assert.match(lines[0], /^k3x9q2w7ab\s+awaiting_review\s+claude\s+\S+\s+Fix the flaky/);
    assert.doesNotMatch(lines[0], /retry|asking/);
    assert.match(lines[1], /^\s+review: Should the retry stay at 3\?$/);
  });

  it('puts the latest progress of a running agent on its own line under the row', () => {
    const lines = formatAgentRow(agent({ lastProgress: 'running the test suite\nstep 2 of 3' }));

    assert.equal(lines[0].slice(titleColumn), 'Fix the flaky login test');
    assert.equal(lines[1].trim(), 'progress: running the test suite step 2 of 3');
  });

  it('prints one line for an agent that has said nothing yet', () => {
    const lines = formatAgentRow(agent({ state: 'queued' }));

    assert.equal(lines.length, 1);
    assert.equal(lines[0].slice(titleColumn), 'Fix the flaky login test');
  });

  it('says how an ended agent ended instead of its last progress', () => {
    const failed = agent({
      state: 'failed',
      stateReason: 'its VM ended\nunexpectedly',
      lastProgress: 'running the test suite',
      endedAt: createdAt + 10_000,
    });
    const cancelled = agent({ state: 'cancelled', stateReason: 'cancelled by the user' });
    const done = agent({
      state: 'done',
      lastProgress: 'running the test suite',
      endedAt: createdAt + 10_000,
      result: {
        headCommit: 'b'.repeat(40),
        commits: [{ sha: 'b'.repeat(40), subject: 'Fix it' }],
        exitCode: 0,
      },
    });

    assert.equal(formatAgentRow(failed)[1].trim(), 'failed: its VM ended unexpectedly');
    assert.equal(formatAgentRow(cancelled)[1].trim(), 'cancelled: cancelled by the user');
    assert.equal(formatAgentRow(done)[1].trim(), 'done: 1 commit(s)');
    const dump = agent({ state: 'failed', stateReason: `VM died; console:\n${'x'.repeat(2000)}` });
    assert.ok(formatAgentRow(dump)[1].trim().length <= 'failed: '.length + 200);
  });

  it('shows how long the VM ran in VM TIME, not the time since delegation (regression: ELAPSED, an hour for an agent whose VM ran 40 s)', () => {
    const waiting = agent({
      state: 'awaiting_review',
      review: { requestId: 'r1', message: 'ok?', requestedAt: createdAt + 60_000 },
      updatedAt: createdAt + 3_600_000,
      vmSeconds: 40.7,
    });

    assert.equal(agentListHeader, 'ID          STATE            PROFILE     VM TIME  TITLE');
    const vmTime = formatAgentRow(waiting)[0].slice(
      agentListHeader.indexOf('VM TIME'),
      titleColumn,
    );
    assert.equal(vmTime.trim(), '40s');
  });

  it('writes VM TIME in seconds, minutes, hours or days as it grows, and - when the broker does not say', () => {
    const column = (vmSeconds?: number) =>
      formatAgentRow(agent({ vmSeconds }))[0]
        .slice(agentListHeader.indexOf('VM TIME'), titleColumn)
        .trim();

    assert.deepEqual([0, 59.9, 60, 187, 3599, 3600, 7500, 86_399, 273_600].map(column), [
      '0s',
      '59s',
      '1m00s',
      '3m07s',
      '59m59s',
      '1h00m',
      '2h05m',
      '23h59m',
      '3d04h',
    ]);
    assert.equal(column(undefined), '-');
  });

  it('`ls --help` says what VM TIME counts', async () => {
    const help = await runCli(['ls', '--help'], {});

    assert.equal(help.exitCode, 0, help.stderr);
    const text = help.stdout.replace(/\s+/g, ' ');
    assert.match(text, /VM TIME how long its VM has run .* cost budget is counted in/);
    assert.match(text, /saved while awaiting review does not count/);
  });
});
