import assert from 'node:assert/strict';
import { pullRequestBody, type PullRequestBodyInput } from '../../../server/github/pullRequestBody';

const input: PullRequestBodyInput = {
  agentId: 'a1b2',
  title: 'Widgets crash',
  task: 'Fix it.\nSecond line.',
  delegatedBy: 'alice',
  reviewAnswers: [
    { question: 'Keep the old API?', answer: 'Yes.' },
    { question: 'Run the slow tests?', answer: '' },
  ],
  issue: { owner: 'octo', repo: 'widgets', number: 5 },
  commitSubjects: ['Fix crash', 'Add test'],
};

describe('pullRequestBody (unit)', () => {
  it('closes a same-repository issue with Fixes #N and says who delegated what', () => {
    const body = pullRequestBody(input, { owner: 'Octo', repo: 'Widgets' });

    assert.ok(body.startsWith('Fixes #5\n'));
    assert.match(body, /Delegated by @alice to agentvm agent `a1b2`: \*\*Widgets crash\*\*/);
    assert.match(body, /> Fix it\.\n> Second line\./);
    assert.match(body, /- Fix crash\n- Add test\n$/);
  });

  it('lists every review question with its answer, in order', () => {
    const body = pullRequestBody(input, { owner: 'octo', repo: 'widgets' });

    assert.match(
      body,
      /1\. The agent asked:\n {3}> Keep the old API\?\n {3}The reviewer answered:\n {3}> Yes\./,
    );
    assert.match(
      body,
      /2\. The agent asked:\n {3}> Run the slow tests\?\n {3}The reviewer answered:\n {3}> \(no message; resumed\)/,
    );
  });

  it('links an issue of another repository by its full name, and says when nothing was reviewed', () => {
    const body = pullRequestBody({ ...input, reviewAnswers: [] }, { owner: 'me', repo: 'fork' });

    assert.ok(body.startsWith('Fixes octo/widgets#5\n'));
    assert.match(body, /The agent did not ask for a review\./);
  });

  it('cuts a very long task', () => {
    const body = pullRequestBody(
      { ...input, issue: null, task: 'x'.repeat(10_000) },
      { owner: 'o', repo: 'r' },
    );

    assert.doesNotMatch(body, /Fixes/);
    assert.match(body, /cut; the full task is 10000 characters/);
    assert.ok(body.length < 5000);
  });
});
