import { shownStatusBarItems } from '../../support/vscodeStub';
import assert from 'node:assert/strict';
import type { Agent, AgentState } from '../../../../protocol/api';
import type { AgentStore } from '../../../../extension/src/model/AgentStore';
import { ReviewStatusBarItem } from '../../../../extension/src/views/ReviewStatusBarItem';
import { anAgent } from '../../../helpers/anAgent';

/** The little of a store the status bar item reads: its agents, its status, its change event. */
function storeOf(states: AgentState[]): AgentStore {
  const agents: Agent[] = states.map((state, index) => anAgent({ id: `a${index}`, state }));
  return {
    all: agents,
    status: 'connected',
    onDidChange: () => ({ dispose: () => undefined }),
  } as unknown as AgentStore;
}

describe('ReviewStatusBarItem (unit)', () => {
  it('counts agents that are pausing for review or restoring, as the tree lists them under "Needs review" (regression: only awaiting_review and reviewing were counted)', () => {
    const statusBar = new ReviewStatusBarItem(
      storeOf(['pausing', 'restoring', 'awaiting_review', 'reviewing', 'running', 'done']),
    );
    const item = shownStatusBarItems.at(-1);
    try {
      assert.equal(statusBar.count, 4);
      assert.equal(item?.visible, true);
      assert.equal(item?.text, '$(comment-discussion) 4');
      assert.equal(item?.tooltip, '4 agents need your review');
    } finally {
      statusBar.dispose();
    }
  });

  it('shows an agent that is being paused for review at once', () => {
    const statusBar = new ReviewStatusBarItem(storeOf(['pausing']));
    const item = shownStatusBarItems.at(-1);
    try {
      assert.equal(item?.visible, true);
      assert.equal(item?.tooltip, '1 agent needs your review');
    } finally {
      statusBar.dispose();
    }
  });
});
