import assert from 'node:assert/strict';
import { profileSchema } from '../../../../protocol/api';
import {
  agentActions,
  agentContextValue,
  agentDescription,
  formatElapsed,
  profileDetail,
  stateIcons,
} from '../../../../extension/src/model/agentPresentation';
import { anAgent } from '../../../helpers/anAgent';

describe('agentPresentation (unit)', () => {
  it('offers review and resume only while the agent waits for review', () => {
    assert.equal(
      agentContextValue(anAgent({ state: 'awaiting_review' })),
      'agent:open:review:resume:cancel:remove',
    );
    assert.equal(agentContextValue(anAgent({ state: 'running' })), 'agent:open:cancel:remove');
    assert.equal(agentContextValue(anAgent({ state: 'failed' })), 'agent:open:remove');
  });

  it('offers the result of a done agent only once it has one', () => {
    const result = { headCommit: 'b'.repeat(40), commits: [], exitCode: 0 };
    assert.equal(agentActions(anAgent({ state: 'done', result: null })).result, false);
    assert.equal(agentActions(anAgent({ state: 'done', result })).result, true);
    assert.match(agentContextValue(anAgent({ state: 'done', result })), /:result\b/);
  });

  it('has an icon for every state, spinning while the agent works', () => {
    assert.equal(stateIcons.running.icon, 'sync~spin');
    assert.equal(stateIcons.awaiting_review.icon, 'comment-discussion');
    assert.equal(stateIcons.failed.color, 'testing.iconFailed');
  });

  it('formats elapsed time compactly', () => {
    assert.equal(formatElapsed(45_000), '45s');
    assert.equal(formatElapsed(192_000), '3m12s');
    assert.equal(formatElapsed(3_840_000), '1h04m');
    assert.equal(formatElapsed(-5), '0s');
  });

  it('describes an agent by profile, elapsed time and its latest word', () => {
    const running = anAgent({ profile: 'demo', createdAt: 0, lastProgress: 'running tests' });
    assert.equal(agentDescription(running, 65_000), 'demo · 1m05s · running tests');

    const paused = anAgent({
      state: 'awaiting_review',
      createdAt: 0,
      lastProgress: 'old',
      review: { requestId: 'r', message: 'please look', requestedAt: 1 },
    });
    assert.equal(agentDescription(paused, 1000), 'demo · 1s · please look');

    const ended = anAgent({ state: 'done', createdAt: 0, endedAt: 10_000, lastProgress: null });
    assert.equal(agentDescription(ended, 999_999), 'demo · 10s');
  });

  it("summarises a profile's shape, limit and hosts", () => {
    const profile = profileSchema.parse({
      name: 'p',
      command: 'x',
      allowedHosts: ['api.example.com'],
    });
    assert.equal(
      profileDetail(profile),
      '512 MiB · 1 vCPU · limit 30m00s · hosts: api.example.com',
    );
    const open = profileSchema.parse({ name: 'q', command: 'x', vcpus: 2, timeLimitMs: 0 });
    assert.equal(profileDetail(open), '512 MiB · 2 vCPUs · no time limit · no network');
  });
});
