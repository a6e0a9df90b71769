import assert from 'node:assert/strict';
import { AgentvmError } from '../../../protocol/errors';
import { createGitHubClient, type GitHubClient } from '../../../server/github/createGitHubClient';
import { fetchIssueTask, issueRefFromTaskText } from '../../../server/github/fetchIssueTask';
import { FakeGitHub } from './fakeGitHub';

describe('fetchIssueTask (unit)', () => {
  let fake: FakeGitHub;
  let octokit: GitHubClient;
  const ref = { owner: 'octo', repo: 'widgets', number: 5 };

  beforeEach(async () => {
    fake = new FakeGitHub('test-token');
    const baseUrl = await fake.start();
    fake.addRepo('octo', 'widgets');
    fake.addIssue('octo', 'widgets', {
      number: 5,
      title: 'Widgets crash on empty input',
      body: 'Steps:\n1. call `widget("")`\n2. boom\n',
      labels: [{ name: 'bug' }, 'good first issue'],
      user: 'carol',
      comments: Array.from({ length: 130 }, (_, index) => ({
        user: index % 2 === 0 ? 'dave' : 'erin',
        body: `comment number ${index + 1}`,
        createdAt: `2024-01-${String((index % 28) + 1).padStart(2, '0')}T10:00:00Z`,
      })),
    });
    octokit = createGitHubClient({
      token: 'test-token',
      baseUrl,
      retryBaseMs: 1,
      writeSpacingMs: 0,
    });
  });

  afterEach(() => fake.close());

  it('builds the task from title, labels, body and every page of comments, with a link back', async () => {
    const task = await fetchIssueTask(octokit, ref);

    assert.equal(task.title, 'Widgets crash on empty input');
    assert.equal(task.url, 'https://github.com/octo/widgets/issues/5');
    const lines = task.text.split('\n');
    assert.equal(lines[0], '# Widgets crash on empty input');
    assert.equal(
      lines[2],
      'Task from GitHub issue [octo/widgets#5](https://github.com/octo/widgets/issues/5), opened by @carol (open).',
    );
    assert.equal(lines[3], 'Labels: bug, good first issue');
    assert.match(task.text, /Steps:\n1\. call `widget\(""\)`\n2\. boom/);
    assert.match(task.text, /## Comments \(130\)/);
    assert.ok(
      task.text.indexOf('comment number 1\n') < task.text.indexOf('comment number 130\n'),
      'comments keep their order',
    );
    assert.match(task.text, /### @erin on 2024-01-02\n\ncomment number 2\n/);
    assert.equal(fake.callsTo('GET', /\/issues\/5\/comments/).length, 2, 'two pages of 100');
  });

  it('reads the issue back from the task text it wrote', async () => {
    const task = await fetchIssueTask(octokit, ref);

    assert.deepEqual(issueRefFromTaskText(task.text), ref);
    assert.equal(
      issueRefFromTaskText('Fix the thing in https://github.com/octo/widgets/issues/5'),
      null,
    );
  });

  it('says when an issue has no description or comments', async () => {
    fake.addIssue('octo', 'widgets', {
      number: 6,
      title: 'Bare',
      body: null,
      labels: [],
      user: 'carol',
      comments: [],
    });

    const task = await fetchIssueTask(octokit, { ...ref, number: 6 });

    assert.match(task.text, /_The issue has no description\._/);
    assert.doesNotMatch(task.text, /Comments|Labels/);
  });

  it('retries a 500 on the issue and then succeeds', async () => {
    fake.failNext({ method: 'GET', path: /\/issues\/5$/, status: 500, times: 2 });

    const task = await fetchIssueTask(octokit, ref);

    assert.equal(task.title, 'Widgets crash on empty input');
    assert.equal(fake.callsTo('GET', /\/issues\/5$/).length, 3);
  });

  it('gives up after the configured retries with GITHUB_ERROR', async () => {
    fake.failNext({ method: 'GET', path: /\/issues\/5$/, status: 503, times: 10 });

    await assert.rejects(fetchIssueTask(octokit, ref), (error: AgentvmError) => {
      assert.equal(error.code, 'GITHUB_ERROR');
      assert.match(error.message, /503/);
      return true;
    });
    assert.equal(fake.callsTo('GET', /\/issues\/5$/).length, 4, 'one try and three retries');
  });

  it('names the issue and the repository on 404', async () => {
    await assert.rejects(fetchIssueTask(octokit, { ...ref, number: 99 }), (error: AgentvmError) => {
      assert.equal(error.code, 'GITHUB_NOT_FOUND');
      assert.match(error.message, /no issue #99 in octo\/widgets/);
      return true;
    });
    await assert.rejects(
      fetchIssueTask(octokit, { owner: 'octo', repo: 'nope', number: 1 }),
      /octo\/nope/,
    );
  });

  it('reports a rejected token as GITHUB_UNAUTHORIZED', async () => {
    const wrong = createGitHubClient({
      token: 'wrong-token',
      baseUrl: octokit.request.endpoint.DEFAULTS.baseUrl,
      retryBaseMs: 1,
    });

    await assert.rejects(fetchIssueTask(wrong, ref), (error: AgentvmError) => {
      assert.equal(error.code, 'GITHUB_UNAUTHORIZED');
      assert.match(error.message, /Bad credentials/);
      return true;
    });
  });
});
