import { AgentvmError } from '../../protocol/errors';
import { runGit, runGitBuffer } from './runGit';

/** A person line of a commit, with the date as ISO 8601 in the commit's own UTC offset. */
export interface GitIdentity {
  name: string;
  email: string;
  date: string;
}

/** One path that differs between a commit and its first parent. */
export interface TreeChange {
  path: string;
  /** 100644, 100755, 120000 (symlink) or 160000 (submodule). */
  mode: string;
  type: 'blob' | 'commit';
  /** The new object id; null when the path was deleted. */
  sha: string | null;
  /** The object id the path had in the first parent (null when added); lets unchanged blobs be reused. */
  previousSha: string | null;
}

/** A commit to recreate on GitHub, read from the local object store. */
export interface LocalCommit {
  sha: string;
  tree: string;
  parents: string[];
  author: GitIdentity;
  committer: GitIdentity;
  message: string;
  /** Changes against the first parent (all files for a root commit). */
  changes: TreeChange[];
}

/**
 * The commits in `baseCommit..headCommit`, parents before children, each with its changes
 * against its first parent. Needs a repository that has both ends (and everything between).
 */
export async function readLocalCommits(
  repoDir: string,
  baseCommit: string,
  headCommit: string,
): Promise<LocalCommit[]> {
  for (const commit of [baseCommit, headCommit]) {
    await runGit(repoDir, ['cat-file', '-e', `${commit}^{commit}`]).catch(() => {
      throw new AgentvmError(
        'RESULT_NOT_READY',
        `commit ${commit} is not in the repository at ${repoDir}`,
      );
    });
  }

  const listing = await runGit(repoDir, [
    'rev-list',
    '--reverse',
    '--topo-order',
    `${baseCommit}..${headCommit}`,
  ]);
  const shas = listing.split('\n').filter((line) => line.length > 0);

  const commits: LocalCommit[] = [];
  for (const sha of shas) {
    const raw = (await runGitBuffer(repoDir, ['cat-file', 'commit', sha])).toString('utf8');
    const parsed = parseCommit(sha, raw);
    commits.push({
      ...parsed,
      changes: await readChanges(repoDir, parsed.parents[0] ?? null, sha),
    });
  }

  return commits;
}

/** A blob's bytes. */
export function readBlob(repoDir: string, sha: string): Promise<Buffer> {
  return runGitBuffer(repoDir, ['cat-file', 'blob', sha]);
}

function parseCommit(sha: string, raw: string): Omit<LocalCommit, 'changes'> {
  const split = raw.indexOf('\n\n');
  const headerText = split < 0 ? raw : raw.slice(0, split);
  const message = split < 0 ? '' : raw.slice(split + 2);

  const parents: string[] = [];
  let tree = '';
  let author: GitIdentity | null = null;
  let committer: GitIdentity | null = null;
  for (const line of headerText.split('\n')) {
    const space = line.indexOf(' ');
    const key = line.slice(0, space);
    const value = line.slice(space + 1);
    if (key === 'tree') tree = value;
    else if (key === 'parent') parents.push(value);
    else if (key === 'author') author = parseIdentity(value);
    else if (key === 'committer') committer = parseIdentity(value);
  }

  if (!tree || !author || !committer) {
    throw new AgentvmError('INTERNAL', `commit ${sha} could not be parsed`);
  }

  return { sha, tree, parents, author, committer, message };
}

function parseIdentity(value: string): GitIdentity {
  const match = /^(.*?) ?<([^>]*)> (\d+) ([+-])(\d\d)(\d\d)$/.exec(value);
  if (!match) throw new AgentvmError('INTERNAL', `unreadable author line "${value}"`);

  const [, name, email, seconds, sign, hours, minutes] = match;
  const offsetMinutes = (sign === '-' ? -1 : 1) * (Number(hours) * 60 + Number(minutes));
  const local = new Date((Number(seconds) + offsetMinutes * 60) * 1000).toISOString().slice(0, 19);

  return { name, email, date: `${local}${sign}${hours}:${minutes}` };
}

async function readChanges(
  repoDir: string,
  parent: string | null,
  sha: string,
): Promise<TreeChange[]> {
  const args = parent
    ? ['diff-tree', '-r', '-z', '--no-renames', '--no-commit-id', parent, sha]
    : ['diff-tree', '-r', '-z', '--no-renames', '--no-commit-id', '--root', sha];
  const output = await runGit(repoDir, args);

  // -z output alternates ":oldmode newmode oldsha newsha status" and the path.
  const fields = output.split('\0');
  const changes: TreeChange[] = [];
  for (let index = 0; index + 1 < fields.length; index += 2) {
    const [oldMode, newMode, oldSha, newSha, status] = fields[index].replace(/^:/, '').split(' ');
    const path = fields[index + 1];
    const previousSha = /^0+$/.test(oldSha) ? null : oldSha;

    if (status === 'D') {
      changes.push({ path, mode: oldMode, type: typeOf(oldMode), sha: null, previousSha });
      continue;
    }

    changes.push({ path, mode: newMode, type: typeOf(newMode), sha: newSha, previousSha });
  }

  return changes;
}

function typeOf(mode: string): 'blob' | 'commit' {
  return mode === '160000' ? 'commit' : 'blob';
}
