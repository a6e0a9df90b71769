import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { finishedAgent, resultOf, reviewEvents } from '../../github/agentBuilders';
import type { AgentWork } from '../../github/agentWorkFixture';
import { FakeGitHub } from '../../github/fakeGitHub';
import { runCli, type CliRun } from '../runCli';

const env = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };
const git = (dir: string, ...args: string[]) =>
  execFileSync('git', ['-C', dir, ...args], { env, encoding: 'utf8' }).trim();

/** One base commit, one agent commit changing one file: few GitHub writes at the real pacing. */
function smallWork(root: string): AgentWork {
  const workDir = path.join(root, 'work');
  const userDir = path.join(root, 'user');
  execFileSync('git', ['init', '--quiet', '-b', 'main', workDir], { env });
  writeFileSync(path.join(workDir, 'a.txt'), 'one\n');
  git(workDir, 'add', '-A');
  git(
    workDir,
    '-c',
    'user.name=Dev',
    '-c',
    'user.email=dev@example.test',
    'commit',
    '--quiet',
    '-m',
    'base',
  );
  const baseCommit = git(workDir, 'rev-parse', 'HEAD');
  execFileSync('git', ['clone', '--quiet', workDir, userDir], { env });
  writeFileSync(path.join(workDir, 'a.txt'), 'two\n');
  git(
    workDir,
    '-c',
    'user.name=Agent',
    '-c',
    'user.email=agent@example.test',
    'commit',
    '--quiet',
    '-am',
    'Fix a',
  );
  const headCommit = git(workDir, 'rev-parse', 'HEAD');
  git(
    workDir,
    'bundle',
    'create',
    '--quiet',
    path.join(root, 'r.bundle'),
    'main',
    `^${baseCommit}`,
  );
  return {
    workDir,
    userDir,
    baseCommit,
    headCommit,
    bundle: readFileSync(path.join(root, 'r.bundle')),
    commits: [{ sha: headCommit, parents: [baseCommit], subject: 'Fix a' }],
  };
}

