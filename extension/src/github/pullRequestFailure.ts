import { AgentvmError } from '../../../protocol/errors';
import type { RepoRef } from '../../../server/github/parseIssueRef';
import type { ExtensionGitHubToken } from './githubToken';

/** What the "Open pull request" command was doing, for the hint of a failure. */
export interface PullRequestFailureContext {
  repo: RepoRef;
  /** The branch the result was pushed to. */
  branch: string;
  webHost: string;
  tokenSource: ExtensionGitHubToken['source'];
}

// createPullRequest's closing sentence when GitHub refused the pull request after the push; it
// speaks CLI flags, so the extension says the same in its own terms.
const BRANCH_LEFT =
  /\s*The branch (\S+) was pushed and is left in place; open the pull request from it by hand, or run again with --branch-only\./;

/**
 * Turns a failure of openAgentPullRequest into the one message the extension shows: the cause
 * GitHub gave (missing scope, unknown repository, bad token) and a hint in VS Code's terms that
 * names where the token came from. When the branch was pushed before GitHub refused the pull
 * request, the message says the branch is on GitHub and the hint says how to finish by hand.
 * Errors that are not agentvm's pass through unchanged.
 */
export function pullRequestFailure(error: unknown, context: PullRequestFailureContext): unknown {
  if (!(error instanceof AgentvmError)) return error;

  const repoName = `${context.repo.owner}/${context.repo.repo}`;
  const left = BRANCH_LEFT.exec(error.message);
  const hint = hintFor(error, context, repoName);
  if (!left) return new AgentvmError(error.code, error.message, hint);

  const branchUrl = `https://${context.webHost}/${repoName}/tree/${left[1]}`;
  return new AgentvmError(
    error.code,
    `${error.message.replace(BRANCH_LEFT, '')} The branch ${left[1]} was pushed and is left on GitHub (${branchUrl}).`,
    `${hint} Or open the pull request from that branch on GitHub.`,
  );
}

function hintFor(
  error: AgentvmError,
  context: PullRequestFailureContext,
  repoName: string,
): string {
  switch (error.code) {
    case 'GITHUB_UNAUTHORIZED':
      return tokenHint(context.tokenSource, 'is invalid or expired');
    case 'GITHUB_FORBIDDEN':
      if (/rate limit/i.test(error.message)) return error.hint;

      return `${tokenHint(context.tokenSource, 'lacks write access')} It needs the \`repo\` scope (fine-grained tokens: Contents and Pull requests, read and write) on ${repoName}.`;
    case 'GITHUB_NOT_FOUND':
      return `Check that ${repoName} exists on ${context.webHost} and that the GitHub account in use can read it (${tokenOrigin(context.tokenSource)}).`;
    case 'APPLY_CONFLICT':
      return `Delete or rename the branch ${context.branch} on GitHub, then run "Open pull request" again.`;
    default:
      return error.hint;
  }
}

function tokenHint(source: ExtensionGitHubToken['source'], problem: string): string {
  switch (source) {
    case 'vscode':
      return `The VS Code GitHub session ${problem}: sign out of GitHub from the Accounts menu, sign in again and allow the repo scope.`;
    case 'gh':
      return `The gh CLI's token ${problem}: run \`gh auth login\` again (or \`gh auth refresh -s repo\`).`;
    default:
      return `The token in ${source} ${problem}: set a fresh one and restart VS Code, or unset it and sign in to GitHub from the Accounts menu.`;
  }
}

function tokenOrigin(source: ExtensionGitHubToken['source']): string {
  return source === 'vscode' ? 'the VS Code GitHub session' : `the token from ${source}`;
}
