import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentvmError } from '../../../protocol/errors';
import { createGitHubClient, type GitHubClient } from '../../../server/github/createGitHubClient';
import {
  openAgentPullRequest,
  reviewAnswersFromEvents,
} from '../../../server/github/openAgentPullRequest';
import { finishedAgent, resultOf, reviewEvents } from './agentBuilders';
import { buildAgentWork, type AgentWork } from './agentWorkFixture';
import { FakeGitHub } from './fakeGitHub';
import { GitHttpServer } from './gitHttpServer';

describe('openAgentPullRequest (unit)', () => {
  const token = 'ghp_open_agent_pr_token';
  let root: string;
  let work: AgentWork;
  let fake: FakeGitHub;
  let octokit: GitHubClient;

  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'agentvm-open-pr-'));
    work = buildAgentWork(path.join(root, 'fixture'));
  });

  after(() => rmSync(root, { recursive: true, force: true }));

  beforeEach(async () => {
    fake = new FakeGitHub(token);
    const baseUrl = await fake.start();
    fake.addRepo('octo', 'widgets', 'trunk');
    fake.seedFromGit('octo', 'widgets', work.userDir, work.baseCommit, 'trunk');
    fake.seedFromGit('octo', 'widgets', work.userDir, work.baseCommit, 'main');
    octokit = createGitHubClient({ token, baseUrl, retryBaseMs: 1, writeSpacingMs: 0 });
  });

  afterEach(() => fake.close());

  it("opens the pull request in the issue's repository against the delegated branch, with the review answers", async () => {
    const outcome = await openAgentPullRequest(octokit, {
      agent: finishedAgent(work),
      events: reviewEvents(),
      result: resultOf(work),
      bundle: work.bundle,
      token,
      draft: true,
    });

    assert.deepEqual(outcome.repo, { owner: 'octo', repo: 'widgets' });
    assert.equal(outcome.branch, 'agentvm/a1b2');
    assert.equal(outcome.headSha, work.headCommit);
    const [pull] = fake.pullsOf('octo', 'widgets');
    assert.equal(
      pull.base,
      'main',
      'the branch the task was delegated from, not the default branch',
    );
    assert.match(pull.body, /^Fixes #5$/m);
    assert.match(
      pull.body,
      /Keep the old API\?[\s\S]*Yes, deprecate it\.[\s\S]*Run the slow tests\?[\s\S]*No\./,
    );
  });

  it('clones the repository for the base commit when the delegating clone is gone', async () => {
    mkdirSync(path.join(root, 'served', 'octo'), { recursive: true });
    execFileSync('git', [
      'clone',
      '--quiet',
      '--bare',
      work.userDir,
      path.join(root, 'served', 'octo', 'widgets.git'),
    ]);
    const server = new GitHttpServer(
      path.join(root, 'served'),
      `Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`,
    );
    const cloneBaseUrl = await server.start();
    try {
      const agent = finishedAgent(work);
      agent.repo.path = path.join(root, 'deleted-clone');

      const outcome = await openAgentPullRequest(octokit, {
        agent,
        events: [],
        result: resultOf(work),
        bundle: work.bundle,
        token,
        branchOnly: true,
        cloneBaseUrl,
      });

      assert.equal(outcome.headSha, work.headCommit);
      assert.ok(server.authorizations.length > 0, 'the clone went to the git server');
    } finally {
      await server.close();
    }
  });

  it('takes the repository from the clone remote when the task did not come from an issue', async () => {
    const clone = path.join(root, 'remote-clone');
    execFileSync('git', ['clone', '--quiet', work.userDir, clone]);
    execFileSync('git', [
      '-C',
      clone,
      'remote',
      'set-url',
      'origin',
      'git@github.com:octo/widgets.git',
    ]);
    const agent = finishedAgent(work, { text: 'Fix the crash.' });
    agent.repo.path = clone;

    const outcome = await openAgentPullRequest(octokit, {
      agent,
      events: [],
      result: resultOf(work),
      bundle: work.bundle,
      token,
    });

    assert.deepEqual(outcome.repo, { owner: 'octo', repo: 'widgets' });
    assert.doesNotMatch(fake.pullsOf('octo', 'widgets')[0].body, /Fixes/);
  });

  it('asks for --repo when neither an issue nor a GitHub remote names the repository', async () => {
    const agent = finishedAgent(work, { text: 'Fix the crash.' });

    await assert.rejects(
      openAgentPullRequest(octokit, {
        agent,
        events: [],
        result: resultOf(work),
        bundle: work.bundle,
        token,
      }),
      (error: AgentvmError) =>
        error.code === 'REMOTE_MISMATCH' && error.hint === 'Pass --repo OWNER/REPO.',
    );
  });

  it('pairs review questions with answers by request id, else oldest first', () => {
    const event = (
      id: number,
      kind: 'review' | 'answer',
      message: string,
      data: Record<string, unknown> = {},
    ) => ({
      id,
      agentId: 'a1b2',
      at: id,
      kind,
      message,
      data,
    });
    const events = [
      event(1, 'review', 'First?', { requestId: 'r1' }),
      event(2, 'review', 'Second?', { requestId: 'r2' }),
      event(3, 'answer', 'to the second', { requestId: 'r2' }),
      event(4, 'answer', 'to the first'),
      event(5, 'review', 'Never answered?', { requestId: 'r3' }),
    ];

    assert.deepEqual(reviewAnswersFromEvents(events), [
      { question: 'Second?', answer: 'to the second' },
      { question: 'First?', answer: 'to the first' },
    ]);
  });
});
