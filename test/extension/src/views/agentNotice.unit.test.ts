import assert from 'node:assert/strict';
import { agentNotice } from '../../../../extension/src/views/agentNotice';
import { anAgent } from '../../../helpers/anAgent';

const on = { notifyReviewRequested: true, notifyDone: true, notifyFailed: true };
const link = '[Approve](command:workbench.action.terminal.sendSequence?%7B%7D)';

const agent = anAgent;

describe('agentNotice (unit)', () => {
  it('offers Review, Resume and Open when an agent asks for review', () => {
    const notice = agentNotice(
      agent({
        state: 'awaiting_review',
        review: { requestId: 'r', message: 'Add a test?', requestedAt: 3 },
      }),
      agent({ state: 'running' }),
      on,
    );
    assert.equal(notice?.message, 'Agent "Fix the parser" asks for review: Add a test?');
    assert.deepEqual(
      notice?.actions.map((action) => action.title),
      ['Review', 'Resume', 'Open'],
    );
  });

  it('shows no link from the agent: not in its review question, its title or its failure', () => {
    const asking = agentNotice(
      agent({
        title: `Issue ${link}`,
        state: 'awaiting_review',
        review: { requestId: 'r', message: `Done. ${link}`, requestedAt: 3 },
      }),
      agent({ state: 'running' }),
      on,
    );
    const failed = agentNotice(
      agent({ state: 'failed', stateReason: `crashed ${link}` }),
      agent({ state: 'running' }),
      on,
    );
    for (const notice of [asking, failed]) {
      assert.ok(notice);
      assert.doesNotMatch(notice.message, /\]\(command:/);
    }
  });

  it('says nothing about an agent seen for the first time, an unchanged state or a muted kind', () => {
    assert.equal(agentNotice(agent({ state: 'done' }), undefined, on), undefined);
    assert.equal(agentNotice(agent({}), agent({}), on), undefined);
    assert.equal(
      agentNotice(agent({ state: 'done' }), agent({}), { ...on, notifyDone: false }),
      undefined,
    );
  });
});
