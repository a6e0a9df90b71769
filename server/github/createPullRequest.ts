import { AgentvmError } from '../../protocol/errors';
import type { GitHubClient } from './createGitHubClient';
import { githubError, requestStatus } from './githubError';
import type { RepoRef } from './parseIssueRef';
import { pullRequestBody, type PullRequestBodyInput } from './pullRequestBody';
import { pushCommits } from './pushCommits';
import { readLocalCommits } from './readLocalCommits';

export interface CreatePullRequestOptions {
  /** The GitHub repository the branch and pull request go to. */
  repo: RepoRef;
  /** A local repository holding `baseCommit..headCommit` (see importResultBundle). */
  repoDir: string;
  baseCommit: string;
  headCommit: string;
  /** Branch to create or move on GitHub, without `refs/heads/`. */
  branch: string;
  /** Branch the pull request targets; the repository's default branch when absent. */
  base?: string;
  /** Pull request title; the delegation title when absent. */
  title?: string;
  delegation: PullRequestBodyInput;
  draft?: boolean;
  /** Push the branch only; open no pull request. */
  branchOnly?: boolean;
  /** Move an existing branch even when that drops commits on it. */
  force?: boolean;
  onProgress?: (message: string) => void;
}

/** Where the result landed on GitHub. */
export interface PullRequestOutcome {
  branch: string;
  headSha: string;
  commitCount: number;
  blobsUploaded: number;
  /** Null with `branchOnly`. */
  pullRequest: { number: number; url: string; draft: boolean; existing: boolean } | null;
}

/**
 * Turns the agent's commits into a branch on GitHub (Git Data API: blobs, trees, commits, then
 * the ref) and opens a pull request for it, or updates the open one for that branch. A refusal
 * to open the pull request leaves the pushed branch in place and the error names it.
 */
export async function createPullRequest(
  octokit: GitHubClient,
  options: CreatePullRequestOptions,
): Promise<PullRequestOutcome> {
  const { repo, branch } = options;
  const progress = options.onProgress ?? (() => undefined);

  // Read what to push.
  const commits = await readLocalCommits(options.repoDir, options.baseCommit, options.headCommit);
  if (commits.length === 0) {
    throw new AgentvmError(
      'RESULT_NOT_READY',
      'The agent made no commits; there is nothing to push.',
    );
  }

  // Recreate the commits, then point the branch at the last one.
  progress(`pushing ${commits.length} commit(s) to ${repo.owner}/${repo.repo}`);
  const pushed = await pushCommits(octokit, repo, options.repoDir, commits, progress);
  await setBranch(octokit, repo, branch, pushed.headSha, options.force ?? false);
  progress(`branch ${branch} now at ${pushed.headSha.slice(0, 12)}`);

  const outcome: PullRequestOutcome = {
    branch,
    headSha: pushed.headSha,
    commitCount: pushed.commits.length,
    blobsUploaded: pushed.blobsUploaded,
    pullRequest: null,
  };
  if (options.branchOnly) return outcome;

  // Open the pull request (or refresh the open one).
  const base = options.base ?? (await defaultBranch(octokit, repo));
  const title = options.title ?? options.delegation.title;
  const body = pullRequestBody(options.delegation, repo);
  outcome.pullRequest = await openPullRequest(octokit, repo, {
    branch,
    base,
    title,
    body,
    draft: options.draft ?? false,
  });
  return outcome;
}

async function setBranch(
  octokit: GitHubClient,
  repo: RepoRef,
  branch: string,
  sha: string,
  force: boolean,
) {
  const coordinates = { owner: repo.owner, repo: repo.repo };
  const context = { repo, action: `updating branch ${branch}` };

  const current = await octokit.rest.git
    .getRef({ ...coordinates, ref: `heads/${branch}` })
    .then((response) => response.data.object.sha)
    .catch((error: unknown) => {
      if (requestStatus(error) === 404) return null;

      throw githubError(error, context);
    });

  if (current === null) {
    await octokit.rest.git
      .createRef({ ...coordinates, ref: `refs/heads/${branch}`, sha })
      .catch((error: unknown) => {
        throw githubError(error, { repo, action: `creating branch ${branch}` });
      });
    return;
  }

  if (current === sha) return;

  await octokit.rest.git
    .updateRef({ ...coordinates, ref: `heads/${branch}`, sha, force })
    .catch((error: unknown) => {
      if (requestStatus(error) === 422) {
        throw new AgentvmError(
          'APPLY_CONFLICT',
          `Branch ${branch} on ${repo.owner}/${repo.repo} already holds commits that are not in the agent's result; nothing was changed.`,
          'Pass --branch NAME to push to another branch, or --force to replace it.',
        );
      }

      throw githubError(error, context);
    });
}

async function defaultBranch(octokit: GitHubClient, repo: RepoRef): Promise<string> {
  const response = await octokit.rest.repos
    .get({ owner: repo.owner, repo: repo.repo })
    .catch((error: unknown) => {
      throw githubError(error, { repo, action: 'reading the repository' });
    });
  return response.data.default_branch;
}

interface PullRequestFields {
  branch: string;
  base: string;
  title: string;
  body: string;
  draft: boolean;
}

async function openPullRequest(
  octokit: GitHubClient,
  repo: RepoRef,
  fields: PullRequestFields,
): Promise<NonNullable<PullRequestOutcome['pullRequest']>> {
  const coordinates = { owner: repo.owner, repo: repo.repo };
  try {
    const created = await octokit.rest.pulls.create({
      ...coordinates,
      head: fields.branch,
      base: fields.base,
      title: fields.title,
      body: fields.body,
      draft: fields.draft,
    });
    return {
      number: created.data.number,
      url: created.data.html_url,
      draft: created.data.draft ?? fields.draft,
      existing: false,
    };
  } catch (error) {
    if (requestStatus(error) === 422) {
      const open = await octokit.rest.pulls
        .list({ ...coordinates, head: `${repo.owner}:${fields.branch}`, state: 'open' })
        .then((response) => response.data[0])
        .catch(() => undefined);
      if (open) {
        await octokit.rest.pulls
          .update({ ...coordinates, pull_number: open.number, body: fields.body })
          .catch((updateError: unknown) => {
            throw githubError(updateError, {
              repo,
              action: `updating pull request #${open.number}`,
            });
          });
        return {
          number: open.number,
          url: open.html_url,
          draft: open.draft ?? false,
          existing: true,
        };
      }
    }

    const cause = githubError(error, {
      repo,
      action: `opening a pull request from ${fields.branch} into ${fields.base}`,
    });
    throw new AgentvmError(
      cause.code,
      `${cause.message} The branch ${fields.branch} was pushed and is left in place; open the pull request from it by hand, or run again with --branch-only.`,
      cause.hint,
    );
  }
}
