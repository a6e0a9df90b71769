import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AgentContext } from '../../../server/agents/AgentContext';
import type { LiveVms } from '../../../server/agents/LiveVms';
import { ReviewSnapshots } from '../../../server/agents/ReviewSnapshots';
import type { TimeLimits } from '../../../server/agents/TimeLimits';
import { Store } from '../../../server/store/Store';
import { anAgentRecord } from '../../helpers/anAgentRecord';

describe('ReviewSnapshots (unit)', () => {
  let dir: string;
  let store: Store;
  let reviews: ReviewSnapshots;
  const id = 'queuedrev1';

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-reviews-'));
    store = new Store(path.join(dir, 'broker.db'));
    store.insertAgent(anAgentRecord({ id, state: 'reviewing' }));
    // Only the timeline is read by what is tested here.
    reviews = new ReviewSnapshots(
      { store } as unknown as AgentContext,
      {} as LiveVms,
      {} as TimeLimits,
    );
  });

  afterEach(() => {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const review = (requestId: string, message: string) =>
    store.appendEvent(id, { kind: 'review', message, data: { requestId } });
  const queued = (requestId: string) =>
    store.appendEvent(id, {
      kind: 'info',
      message: 'review requested while another is open',
      data: { requestId, queuedReview: true },
    });
  const answer = (requestId: string) =>
    store.appendEvent(id, { kind: 'answer', message: 'ok', data: { requestId } });

  it('finds nothing when every review was asked in turn and answered', () => {
    review('r1', 'first');
    answer('r1');
    review('r2', 'second');
    assert.equal(reviews.unansweredRequest(id), undefined);
  });

  it('gives the oldest review asked while another was open, until it is answered', () => {
    review('r1', 'first');
    review('r2', 'asked during the review');
    queued('r2');
    review('r3', 'and another');
    queued('r3');
    answer('r1');
    assert.deepEqual(reviews.unansweredRequest(id), {
      requestId: 'r2',
      message: 'asked during the review',
    });

    answer('r2');
    assert.deepEqual(reviews.unansweredRequest(id), { requestId: 'r3', message: 'and another' });
    answer('r3');
    assert.equal(reviews.unansweredRequest(id), undefined);
  });
});
