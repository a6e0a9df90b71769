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
      createdAt + 125_000,
    );

    assert.equal(lines.length, 2);
    assert.equal(lines[0].slice(titleColumn), 'Fix the flaky login test');
    assert.match(lines[0], /^k3x9q2w7ab\s+awaiting_review\s+claude\s+\S+\s+Fix the flaky/);
    assert.doesNotMatch(lines[0], /retry|asking/);
    assert.match(lines[1], /^\s+review: Should the retry stay at 3\?$/);
  });

  it('puts the latest progress of a running agent on its own line under the row', () => {
    const lines = formatAgentRow(
      agent({ lastProgress: 'running the test suite\nstep 2 of 3' }),
      createdAt + 5_000,
    );

    assert.equal(lines[0].slice(titleColumn), 'Fix the flaky login test');
    assert.equal(lines[1].trim(), 'progress: running the test suite step 2 of 3');
  });

  it('prints one line for an agent that has said nothing yet', () => {
    const lines = formatAgentRow(agent({ state: 'queued' }), createdAt);

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

  it('labels the time column ELAPSED and counts time paused for review in it (regression: RUN TIME, which it is not)', () => {
    const waiting = agent({
      state: 'awaiting_review',
      review: { requestId: 'r1', message: 'ok?', requestedAt: createdAt + 60_000 },
    });

    assert.equal(agentListHeader, 'ID          STATE            PROFILE     ELAPSED     TITLE');
    const elapsed = formatAgentRow(waiting, createdAt + 3_600_000)[0].slice(
      agentListHeader.indexOf('ELAPSED'),
      titleColumn,
    );
    assert.equal(elapsed.trim(), '60:00.0');
  });

  it('measures ELAPSED of an ended agent up to its end, not up to now', () => {
    const ended = agent({ state: 'done', endedAt: createdAt + 90_000 });

    const soon = formatAgentRow(ended, createdAt + 100_000)[0];
    const later = formatAgentRow(ended, createdAt + 9_000_000)[0];

    assert.equal(soon, later);
  });

  it('`ls --help` says what ELAPSED counts', async () => {
    const help = await runCli(['ls', '--help'], {});

    assert.equal(help.exitCode, 0, help.stderr);
    assert.match(help.stdout.replace(/\s+/g, ' '), /ELAPSED .*time paused for review count too/);
  });
});
