import * as vscode from 'vscode';
import { AgentvmError } from '../../../protocol/errors';
import { checkRemoteMatches } from '../../../server/github/checkRemoteMatches';
import { createGitHubClient, type GitHubClient } from '../../../server/github/createGitHubClient';
import { fetchIssueTask } from '../../../server/github/fetchIssueTask';
import { formatIssueRef, parseIssueRef, type IssueRef } from '../../../server/github/parseIssueRef';
import { UserCancelled } from '../commands/wrapCommand';
import { githubEndpoints, type GitHubEndpoints } from '../github/githubEndpoints';
import { githubRemoteOf } from '../github/githubRemoteOf';
import { githubToken } from '../github/githubToken';
import { listOpenIssues } from '../github/listOpenIssues';
import { pickIssue } from '../github/pickIssue';
import type { ComponentLog } from '../log';
import { readSettings } from '../settings';

/**
 * The task from a GitHub issue: picked from the open issues of the repository `repoPath`'s remote
 * points at, or named by URL or `OWNER/REPO#N`. The issue must belong to that repository, since
 * it is the one sent to the agent. Reads the issue's title, body, labels and comments with the
 * VS Code GitHub session (or GITHUB_TOKEN, GH_TOKEN, the gh login).
 */
export async function askIssueTask(
  repoPath: string,
  log: ComponentLog,
): Promise<{ text: string; title: string }> {
  const endpoints = githubEndpoints(readSettings().githubApiUrl, process.env);
  let client: Promise<GitHubClient> | undefined;
  const octokit = () => (client ??= connect(endpoints, log));

  const repo = await githubRemoteOf(repoPath, endpoints.webHost);
  const choice = repo
    ? await pickIssue(repo, async () => listOpenIssues(await octokit(), repo), log)
    : { typed: '' };
  const ref = 'issue' in choice ? choice.issue : await askIssueRef(choice.typed, endpoints);

  await checkRemoteMatches(repoPath, ref, { host: endpoints.webHost }).catch((error: unknown) => {
    if (!(error instanceof AgentvmError)) throw error;

    throw new AgentvmError(
      error.code,
      error.message,
      `Open a clone of ${ref.owner}/${ref.repo} in VS Code and delegate the issue from there: the agent works on the repository of the open folder.`,
    );
  });

  const github = await octokit();
  const task = await vscode.window.withProgress(
    {
      location: vscode.ProgressLocation.Notification,
      title: `agentvm: reading ${formatIssueRef(ref)}…`,
    },
    () => fetchIssueTask(github, ref),
  );
  log.info(`task from ${formatIssueRef(ref)}: ${task.title}`);
  return { text: task.text, title: task.title };
}

async function connect(endpoints: GitHubEndpoints, log: ComponentLog): Promise<GitHubClient> {
  const { token } = await githubToken(endpoints, log);
  return createGitHubClient({ token, baseUrl: endpoints.apiUrl });
}

async function askIssueRef(typed: string, endpoints: GitHubEndpoints): Promise<IssueRef> {
  const host = endpoints.webHost;
  const validate = (value: string) => {
    try {
      parseIssueRef(value, { host });
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  };
  const input = await vscode.window.showInputBox({
    title: 'agentvm: GitHub issue',
    placeHolder: `OWNER/REPO#123 or https://${host}/OWNER/REPO/issues/123`,
    value: typed,
    ignoreFocusOut: true,
    validateInput: validate,
  });
  if (!input) throw new UserCancelled();

  return parseIssueRef(input, { host });
}
