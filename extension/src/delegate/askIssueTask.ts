import * as vscode from 'vscode';
import { createGitHubClient } from '../../../server/github/createGitHubClient';
import { fetchIssueTask } from '../../../server/github/fetchIssueTask';
import { parseIssueRef } from '../../../server/github/parseIssueRef';
import { resolveGitHubToken } from '../../../server/github/resolveGitHubToken';
import { UserCancelled } from '../commands/wrapCommand';

/**
 * The task from a GitHub issue the user names (`OWNER/REPO#N` or its web address): the issue's
 * title, body, labels and comments, read with the user's GitHub token (GITHUB_TOKEN, GH_TOKEN or
 * the gh CLI's login) on this machine.
 */
export async function askIssueTask(): Promise<{ text: string; title: string }> {
  const input = await vscode.window.showInputBox({
    title: 'agentvm: GitHub issue',
    placeHolder: 'OWNER/REPO#123 or https://github.com/OWNER/REPO/issues/123',
    ignoreFocusOut: true,
    validateInput: (value) => {
      try {
        parseIssueRef(value);
        return undefined;
      } catch (error) {
        return (error as Error).message;
      }
    },
  });
  if (!input) throw new UserCancelled();

  const ref = parseIssueRef(input);
  const octokit = createGitHubClient({ token: resolveGitHubToken().token });
  const task = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `agentvm: reading ${input.trim()}…` },
    () => fetchIssueTask(octokit, ref),
  );
  return { text: task.text, title: task.title };
}
