import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as vscode from 'vscode';
import type { Agent } from '../../protocol/api';
import type { ExtensionApi } from '../../extension/src/extension';
import type { AgentPullRequestOutcome } from '../../server/github/openAgentPullRequest';
import { FakeGitHub } from '../server/github/fakeGitHub';

/** What the GitHub suite needs from the end-to-end suite it runs inside. */
export interface GitHubSuiteContext {
  api(): ExtensionApi;
  /** The agent the end-to-end suite drove to done. */
  finishedAgent(): Agent | undefined;
  repoDir: string;
}

const owner = 'octo';
const name = 'demo';
const envNames = ['GITHUB_API_URL', 'GITHUB_SERVER_URL', 'GITHUB_TOKEN', 'GH_TOKEN'] as const;

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd }).toString().trim();
}

/** Polls `probe` every 100 ms until it is true, at most `timeoutMs`. */
async function until(what: string, probe: () => boolean, timeoutMs = 20_000): Promise<void> {
  for (let waitedMs = 0; !probe(); waitedMs += 100) {
    if (waitedMs >= timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * The extension against a fake GitHub on loopback: the workspace repository gets an `origin` on
 * github.com, and GITHUB_API_URL and GITHUB_TOKEN in the extension host point the extension at the
 * fake (no VS Code GitHub session exists in the test workbench). Registered inside the end-to-end
 * suite so that it reuses its finished agent instead of booting another VM.
 */
export function describeGitHub(context: GitHubSuiteContext): void {
  describe('GitHub issues and pull requests (vscode)', () => {
    const token = 'ghp_vscode_suite_token';
    const savedEnv: Partial<Record<(typeof envNames)[number], string>> = {};
    let fake: FakeGitHub;
    let addedOrigin = false;

    before(async () => {
      fake = new FakeGitHub(token);
      const apiUrl = await fake.start();
      for (const variable of envNames) savedEnv[variable] = process.env[variable];
      delete process.env.GITHUB_SERVER_URL;
      delete process.env.GH_TOKEN;
      process.env.GITHUB_API_URL = apiUrl;
      process.env.GITHUB_TOKEN = token;

      fake.addRepo(owner, name);
      const issue = (number: number, title: string, extra: object = {}) =>
        fake.addIssue(owner, name, {
          number,
          title,
          body: `Body of issue ${number}.`,
          labels: [],
          user: 'carol',
          comments: [],
          ...extra,
        });
      issue(4, 'Median of an empty list throws', {
        labels: [{ name: 'bug' }],
        updatedAt: '2025-05-02T00:00:00Z',
        comments: [
          { user: 'dave', body: 'Return None instead.', createdAt: '2025-05-02T00:00:00Z' },
        ],
      });
      issue(2, 'Document the statistics helpers', { updatedAt: '2025-04-01T00:00:00Z' });
      issue(1, 'Already fixed', { state: 'closed', updatedAt: '2025-06-01T00:00:00Z' });
      fake.seedFromGit(
        owner,
        name,
        context.repoDir,
        git(context.repoDir, 'rev-parse', 'main'),
        'main',
      );

      if (!git(context.repoDir, 'remote').split('\n').includes('origin')) {
        git(context.repoDir, 'remote', 'add', 'origin', `https://github.com/${owner}/${name}.git`);
        addedOrigin = true;
      }
    });

    after(async () => {
      await vscode.commands.executeCommand('workbench.action.closeQuickOpen');
      if (addedOrigin) git(context.repoDir, 'remote', 'remove', 'origin');
      for (const variable of envNames) {
        if (savedEnv[variable] === undefined) delete process.env[variable];
        else process.env[variable] = savedEnv[variable];
      }
      await fake.close();
    });

    it("lists the workspace repository's open issues in the picker and reads the picked one as the task", async () => {
      const api = context.api();
      const task = api.github.askIssueTask(context.repoDir);
      await until('the issue picker opens', () => api.github.activeIssuePicker() !== undefined);
      const picker = api.github.activeIssuePicker()!;
      await until('the open issues are listed', () => !picker.busy);

      assert.equal(picker.title, `agentvm: GitHub issue of ${owner}/${name}`);
      assert.deepEqual(
        picker.items.map((item) => item.label),
        [
          '#4 Median of an empty list throws',
          '#2 Document the statistics helpers',
          '$(link) Enter an issue URL or OWNER/REPO#N…',
        ],
        'open issues, most recently updated first, then the reference row; not the closed one',
      );
      assert.equal(picker.items[0].description, 'bug');

      // The workbench makes the first row active once it has the rows; accept that one.
      await until(
        'the workbench shows the issues',
        () => picker.activeItems[0]?.issue?.number === 4,
      );
      await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
      const { title, text } = await task;

      assert.equal(title, 'Median of an empty list throws');
      assert.match(
        text,
        /Task from GitHub issue \[octo\/demo#4\]\(https:\/\/github\.com\/octo\/demo\/issues\/4\)/,
      );
      assert.match(text, /Body of issue 4\./);
      assert.match(text, /@dave on 2025-05-02[\s\S]*Return None instead\./);
      assert.equal(api.github.activeIssuePicker(), undefined, 'the picker is gone');
    });

    it('shows one message and leaves the pushed branch when GitHub refuses the pull request', async () => {
      const agent = context.finishedAgent();
      assert.ok(agent, 'the end-to-end suite finished an agent');
      fake.failNext({
        method: 'POST',
        path: /\/pulls$/,
        status: 403,
        message: 'Resource not accessible by personal access token',
        headers: { 'x-accepted-oauth-scopes': 'repo', 'x-oauth-scopes': 'public_repo' },
      });

      const outcome = await vscode.commands.executeCommand('agentvm.openPullRequest', agent.id);

      assert.equal(outcome, undefined, 'the wrapped command reports the failure, not a value');
      assert.ok(fake.refOf(owner, name, `agentvm/${agent.id}`), 'the branch is on GitHub');
      assert.equal(fake.pullsOf(owner, name).length, 0);
    });

    it('opens a pull request for the finished agent: its commits on agentvm/<id> and a pull request into main', async () => {
      const agent = context.finishedAgent();
      assert.ok(agent);
      const result = context.api().services.store.get(agent.id)?.result;
      assert.ok(result && result.commits.length > 0);

      const outcome = await vscode.commands.executeCommand<AgentPullRequestOutcome>(
        'agentvm.openPullRequest',
        agent.id,
      );

      assert.ok(outcome, 'the command returned the outcome');
      assert.deepEqual(outcome.repo, { owner, repo: name });
      assert.equal(outcome.branch, `agentvm/${agent.id}`);
      assert.equal(outcome.headSha, result.headCommit, 'the commits were recreated exactly');
      assert.equal(fake.refOf(owner, name, `agentvm/${agent.id}`), result.headCommit);
      const pulls = fake.pullsOf(owner, name);
      assert.equal(pulls.length, 1);
      assert.equal(pulls[0].head, `agentvm/${agent.id}`);
      assert.equal(pulls[0].base, 'main');
      assert.equal(
        outcome.pullRequest?.url,
        `https://github.com/${owner}/${name}/pull/${pulls[0].number}`,
      );
      assert.ok(pulls[0].body.includes(agent.id), 'the body names the agent');
    });
  });
}
