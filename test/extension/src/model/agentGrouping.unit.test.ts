import assert from 'node:assert/strict';
import { agentStates, type Agent } from '../../../../protocol/api';
import { groupAgents, groupOf, needsReview } from '../../../../extension/src/model/agentGrouping';
import { anAgent } from '../../../helpers/anAgent';

describe('agentGrouping (unit)', () => {
  it('puts every state in exactly one group', () => {
    const groups = Object.fromEntries(agentStates.map((state) => [state, groupOf(state)]));
    assert.deepEqual(groups, {
      queued: 'active',
      starting: 'active',
      running: 'active',
      pausing: 'needsReview',
      awaiting_review: 'needsReview',
      restoring: 'needsReview',
      reviewing: 'needsReview',
      done: 'done',
      failed: 'failed',
      cancelled: 'failed',
    });
  });

  it('lists "Needs review" first, then running, done and failed, leaving empty groups out', () => {
    const agents: Agent[] = [
      anAgent({ id: 'd', state: 'done' }),
      anAgent({ id: 'r', state: 'running' }),
      anAgent({ id: 'w', state: 'awaiting_review' }),
    ];
    assert.deepEqual(
      groupAgents(agents).map(({ group, agents: members }) => [group, members.map((a) => a.id)]),
      [
        ['needsReview', ['w']],
        ['active', ['r']],
        ['done', ['d']],
      ],
    );
  });

  it('orders review requests oldest first and other groups newest first', () => {
    const agents = [
      anAgent({
        id: 'late',
        state: 'awaiting_review',
        review: { requestId: '1', message: 'm', requestedAt: 300 },
      }),
      anAgent({
        id: 'early',
        state: 'reviewing',
        review: { requestId: '2', message: 'm', requestedAt: 100 },
      }),
      anAgent({ id: 'old', state: 'running', createdAt: 1 }),
      anAgent({ id: 'new', state: 'running', createdAt: 2 }),
    ];
    const [review, active] = groupAgents(agents);
    assert.deepEqual(
      review.agents.map((a) => a.id),
      ['early', 'late'],
    );
    assert.deepEqual(
      active.agents.map((a) => a.id),
      ['new', 'old'],
    );
  });

  it('says an agent needs review exactly when the tree shows it under "Needs review" (regression: pausing and restoring agents were listed there but not counted)', () => {
    const agents = agentStates.map((state) => anAgent({ id: state, state }));
    const listed = groupAgents(agents).find(({ group }) => group === 'needsReview')?.agents ?? [];
    assert.deepEqual(
      agents.filter(needsReview).map((agent) => agent.id),
      ['pausing', 'awaiting_review', 'restoring', 'reviewing'],
    );
    assert.deepEqual(
      listed.map((agent) => agent.id).sort(),
      agents
        .filter(needsReview)
        .map((agent) => agent.id)
        .sort(),
    );
  });
});
