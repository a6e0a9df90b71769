import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BrokerClient } from '../../../client/BrokerClient';
import { packageRoot } from '../../../server/config/paths';
import { startImagelessBroker, type ImagelessBroker } from '../../helpers/imagelessBroker';
import { git, makeTempRepo } from '../../helpers/repos';
import { FakeGitHub } from '../github/fakeGitHub';

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stderr: string }> {
  const entry = path.join(packageRoot(), 'dist', 'cli.js');
  return new Promise((resolve) => {
    execFile(
      'node',
      [entry, ...args],
      { env: { ...process.env, ...env } },
      (error, _out, stderr) => {
        const code = error ? Number((error as { code?: number }).code ?? 1) : 0;
        resolve({ code, stderr });
      },
    );
  });
}

describe('agentvm delegate --issue (unit)', function () {
  this.timeout(60_000);
  let github: FakeGitHub;
  let harness: ImagelessBroker;
  let repo: string;
  let env: NodeJS.ProcessEnv;

  before(async function () {
    if (!fs.existsSync(path.join(packageRoot(), 'dist', 'cli.js'))) this.skip();

    github = new FakeGitHub('ghp_test-token');
    const apiUrl = await github.start();
    github.addRepo('octo', 'widgets');
    github.addIssue('octo', 'widgets', {
      number: 7,
      title: 'Median of multi-digit numbers is wrong',
      body: 'median([10, 2, 9]) returns 2.',
      labels: [{ name: 'bug' }],
      user: 'carol',
      comments: [{ user: 'dave', body: 'Sorting as text?', createdAt: '2024-01-02T10:00:00Z' }],
    });
    harness = await startImagelessBroker();
    repo = makeTempRepo();
    env = {
      AGENTVM_URL: harness.url,
      AGENTVM_TOKEN: harness.token,
      GITHUB_API_URL: apiUrl,
      GITHUB_TOKEN: 'ghp_test-token',
      GH_TOKEN: '',
    };
  });

  after(async () => {
    await harness?.stop();
    await github?.close();
    if (repo) fs.rmSync(repo, { recursive: true, force: true });
  });

  it('builds the task from the issue, links it, and records the issue on the agent', async () => {
    git(repo, ['remote', 'add', 'origin', 'https://github.com/octo/widgets.git']);
    const run = await cli(
      ['delegate', '--detach', '--issue', 'octo/widgets#7', '--repo', repo, '--profile', 'plain'],
      env,
    );
    assert.equal(run.code, 0, run.stderr);

    const client = new BrokerClient({ url: harness.url, token: harness.token });
    const [agent] = await client.listAgents();
    assert.equal(agent.title, 'Median of multi-digit numbers is wrong');
    assert.match(agent.text, /octo\/widgets#7/);
    assert.match(agent.text, /median\(\[10, 2, 9\]\) returns 2\./);
    assert.match(agent.text, /Sorting as text\?/);
    assert.equal(harness.broker.store.getAgent(agent.id)?.issueRef, 'octo/widgets#7');
    assert.ok(!JSON.stringify(agent).includes('ghp_test-token'), 'the GitHub token is not stored');
  });

  it('refuses a local clone whose remote is another repository, and creates nothing more', async () => {
    const other = makeTempRepo();
    try {
      git(other, ['remote', 'add', 'origin', 'https://github.com/someone/else.git']);
      const before = (
        await new BrokerClient({ url: harness.url, token: harness.token }).listAgents()
      ).length;
      const run = await cli(
        ['delegate', '--issue', 'octo/widgets#7', '--repo', other, '--profile', 'plain'],
        env,
      );
      assert.notEqual(run.code, 0);
      assert.match(run.stderr, /REMOTE_MISMATCH/);
      const after = (
        await new BrokerClient({ url: harness.url, token: harness.token }).listAgents()
      ).length;
      assert.equal(after, before);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  it('reports a clone of another repository as such even with no GitHub token anywhere', async () => {
    const other = makeTempRepo();
    const fetchesBefore = github.calls.length;
    try {
      git(other, ['remote', 'add', 'origin', 'https://github.com/someone/else.git']);
      const noToken = { ...env, GITHUB_TOKEN: '', GH_TOKEN: '', GH_CONFIG_DIR: other };
      const run = await cli(['delegate', '--issue', 'octo/widgets#7', '--repo', other], noToken);

      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /REMOTE_MISMATCH/);
      assert.doesNotMatch(run.stderr, /GITHUB_TOKEN_MISSING/);
      assert.equal(github.calls.length, fetchesBefore, 'the issue was not fetched');
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  it('names a malformed issue reference', async () => {
    const run = await cli(['delegate', '--issue', 'not an issue', '--repo', repo], env);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /BAD_ISSUE_REF/);
  });
});
