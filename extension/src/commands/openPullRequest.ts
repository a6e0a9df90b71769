import * as vscode from 'vscode';
import type { Agent } from '../../../protocol/api';
import { AgentvmError } from '../../../protocol/errors';
import { createGitHubClient } from '../../../server/github/createGitHubClient';
import { issueRefFromTaskText } from '../../../server/github/fetchIssueTask';
import {
  openAgentPullRequest,
  type AgentPullRequestOutcome,
} from '../../../server/github/openAgentPullRequest';
import type { RepoRef } from '../../../server/github/parseIssueRef';
import { githubEndpoints } from '../github/githubEndpoints';
import { githubRemoteOf } from '../github/githubRemoteOf';
import { githubToken } from '../github/githubToken';
import { pullRequestFailure } from '../github/pullRequestFailure';
import { readSettings } from '../settings';
import type { Services } from '../services';
import { agentIdOf } from './agentIdOf';
import { UserCancelled } from './wrapCommand';

/** Options for calling agentvm.openPullRequest from code. */
export interface OpenPullRequestOptions {
  draft?: boolean;
  /** Branch to merge into; the delegated branch when GitHub has it, else the default branch. */
  base?: string;
}

/**
 * agentvm.openPullRequest: pushes a finished agent's commits to GitHub as `agentvm/<id>` (Git
 * Data API, no push credentials) and opens a pull request, under a progress notification, then
 * offers to open it. The repository is the issue's, else the one the delegating clone's (or the
 * workspace's) remote points at, else the user names it.
 */
export function openPullRequest(services: Services) {
  return async (arg?: unknown, options: OpenPullRequestOptions = {}) => {
    const log = services.log.for('GitHub');
    const agentId = await agentIdOf(arg, services, ['done']);
    const client = await services.connection.getClient();
    const [agent, events, result] = await Promise.all([
      client.getAgent(agentId),
      client.events(agentId),
      client.result(agentId),
    ]);
    if (result.commits.length === 0) {
      throw new AgentvmError(
        'RESULT_NOT_READY',
        `Agent ${agentId} made no commits; there is nothing to push.`,
        'Nothing to open a pull request for.',
      );
    }

    const endpoints = githubEndpoints(readSettings().githubApiUrl, process.env);
    const repo = await targetRepository(agent, endpoints.webHost);
    const github = await githubToken(endpoints, log);
    const octokit = createGitHubClient({ token: github.token, baseUrl: endpoints.apiUrl });
    const bundle = await client.resultBundle(agentId);
    const branch = `agentvm/${agentId}`;
    const repoName = `${repo.owner}/${repo.repo}`;

    let outcome: AgentPullRequestOutcome;
    try {
      outcome = await vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Notification,
          title: `agentvm: pull request on ${repoName}`,
        },
        (progress) =>
          openAgentPullRequest(octokit, {
            agent,
            events,
            result,
            bundle,
            token: github.token,
            repo,
            branch,
            base: options.base,
            draft: options.draft,
            cloneBaseUrl: endpoints.cloneBaseUrl,
            onProgress: (message) => {
              log.debug(`${agentId}: ${message}`);
              progress.report({ message });
            },
          }),
      );
    } catch (error) {
      throw pullRequestFailure(error, {
        repo,
        branch,
        webHost: endpoints.webHost,
        tokenSource: github.source,
      });
    }

    const pull = outcome.pullRequest!;
    const verb = pull.existing ? 'Updated' : pull.draft ? 'Opened draft' : 'Opened';
    log.info(
      `${agentId}: ${verb.toLowerCase()} pull request #${pull.number} on ${repoName} (${outcome.commitCount} commit(s), branch ${outcome.branch})`,
    );
    void vscode.window
      .showInformationMessage(
        `${verb} pull request #${pull.number} on ${repoName} with ${outcome.commitCount} commit(s) from agent "${agent.title}".`,
        'Open pull request',
      )
      .then((choice) => {
        if (choice === 'Open pull request')
          void vscode.env.openExternal(vscode.Uri.parse(pull.url));
      });
    return outcome;
  };
}

/** The issue's repository, else the GitHub remote of the delegating clone or the workspace. */
async function targetRepository(agent: Agent, webHost: string): Promise<RepoRef> {
  const issue = issueRefFromTaskText(agent.text, webHost);
  if (issue) return { owner: issue.owner, repo: issue.repo };

  const candidates = [
    agent.repo.path,
    ...(vscode.workspace.workspaceFolders ?? [])
      .filter((folder) => folder.uri.scheme === 'file')
      .map((folder) => folder.uri.fsPath),
  ];
  for (const dir of candidates) {
    const repo = dir ? await githubRemoteOf(dir, webHost) : null;
    if (repo) return repo;
  }

  const typed = await vscode.window.showInputBox({
    title: 'agentvm: repository for the pull request',
    prompt: `Neither the task nor the repository's remotes name a repository on ${webHost}.`,
    placeHolder: 'OWNER/REPO',
    ignoreFocusOut: true,
    validateInput: (value) =>
      /^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/.test(value.trim()) ? undefined : 'Enter OWNER/REPO',
  });
  if (!typed) throw new UserCancelled();

  const [owner, name] = typed.trim().split('/');
  return { owner, repo: name.replace(/\.git$/, '') };
}
