import assert from 'node:assert/strict';
import { AgentvmError } from '../../../../protocol/errors';
import { listOpenIssues } from '../../../../extension/src/github/listOpenIssues';
import {
  createGitHubClient,
  type GitHubClient,
} from '../../../../server/github/createGitHubClient';
import { FakeGitHub } from '../../../server/github/fakeGitHub';

describe('listOpenIssues (unit)', () => {
  const token = 'ghp_list_open_issues_token';
  let fake: FakeGitHub;
  let octokit: GitHubClient;

  beforeEach(async () => {
    fake = new FakeGitHub(token);
    const baseUrl = await fake.start();
    fake.addRepo('octo', 'widgets');
    const issue = (number: number, title: string, extra: object = {}) =>
      fake.addIssue('octo', 'widgets', {
        number,
        title,
        body: null,
        labels: [],
        user: 'carol',
        comments: [],
        ...extra,
      });
    issue(1, 'Oldest open', { updatedAt: '2025-01-01T00:00:00Z', labels: [{ name: 'bug' }] });
    issue(2, 'Closed long ago', { state: 'closed', updatedAt: '2025-03-01T00:00:00Z' });
    issue(3, 'Most recently updated', {
      updatedAt: '2025-02-01T00:00:00Z',
      comments: [{ user: 'dave', body: 'me too', createdAt: '2025-02-01T00:00:00Z' }],
    });
    octokit = createGitHubClient({ token, baseUrl, retries: 0, retryBaseMs: 1 });
  });

  afterEach(() => fake.close());

  it('lists the open issues, most recently updated first, with labels, author and comment count', async () => {
    const issues = await listOpenIssues(octokit, { owner: 'octo', repo: 'widgets' });

    assert.deepEqual(issues, [
      {
        number: 3,
        title: 'Most recently updated',
        labels: [],
        author: 'carol',
        commentCount: 1,
        updatedAtMs: Date.parse('2025-02-01T00:00:00Z'),
      },
      {
        number: 1,
        title: 'Oldest open',
        labels: ['bug'],
        author: 'carol',
        commentCount: 0,
        updatedAtMs: Date.parse('2025-01-01T00:00:00Z'),
      },
    ]);
    const [call] = fake.callsTo('GET', /\/issues\?/);
    assert.match(call.path, /state=open/);
  });

  it('leaves out the pull requests that GitHub lists among issues', async () => {
    const pulls = fake.pullsOf('octo', 'widgets');
    pulls.push({
      number: 100,
      head: 'agentvm/a1',
      base: 'main',
      title: 'A pull request',
      body: '',
      draft: false,
      state: 'open',
    });

    const raw = await octokit.rest.issues.listForRepo({ owner: 'octo', repo: 'widgets' });
    assert.ok(raw.data.some((item) => item.number === 100 && item.pull_request));

    const issues = await listOpenIssues(octokit, { owner: 'octo', repo: 'widgets' });

    assert.deepEqual(
      issues.map((issue) => issue.number),
      [3, 1],
    );
  });

  it('names the repository when GitHub does not know it', async () => {
    await assert.rejects(
      listOpenIssues(octokit, { owner: 'octo', repo: 'missing' }),
      (error: AgentvmError) =>
        error.code === 'GITHUB_NOT_FOUND' && /octo\/missing/.test(error.message),
    );
  });
});
