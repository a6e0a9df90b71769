import { AgentvmError } from '../../protocol/errors';
import type { GitHubClient } from './createGitHubClient';
import { githubError, requestStatus } from './githubError';
import type { RepoRef } from './parseIssueRef';
import { readBlob, type LocalCommit } from './readLocalCommits';

/** The outcome of recreating local commits on GitHub. */
export interface PushedCommits {
  /** The recreated head commit (the last one), or the base when there was nothing to push. */
  headSha: string;
  /** Local commit id → the id GitHub gave the recreated commit, in push order. */
  commits: Array<{ local: string; remote: string }>;
  blobsUploaded: number;
}

type TreeEntry = {
  path: string;
  mode: '100644' | '100755' | '120000' | '160000';
  type: 'blob' | 'commit';
  sha: string | null;
};

/**
 * Recreates `commits` (parents first, as {@link readLocalCommits} returns them) on GitHub through
 * the Git Data API, so no git push credentials are needed: each changed file becomes a blob, each
 * commit a tree on top of its first parent's tree plus a commit with the original author,
 * committer, message and parents. Parents outside the list must already be on GitHub. No ref is
 * touched. A tree that comes out different from the local one stops the push.
 */
export async function pushCommits(
  octokit: GitHubClient,
  repo: RepoRef,
  repoDir: string,
  commits: LocalCommit[],
  onProgress: (message: string) => void = () => undefined,
): Promise<PushedCommits> {
  const coordinates = { owner: repo.owner, repo: repo.repo };
  const remoteOf = new Map<string, string>();
  const treeOf = new Map<string, string>();
  const blobsOnGitHub = new Set<string>();
  const pushed: PushedCommits['commits'] = [];
  let blobsUploaded = 0;

  const remoteTree = async (commitSha: string): Promise<string> => {
    const known = treeOf.get(commitSha);
    if (known) return known;

    const response = await octokit.rest.git
      .getCommit({ ...coordinates, commit_sha: commitSha })
      .catch(async (error: unknown) => {
        if (requestStatus(error) === 404 || requestStatus(error) === 422) {
          // Tell a missing repository apart from a missing commit: the fixes differ.
          await octokit.rest.repos.get(coordinates).catch((repoError: unknown) => {
            throw githubError(repoError, { repo, action: 'reading the repository' });
          });
          throw new AgentvmError(
            'GITHUB_NOT_FOUND',
            `Commit ${commitSha.slice(0, 12)}, which the agent's work builds on, is not on GitHub ${repo.owner}/${repo.repo}; push it there first (git push), then try again.`,
          );
        }

        throw githubError(error, { repo, action: `looking up commit ${commitSha.slice(0, 12)}` });
      });
    treeOf.set(commitSha, response.data.tree.sha);
    return response.data.tree.sha;
  };

  for (const [index, commit] of commits.entries()) {
    const parents = commit.parents.map((parent) => remoteOf.get(parent) ?? parent);
    const baseTree = parents.length > 0 ? await remoteTree(parents[0]) : undefined;
    const subject = commit.message.split('\n')[0];
    onProgress(`commit ${index + 1}/${commits.length}: ${subject}`);

    // Blobs first: a tree may only name objects GitHub already has.
    const entries: TreeEntry[] = [];
    for (const change of commit.changes) {
      const mode = change.mode as TreeEntry['mode'];
      if (change.sha === null || change.type === 'commit') {
        entries.push({ path: change.path, mode, type: change.type, sha: change.sha });
        continue;
      }

      if (change.sha !== change.previousSha && !blobsOnGitHub.has(change.sha)) {
        const content = (await readBlob(repoDir, change.sha)).toString('base64');
        const blob = await octokit.rest.git
          .createBlob({ ...coordinates, content, encoding: 'base64' })
          .catch((error: unknown) => {
            throw githubError(error, { repo, action: `uploading ${change.path}` });
          });
        if (blob.data.sha !== change.sha) {
          throw new AgentvmError(
            'GITHUB_ERROR',
            `GitHub stored ${change.path} as ${blob.data.sha}, expected ${change.sha}.`,
          );
        }

        blobsUploaded += 1;
      }

      blobsOnGitHub.add(change.sha);
      entries.push({ path: change.path, mode, type: 'blob', sha: change.sha });
    }

    const treeSha =
      entries.length === 0 && baseTree
        ? baseTree
        : await octokit.rest.git
            .createTree({
              ...coordinates,
              ...(baseTree ? { base_tree: baseTree } : {}),
              tree: entries,
            })
            .then((response) => response.data.sha)
            .catch((error: unknown) => {
              throw githubError(error, { repo, action: `writing the tree of "${subject}"` });
            });
    if (treeSha !== commit.tree) {
      throw new AgentvmError(
        'GITHUB_ERROR',
        `GitHub's tree for "${subject}" (${treeSha}) differs from the local one (${commit.tree}); no branch was changed.`,
      );
    }

    const created = await octokit.rest.git
      .createCommit({
        ...coordinates,
        message: commit.message,
        tree: treeSha,
        parents,
        author: commit.author,
        committer: commit.committer,
      })
      .catch((error: unknown) => {
        throw githubError(error, { repo, action: `writing commit "${subject}"` });
      });

    remoteOf.set(commit.sha, created.data.sha);
    treeOf.set(created.data.sha, treeSha);
    pushed.push({ local: commit.sha, remote: created.data.sha });
  }

  const last = pushed.at(-1);
  return { headSha: last ? last.remote : '', commits: pushed, blobsUploaded };
}
