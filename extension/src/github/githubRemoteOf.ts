import { parseRemoteUrl } from '../../../server/github/checkRemoteMatches';
import type { RepoRef } from '../../../server/github/parseIssueRef';
import { runGit } from '../../../server/github/runGit';

/**
 * The GitHub repository a local clone's remotes point at (`origin` first, then the others in
 * git's order), or null when `repoDir` is not a clone or has no remote on `host`.
 */
export async function githubRemoteOf(repoDir: string, host: string): Promise<RepoRef | null> {
  const listing = await runGit(repoDir, ['remote', '-v']).catch(() => '');
  const remotes = listing
    .split('\n')
    .map((line) => /^(\S+)\s+(\S+)\s+\(fetch\)$/.exec(line))
    .filter((match): match is RegExpExecArray => match !== null)
    .sort((a, b) => Number(b[1] === 'origin') - Number(a[1] === 'origin'));
  for (const [, , url] of remotes) {
    const repo = parseRemoteUrl(url, host);
    if (repo) return repo;
  }

  return null;
}
