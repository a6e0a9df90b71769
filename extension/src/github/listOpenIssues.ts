import type { GitHubClient } from '../../../server/github/createGitHubClient';
import { githubError } from '../../../server/github/githubError';
import type { RepoRef } from '../../../server/github/parseIssueRef';

/** An open issue as the picker shows it. */
export interface OpenIssue {
  number: number;
  title: string;
  labels: string[];
  author: string | null;
  commentCount: number;
  /** Last update, in milliseconds since the epoch. */
  updatedAtMs: number;
}

/**
 * The repository's open issues, most recently updated first, at most `limit` of them. GitHub's
 * issues endpoint also returns pull requests; those are left out.
 */
export async function listOpenIssues(
  octokit: GitHubClient,
  repo: RepoRef,
  limit = 100,
): Promise<OpenIssue[]> {
  const response = await octokit.rest.issues
    .listForRepo({
      owner: repo.owner,
      repo: repo.repo,
      state: 'open',
      sort: 'updated',
      direction: 'desc',
      per_page: Math.min(100, limit),
    })
    .catch((error: unknown) => {
      throw githubError(error, { repo, action: 'listing open issues' });
    });

  return response.data
    .filter((issue) => !issue.pull_request)
    .slice(0, limit)
    .map((issue) => ({
      number: issue.number,
      title: issue.title,
      labels: issue.labels
        .map((label) => (typeof label === 'string' ? label : (label.name ?? '')))
        .filter((name) => name.length > 0),
      author: issue.user?.login ?? null,
      commentCount: issue.comments,
      updatedAtMs: Date.parse(issue.updated_at),
    }));
}
