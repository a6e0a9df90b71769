import type { RepoUpload } from '../../../client/repoBundle';

/** The confirmation text: what of the user's repository leaves the machine. */
export function describeUpload(repo: RepoUpload, profile: string): string {
  const uncommitted = repo.uncommitted ?? [];
  const changes =
    uncommitted.length === 0
      ? 'No uncommitted changes.'
      : repo.uncommittedIncluded
        ? `${uncommitted.length} uncommitted change(s) included as a snapshot commit.`
        : `${uncommitted.length} uncommitted change(s) NOT included (only committed work is sent).`;
  const sizeKiB = Math.ceil((repo.bundle.length * 3) / 4 / 1024);
  return [
    `Repository: ${repo.path ?? '(unknown)'}`,
    `Branch: ${repo.branch} at ${repo.baseCommit.slice(0, 12)} (history up to it, ${sizeKiB} KiB)`,
    changes,
    `Profile: ${profile}`,
  ].join('\n');
}
