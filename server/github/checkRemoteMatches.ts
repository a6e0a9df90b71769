import { AgentvmError } from '../../protocol/errors';
import type { RepoRef } from './parseIssueRef';
import { runGit } from './runGit';

/** The remote of a local clone that points at the expected repository. */
export interface MatchingRemote {
  name: string;
  /** The remote's fetch URL, with any credentials in it removed. */
  url: string;
}

/**
 * The repository a remote URL points at on `host`, or null for any other host. Understands
 * `https://host/OWNER/REPO(.git)`, `git@host:OWNER/REPO(.git)`, `ssh://git@host(:port)/OWNER/REPO`
 * and `git://host/OWNER/REPO`.
 */
export function parseRemoteUrl(url: string, host = 'github.com'): RepoRef | null {
  const wantedHost = host.toLowerCase();
  const scp = /^(?:[^@/]+@)?([^:/]+):(?!\/)([^/]+)\/([^/]+?)(?:\.git)?\/?$/.exec(url);
  if (scp && !/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    return scp[1].toLowerCase() === wantedHost ? { owner: scp[2], repo: scp[3] } : null;
  }

  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }

  if (!['https:', 'http:', 'ssh:', 'git:', 'git+ssh:'].includes(parsed.protocol)) return null;
  if (parsed.hostname.toLowerCase().replace(/^www\./, '') !== wantedHost) return null;

  const segments = parsed.pathname.split('/').filter((segment) => segment.length > 0);
  if (segments.length !== 2) return null;

  return { owner: segments[0], repo: segments[1].replace(/\.git$/, '') };
}

/**
 * Checks that the clone at `repoDir` has a remote pointing at `ref` (https or ssh form; GitHub
 * names compare case-insensitively) and returns it, `origin` first. Throws REMOTE_MISMATCH naming
 * the remotes it found otherwise, and NOT_A_GIT_REPOSITORY when `repoDir` is not a clone.
 */
export async function checkRemoteMatches(
  repoDir: string,
  ref: RepoRef,
  options: { host?: string } = {},
): Promise<MatchingRemote> {
  const listing = await runGit(repoDir, ['remote', '-v']).catch(() => {
    throw new AgentvmError('NOT_A_GIT_REPOSITORY', `${repoDir} is not inside a git repository`);
  });

  const remotes = listing
    .split('\n')
    .map((line) => /^(\S+)\s+(\S+)\s+\(fetch\)$/.exec(line))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ name: match[1], url: withoutCredentials(match[2]) }));
  remotes.sort((a, b) => Number(b.name === 'origin') - Number(a.name === 'origin'));

  const wanted = `${ref.owner}/${ref.repo}`.toLowerCase();
  const match = remotes.find((remote) => {
    const target = parseRemoteUrl(remote.url, options.host);
    return target !== null && `${target.owner}/${target.repo}`.toLowerCase() === wanted;
  });
  if (match) return match;

  const found =
    remotes.length === 0
      ? 'it has no remotes'
      : `its remotes are ${remotes.map((r) => `${r.name} ${r.url}`).join(', ')}`;
  throw new AgentvmError(
    'REMOTE_MISMATCH',
    `${repoDir} is not a clone of ${ref.owner}/${ref.repo}: ${found}.`,
  );
}

function withoutCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
}
