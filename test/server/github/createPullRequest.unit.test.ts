import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentvmError } from '../../../protocol/errors';
import { createGitHubClient, type GitHubClient } from '../../../server/github/createGitHubClient';
import {
  createPullRequest,
  type CreatePullRequestOptions,
} from '../../../server/github/createPullRequest';
import { importResultBundle } from '../../../server/github/importResultBundle';
import { buildAgentWork, plainGit, type AgentWork } from './agentWorkFixture';
import { FakeGitHub } from './fakeGitHub';

describe('createPullRequest (unit)', () => {
  let root: string;
  let work: AgentWork;
  let fake: FakeGitHub;
  let octokit: GitHubClient;
  let resultRepo: string;

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'agentvm-pr-'));
    work = buildAgentWork(root);
    resultRepo = await importResultBundle(
      work.bundle,
      work.userDir,
      work.headCommit,
      path.join(root, 'import'),
    );
  });

  after(() => rmSync(root, { recursive: true, force: true }));

  beforeEach(async () => {
    fake = new FakeGitHub('test-token');
    const baseUrl = await fake.start();
    fake.addRepo('octo', 'widgets', 'main');
    fake.seedFromGit('octo', 'widgets', work.userDir, work.baseCommit, 'main');
    octokit = createGitHubClient({
      token: 'test-token',
      baseUrl,
      retryBaseMs: 1,
      writeSpacingMs: 0,
    });
  });

  afterEach(() => fake.close());

  const options = (
    overrides: Partial<CreatePullRequestOptions> = {},
  ): CreatePullRequestOptions => ({
    repo: { owner: 'octo', repo: 'widgets' },
    repoDir: resultRepo,
    baseCommit: work.baseCommit,
    headCommit: work.headCommit,
    branch: 'agentvm/a1b2',
    delegation: {
      agentId: 'a1b2',
      title: 'Widgets crash on empty input',
      task: 'Fix the crash.',
      delegatedBy: 'alice',
      reviewAnswers: [{ question: 'Keep the old API?', answer: 'Yes, deprecate it.' }],
      issue: { owner: 'octo', repo: 'widgets', number: 5 },
      commitSubjects: work.commits.map((commit) => commit.subject),
    },
    ...overrides,
  });

  it('recreates every commit with the same ids, then sets the branch, then opens the pull request', async () => {
    const outcome = await createPullRequest(octokit, options({ draft: true }));

    assert.equal(outcome.headSha, work.headCommit, 'recreated head must hash to the local head');
    assert.equal(outcome.commitCount, work.commits.length);
    assert.equal(fake.refOf('octo', 'widgets', 'agentvm/a1b2'), work.headCommit);
    assert.deepEqual(outcome.pullRequest, {
      number: 100,
      url: 'https://github.com/octo/widgets/pull/100',
      draft: true,
      existing: false,
    });

    const writes = fake.calls.filter((call) => call.method !== 'GET');
    const kinds = writes.map((call) => call.path.replace(/^\/repos\/octo\/widgets\//, ''));
    assert.equal(kinds.at(-2), 'git/refs', 'the ref is written after every commit');
    assert.equal(kinds.at(-1), 'pulls', 'the pull request is opened last');

    // Commits in topological order with the original parents, each after its tree, each tree
    // after the blobs it names.
    const commitCalls = writes.filter((call) => call.path.endsWith('/git/commits'));
    assert.deepEqual(
      commitCalls.map((call) => [call.body.message.split('\n')[0], call.body.parents]),
      work.commits.map((commit) => [commit.subject, commit.parents]),
    );
    const uploaded = new Set<string>();
    for (const call of writes) {
      if (call.path.endsWith('/git/blobs')) uploaded.add(blobSha(call.body.content));
      if (!call.path.endsWith('/git/trees')) continue;

      for (const entry of call.body.tree) {
        if (entry.sha === null || entry.type !== 'blob') continue;

        assert.ok(
          uploaded.has(entry.sha) || isInBase(entry.sha),
          `tree names ${entry.path} before its blob was uploaded`,
        );
      }
    }

    const [pull] = fake.pullsOf('octo', 'widgets');
    assert.deepEqual(
      [pull.head, pull.base, pull.draft, pull.title],
      ['agentvm/a1b2', 'main', true, 'Widgets crash on empty input'],
    );
    assert.match(pull.body, /^Fixes #5$/m);
    assert.match(pull.body, /Delegated by @alice/);
    assert.match(pull.body, /Keep the old API\?[\s\S]*Yes, deprecate it\./);

    const merge = work.commits.find((commit) => commit.parents.length === 2)!;
    assert.deepEqual(fake.commit(merge.sha).parents, merge.parents);
  });

  it('writes deletions, mode changes and symlinks as tree entries on top of the parent tree', async () => {
    await createPullRequest(octokit, options());

    const trees = fake.callsTo('POST', /\/git\/trees$/).map((call) => call.body);
    assert.equal(trees.length, work.commits.length - 1, 'the empty commit reuses its parent tree');
    assert.equal(trees[0].base_tree, fake.commit(work.baseCommit).tree);

    const entries = trees.flatMap((tree) => tree.tree);
    const entry = (entryPath: string) =>
      entries.filter((item: { path: string }) => item.path === entryPath);
    assert.deepEqual(entry('old.txt'), [
      { path: 'old.txt', mode: '100644', type: 'blob', sha: null },
    ]);
    assert.equal(entry('dir/nested/deep.txt')[0].sha, null);
    assert.equal(entry('src/a.txt').at(-1).mode, '100755');
    assert.equal(entry('link')[0].mode, '120000');
    assert.equal(entry('link2')[0].mode, '120000');

    const blobContents = fake
      .callsTo('POST', /\/git\/blobs$/)
      .map((call) => Buffer.from(call.body.content, 'base64').toString());
    assert.ok(
      blobContents.includes('src/a.txt'),
      'a symlink is uploaded as a blob holding its target',
    );
    assert.equal(
      blobContents.filter((content) => content === 'alpha\nbeta\n').length,
      1,
      'a mode-only change uploads nothing',
    );
  });

  it('leaves the pushed branch and names it when GitHub refuses the pull request with 403', async () => {
    fake.failNext({
      method: 'POST',
      path: /\/pulls$/,
      status: 403,
      message: 'Resource not accessible by personal access token',
      headers: { 'x-accepted-oauth-scopes': 'repo', 'x-oauth-scopes': 'public_repo, read:org' },
    });

    const error = await createPullRequest(octokit, options()).then(
      () => assert.fail('expected a refusal'),
      (caught: unknown) => caught,
    );

    assert.ok(error instanceof AgentvmError);
    assert.equal(error.code, 'GITHUB_FORBIDDEN');
    assert.match(error.message, /agentvm\/a1b2 was pushed and is left in place/);
    assert.match(error.message, /needs the `repo` scope \(it has: public_repo, read:org\)/);
    assert.equal(fake.refOf('octo', 'widgets', 'agentvm/a1b2'), work.headCommit);
    assert.equal(fake.pullsOf('octo', 'widgets').length, 0);
  });

  it('retries a 502 and a secondary rate limit and still produces the same commits', async () => {
    fake.failNext({ method: 'POST', path: /\/git\/trees$/, status: 502, message: 'Server Error' });
    fake.failNext({
      method: 'POST',
      path: /\/git\/blobs$/,
      status: 403,
      message:
        'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
      headers: { 'retry-after': '1' },
    });

    const outcome = await createPullRequest(octokit, options());

    assert.equal(outcome.headSha, work.headCommit);
    assert.equal(
      fake.callsTo('POST', /\/git\/trees$/).length,
      work.commits.length - 1 + 1,
      'one tree request was repeated',
    );
    const blobCalls = fake.callsTo('POST', /\/git\/blobs$/);
    assert.equal(
      blobCalls.length,
      new Set(blobCalls.map((call) => call.body.content)).size + 1,
      'one blob request was repeated',
    );
  });

  it('pushes only the branch with branchOnly', async () => {
    const outcome = await createPullRequest(octokit, options({ branchOnly: true }));

    assert.equal(outcome.pullRequest, null);
    assert.equal(fake.refOf('octo', 'widgets', 'agentvm/a1b2'), work.headCommit);
    assert.equal(fake.callsTo('POST', /\/pulls$/).length, 0);
  });

  it('updates the open pull request when run again for the same branch', async () => {
    await createPullRequest(octokit, options());
    const again = await createPullRequest(octokit, options({ title: 'Second run' }));

    assert.equal(again.pullRequest?.existing, true);
    assert.equal(again.pullRequest?.number, 100);
    assert.equal(fake.pullsOf('octo', 'widgets').length, 1);
  });

  it('refuses to move a branch that holds other commits unless forced', async () => {
    await createPullRequest(octokit, options({ branchOnly: true, branch: 'taken' }));
    const otherHead = work.commits[0].sha;
    const stale = options({ branchOnly: true, branch: 'taken', headCommit: otherHead });
    fake.seedFromGit('octo', 'widgets', work.workDir, work.headCommit, 'taken');

    await assert.rejects(createPullRequest(octokit, stale), (error: AgentvmError) => {
      assert.equal(error.code, 'APPLY_CONFLICT');
      assert.match(error.message, /Branch taken on octo\/widgets/);
      return true;
    });
    assert.equal(fake.refOf('octo', 'widgets', 'taken'), work.headCommit);

    await createPullRequest(octokit, { ...stale, force: true });
    assert.equal(fake.refOf('octo', 'widgets', 'taken'), otherHead);
  });

  it('names the repository when GitHub answers 404 for it', async () => {
    await assert.rejects(
      createPullRequest(octokit, options({ repo: { owner: 'octo', repo: 'missing' } })),
      (error: AgentvmError) => {
        assert.equal(error.code, 'GITHUB_NOT_FOUND');
        assert.match(error.message, /GitHub repository octo\/missing was not found/);
        return true;
      },
    );
  });

  it('says to push the base first when the base commit is not on GitHub', async () => {
    const empty = new FakeGitHub('test-token');
    const baseUrl = await empty.start();
    try {
      empty.addRepo('octo', 'widgets', 'main');
      const client = createGitHubClient({
        token: 'test-token',
        baseUrl,
        retryBaseMs: 1,
        writeSpacingMs: 0,
      });

      await assert.rejects(createPullRequest(client, options()), (error: AgentvmError) => {
        assert.equal(error.code, 'GITHUB_NOT_FOUND');
        assert.match(
          error.message,
          new RegExp(`Commit ${work.baseCommit.slice(0, 12)}.*push it there first`),
        );
        return true;
      });
      assert.equal(empty.callsTo('POST', /\/git\//).length, 0, 'nothing is written');
    } finally {
      await empty.close();
    }
  });

  function isInBase(sha: string): boolean {
    try {
      return plainGit(work.userDir, ['cat-file', '-t', sha]) === 'blob';
    } catch {
      return false;
    }
  }

  function blobSha(contentBase64: string): string {
    const content = Buffer.from(contentBase64, 'base64');
    return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
  }
});