describe('agentvm pr (unit)', () => {
  let root: string;
  let work: AgentWork;
  let broker: http.Server;
  let brokerUrl: string;
  let fake: FakeGitHub;
  let githubUrl: string;
  const brokerPaths: string[] = [];

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'agentvm-cli-pr-'));
    work = smallWork(root);
    const agent = finishedAgent(work);
    // An agent still at work: the broker has no result for it yet.
    const running = finishedAgent(work, {
      id: 'r1',
      state: 'running',
      endedAt: null,
      result: null,
    });
    const notReady = {
      error: { code: 'RESULT_NOT_READY', message: 'agent r1 has no result yet', hint: 'x' },
    };
    broker = http.createServer((request, response) => {
      brokerPaths.push(`${request.headers.authorization} ${request.url}`);
      const routes: Record<string, unknown> = {
        '/v1/agents/a1b2': agent,
        '/v1/agents/a1b2/events?after=0': reviewEvents(),
        '/v1/agents/a1b2/result': resultOf(work),
        '/v1/agents/r1': running,
        '/v1/agents/r1/events?after=0': reviewEvents('r1'),
      };
      if (request.url === '/v1/agents/a1b2/result/bundle') {
        response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(work.bundle);
        return;
      }

      if (request.url?.startsWith('/v1/agents/r1/result')) {
        response.writeHead(409, { 'content-type': 'application/json' });
        response.end(JSON.stringify(notReady));
        return;
      }

      const body = routes[request.url ?? ''];
      response.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify(
          body ?? { error: { code: 'AGENT_NOT_FOUND', message: 'no such agent', hint: 'x' } },
        ),
      );
    });
    await new Promise<void>((resolve) => broker.listen(0, '127.0.0.1', resolve));
    brokerUrl = `http://127.0.0.1:${(broker.address() as AddressInfo).port}`;

    fake = new FakeGitHub('ghp_cli_token');
    githubUrl = await fake.start();
    fake.addRepo('octo', 'widgets', 'main');
    fake.seedFromGit('octo', 'widgets', work.userDir, work.baseCommit, 'main');
  });

  after(async () => {
    await fake.close();
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    rmSync(root, { recursive: true, force: true });
  });

  /** Runs `agentvm pr ARGS` in this process; `env` entries set to undefined are unset. */
  function run(args: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
    return runCli(['pr', ...args], {
      AGENTVM_URL: brokerUrl,
      AGENTVM_TOKEN: 'broker-token',
      GITHUB_TOKEN: 'ghp_cli_token',
      GITHUB_API_URL: githubUrl,
      ...env,
    });
  }

  it('reads the agent from the broker and opens a draft pull request on the given base', async function () {
    this.timeout(60_000);

    const { stdout, stderr, exitCode } = await run(['a1b2', '--draft', '--base', 'main']);

    assert.equal(exitCode, 0, stderr);
    assert.match(stdout, /pushed 1 commit\(s\) to octo\/widgets branch agentvm\/a1b2/);
    assert.match(
      stdout,
      /opened draft pull request #100: https:\/\/github.com\/octo\/widgets\/pull\/100/,
    );
    assert.match(stderr, /using the GitHub token from GITHUB_TOKEN/);
    assert.doesNotMatch(stdout + stderr, /ghp_cli_token/);
    assert.equal(fake.refOf('octo', 'widgets', 'agentvm/a1b2'), work.headCommit);
    assert.ok(brokerPaths.every((line) => line.startsWith('Bearer broker-token ')));
    assert.match(fake.pullsOf('octo', 'widgets')[0].body, /Yes, deprecate it\./);
  });

  it('prints the broker error and fails for an unknown agent', async () => {
    const { stderr, exitCode } = await run(['nope', '--branch-only']);

    assert.notEqual(exitCode, 0);
    assert.match(stderr, /error \[AGENT_NOT_FOUND\]/);
  });

  describe('with no GitHub token anywhere', () => {
    let noLogin: string;
    const tokenless = () => ({
      GITHUB_TOKEN: undefined,
      GH_TOKEN: undefined,
      GH_CONFIG_DIR: noLogin,
    });

    before(() => {
      noLogin = mkdtempSync(path.join(os.tmpdir(), 'agentvm-cli-pr-gh-'));
    });

    after(() => rmSync(noLogin, { recursive: true, force: true }));

    it('reports a --repo typo as a typo, not as a missing token (regression: `pr ID --repo bad`)', async () => {
      const { stderr, exitCode } = await run(['a1b2', '--repo', 'bad'], tokenless());

      assert.equal(exitCode, 2, stderr);
      assert.match(stderr, /^error \[VALIDATION_FAILED\]: --repo must be OWNER\/REPO, not "bad"$/m);
      assert.match(stderr, /^ {2}hint: .*--repo octo\/widgets/m);
      assert.doesNotMatch(stderr, /GITHUB_TOKEN/);
    });

    it('says that pr --repo names a GitHub repository when it is given a directory, as apply --repo takes (new-user trial: `pr ID --repo /tmp/repo`)', async () => {
      const { stderr, exitCode } = await run(['a1b2', '--repo', './my-clone'], tokenless());

      assert.equal(exitCode, 2, stderr);
      assert.match(
        stderr,
        /^ {2}hint: pr --repo names the GitHub repository \(OWNER\/REPO.*not a directory as apply --repo does/m,
      );
    });

    it('reports an agent without a result as such, not as a missing token', async () => {
      const { stderr, exitCode } = await run(['r1'], tokenless());

      assert.notEqual(exitCode, 0);
      assert.match(stderr, /^error \[RESULT_NOT_READY\]/m);
      assert.doesNotMatch(stderr, /GITHUB_TOKEN/);
    });

    it('reports an unknown agent as such, not as a missing token', async () => {
      const { stderr, exitCode } = await run(['nope', '--repo', 'octo/widgets'], tokenless());

      assert.equal(exitCode, 5, stderr);
      assert.match(stderr, /^error \[AGENT_NOT_FOUND\]/m);
    });

    it('asks for a token only once everything typed and the agent check out', async () => {
      const { stderr, exitCode } = await run(['a1b2', '--repo', 'octo/widgets'], tokenless());

      assert.notEqual(exitCode, 0);
      assert.match(stderr, /^error \[GITHUB_TOKEN_MISSING\]/m);
    });
  });
});
