import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentvmError } from '../../../../protocol/errors';
import {
  pullRequestFailure,
  type PullRequestFailureContext,
} from '../../../../extension/src/github/pullRequestFailure';
import {
  createGitHubClient,
  type GitHubClient,
} from '../../../../server/github/createGitHubClient';
import { openAgentPullRequest } from '../../../../server/github/openAgentPullRequest';
import { finishedAgent, resultOf } from '../../../server/github/agentBuilders';
import { buildAgentWork, type AgentWork } from '../../../server/github/agentWorkFixture';
import { FakeGitHub } from '../../../server/github/fakeGitHub';

// The errors come from the real openAgentPullRequest against the fake GitHub, so a change in the
// wording the mapping relies on fails here rather than in front of a user.
describe('pullRequestFailure (unit)', () => {
  const token = 'ghp_pull_request_failure_token';
  const repo = { owner: 'octo', repo: 'widgets' };
  let root: string;
  let work: AgentWork;
  let fake: FakeGitHub;
  let octokit: GitHubClient;

  const context = (
    overrides: Partial<PullRequestFailureContext> = {},
  ): PullRequestFailureContext => ({
    repo,
    branch: 'agentvm/a1b2',
    webHost: 'github.com',
    tokenSource: 'vscode',
    ...overrides,
  });

  /** Runs the real pull request flow and returns what the extension would show. */
  async function failure(
    overrides: Partial<PullRequestFailureContext> = {},
  ): Promise<AgentvmError> {
    const error = await openAgentPullRequest(octokit, {
      agent: finishedAgent(work),
      events: [],
      result: resultOf(work),
      bundle: work.bundle,
      token,
      repo,
    }).then(
      () => assert.fail('the pull request was expected to fail'),
      (caught: unknown) => caught,
    );
    const shown = pullRequestFailure(error, context(overrides));
    assert.ok(shown instanceof AgentvmError, `an AgentvmError, got ${String(shown)}`);
    return shown;
  }

  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'agentvm-pr-failure-'));
    work = buildAgentWork(path.join(root, 'fixture'));
  });

  after(() => rmSync(root, { recursive: true, force: true }));

  beforeEach(async () => {
    fake = new FakeGitHub(token);
    const baseUrl = await fake.start();
    fake.addRepo('octo', 'widgets');
    fake.seedFromGit('octo', 'widgets', work.userDir, work.baseCommit, 'main');
    octokit = createGitHubClient({ token, baseUrl, retries: 0, retryBaseMs: 1, writeSpacingMs: 0 });
  });

  afterEach(() => fake.close());

  it('says the branch was left on GitHub when a 403 refused the pull request after the push', async () => {
    fake.failNext({
      method: 'POST',
      path: /\/pulls$/,
      status: 403,
      message: 'Resource not accessible by personal access token',
      headers: { 'x-accepted-oauth-scopes': 'repo', 'x-oauth-scopes': 'public_repo' },
    });

    const shown = await failure();

    assert.equal(shown.code, 'GITHUB_FORBIDDEN');
    assert.equal(fake.refOf('octo', 'widgets', 'agentvm/a1b2'), work.headCommit);
    assert.match(shown.message, /needs the `repo` scope \(it has: public_repo\)/);
    assert.match(
      shown.message,
      /The branch agentvm\/a1b2 was pushed and is left on GitHub \(https:\/\/github\.com\/octo\/widgets\/tree\/agentvm\/a1b2\)\.$/,
    );
    assert.doesNotMatch(shown.message + shown.hint, /--branch-only|by hand/, 'no CLI advice');
    assert.match(shown.hint, /sign in again and allow the repo scope/);
    assert.match(shown.hint, /open the pull request from that branch on GitHub\.$/);
  });

  it('names the missing write access, and no branch, when the push itself was refused', async () => {
    fake.failNext({ method: 'POST', path: /\/git\/refs$/, status: 403, message: 'Forbidden' });

    const shown = await failure({ tokenSource: 'GITHUB_TOKEN' });

    assert.equal(shown.code, 'GITHUB_FORBIDDEN');
    assert.equal(fake.refOf('octo', 'widgets', 'agentvm/a1b2'), undefined);
    assert.doesNotMatch(shown.message, /left on GitHub/);
    assert.match(shown.hint, /^The token in GITHUB_TOKEN lacks write access/);
    assert.match(shown.hint, /`repo` scope .* on octo\/widgets\./);
  });

  it('tells a rejected token apart by where it came from', async () => {
    fake.failNext({
      method: 'POST',
      path: /\/git\/blobs$/,
      status: 401,
      message: 'Bad credentials',
    });
    const fromGh = await failure({ tokenSource: 'gh' });
    assert.equal(fromGh.code, 'GITHUB_UNAUTHORIZED');
    assert.match(fromGh.message, /401 Bad credentials/);
    assert.match(fromGh.hint, /gh auth login/);

    fake.failNext({
      method: 'POST',
      path: /\/git\/blobs$/,
      status: 401,
      message: 'Bad credentials',
    });
    const fromSession = await failure({ tokenSource: 'vscode' });
    assert.match(fromSession.hint, /^The VS Code GitHub session is invalid or expired: sign out/);
  });

  it('names the repository and the account in use on a 404', async () => {
    fake.failNext({ method: 'POST', path: /\/git\/blobs$/, status: 404, message: 'Not Found' });

    const shown = await failure();

    assert.equal(shown.code, 'GITHUB_NOT_FOUND');
    assert.match(shown.message, /octo\/widgets/);
    assert.match(
      shown.hint,
      /^Check that octo\/widgets exists on github\.com and that the GitHub account in use can read it \(the VS Code GitHub session\)\.$/,
    );
  });

  it('asks to delete or rename a branch on GitHub that holds other commits', async () => {
    const other = path.join(root, 'other-work');
    const git = (...args: string[]) =>
      execFileSync('git', ['-C', other, ...args], { encoding: 'utf8' }).trim();
    execFileSync('git', ['clone', '--quiet', work.userDir, other]);
    git(
      '-c',
      'user.name=x',
      '-c',
      'user.email=x@x',
      'commit',
      '--quiet',
      '--allow-empty',
      '-m',
      'x',
    );
    fake.seedFromGit('octo', 'widgets', other, git('rev-parse', 'HEAD'), 'agentvm/a1b2');
    rmSync(other, { recursive: true, force: true });

    const shown = await failure();

    assert.equal(shown.code, 'APPLY_CONFLICT');
    assert.equal(
      shown.hint,
      'Delete or rename the branch agentvm/a1b2 on GitHub, then run "Open pull request" again.',
    );
  });

  it('passes errors that are not agentvm errors through unchanged', () => {
    const plain = new Error('socket hang up');

    assert.equal(pullRequestFailure(plain, context()), plain);
  });
});
