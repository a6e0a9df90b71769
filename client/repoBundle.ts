import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { CreateAgentRequest } from '../protocol/api';
import { AgentvmError } from '../protocol/errors';

const execFileAsync = promisify(execFile);

/** Largest repository bundle the CLI and extension will upload, in bytes. */
export const MAX_BUNDLE_BYTES = 256 * 1024 * 1024;

/** The snapshot commit's author and committer where git has no identity for the user. */
export const SNAPSHOT_NAME = 'agentvm';
export const SNAPSHOT_EMAIL = 'agentvm@localhost.invalid';

export interface BundleOptions {
  /** Send HEAD even though the work tree has uncommitted changes (they are not included). */
  allowDirty?: boolean;
  /** Include uncommitted changes (tracked and untracked, minus ignored) as a snapshot commit. */
  includeUncommitted?: boolean;
}

export type RepoUpload = CreateAgentRequest['repo'] & {
  uncommitted: string[];
  uncommittedIncluded: boolean;
};

/**
 * Packs the repository at `dir` for delegation: a git bundle of the current branch with its
 * history. A dirty work tree is refused unless the caller says what to do with the changes.
 */
export async function bundleRepository(
  dir: string,
  options: BundleOptions = {},
): Promise<RepoUpload> {
  const root = await repositoryRoot(dir);
  const head = await git(root, ['rev-parse', '--verify', '-q', 'HEAD^{commit}']).catch(() => '');
  if (!head) {
    throw new AgentvmError('EMPTY_REPOSITORY', `${root} has no commits yet`);
  }

  const branch =
    (await git(root, ['symbolic-ref', '--short', '-q', 'HEAD']).catch(() => '')) || 'agentvm-base';
  const uncommitted = await uncommittedPaths(root);
  if (uncommitted.length > 0 && !options.allowDirty && !options.includeUncommitted) {
    const shown = uncommitted.slice(0, 5).join(', ') + (uncommitted.length > 5 ? ', ...' : '');
    throw new AgentvmError(
      'DIRTY_WORKTREE',
      `${root} has ${uncommitted.length} uncommitted change(s) (${shown}); only committed work is sent by default`,
    );
  }

  const includeChanges = uncommitted.length > 0 && options.includeUncommitted === true;
  const baseCommit = includeChanges ? await snapshotCommit(root, head) : head;
  const bundle = await createBundle(root, baseCommit, branch);

  return {
    bundle: bundle.toString('base64'),
    baseCommit,
    branch,
    path: root,
    uncommitted,
    uncommittedIncluded: includeChanges,
  };
}

async function repositoryRoot(dir: string): Promise<string> {
  try {
    await fs.access(dir);
  } catch {
    throw new AgentvmError('NOT_A_GIT_REPOSITORY', `${dir} does not exist`);
  }

  try {
    return await git(dir, ['rev-parse', '--show-toplevel']);
  } catch {
    throw new AgentvmError(
      'NOT_A_GIT_REPOSITORY',
      `${path.resolve(dir)} is not inside a git work tree`,
    );
  }
}

async function uncommittedPaths(root: string): Promise<string[]> {
  const status = await git(
    root,
    ['status', '--porcelain=v1', '-z', '--untracked-files=all'],
    false,
  );
  const paths: string[] = [];
  const fields = status.split('\0').filter(Boolean);
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i];
    paths.push(field.slice(3));
    // A rename's entry is followed by its source path as a separate field.
    if (field[0] === 'R' || field[0] === 'C') i++;
  }

  return paths;
}

/** A commit of the whole work tree on top of HEAD, made with a private index (HEAD is untouched). */
async function snapshotCommit(root: string, head: string): Promise<string> {
  const indexFile = path.join(os.tmpdir(), `agentvm-index-${randomBytes(6).toString('hex')}`);
  const env = { ...process.env, GIT_INDEX_FILE: indexFile };
  try {
    await git(root, ['read-tree', head], true, env);
    await git(root, ['add', '-A'], true, env);
    const tree = await git(root, ['write-tree'], true, env);
    const message = 'agentvm: uncommitted changes at delegation';
    const identity = await snapshotIdentity(root);
    return await git(root, ['commit-tree', tree, '-p', head, '-m', message], true, {
      ...process.env,
      ...identity,
    });
  } finally {
    await fs.rm(indexFile, { force: true });
  }
}

/**
 * Who the snapshot commit is by: the user, as git knows them (the changes are theirs), or agentvm
 * where git knows no one. Delegating from a machine where git was never given a name must not fail
 * at this last step with git's "Please tell me who you are".
 */
async function snapshotIdentity(root: string): Promise<NodeJS.ProcessEnv> {
  const knows = (variable: string) =>
    git(root, ['var', variable]).then(
      () => true,
      () => false,
    );
  const identity: NodeJS.ProcessEnv = {};
  if (!(await knows('GIT_AUTHOR_IDENT'))) {
    identity.GIT_AUTHOR_NAME = SNAPSHOT_NAME;
    identity.GIT_AUTHOR_EMAIL = SNAPSHOT_EMAIL;
  }
  if (!(await knows('GIT_COMMITTER_IDENT'))) {
    identity.GIT_COMMITTER_NAME = SNAPSHOT_NAME;
    identity.GIT_COMMITTER_EMAIL = SNAPSHOT_EMAIL;
  }
  return identity;
}

async function createBundle(root: string, commit: string, branch: string): Promise<Buffer> {
  // The bundle must carry refs/heads/<branch> so a clone of it has the branch, but the user's
  // own branch may point elsewhere (a snapshot commit). A scratch bare repository that borrows
  // the user's objects (alternates) holds the ref instead: nothing in the user's repository moves.
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'agentvm-bundle-'));
  const file = path.join(scratch, 'repo.bundle');
  try {
    const objects = path.resolve(root, await git(root, ['rev-parse', '--git-path', 'objects']));
    await git(scratch, ['init', '-q', '--bare', 'repo.git']);
    const bare = path.join(scratch, 'repo.git');
    await fs.writeFile(path.join(bare, 'objects', 'info', 'alternates'), objects + '\n');
    await git(bare, ['update-ref', `refs/heads/${branch}`, commit]);
    await git(bare, ['symbolic-ref', 'HEAD', `refs/heads/${branch}`]);
    await git(bare, ['bundle', 'create', '-q', file, 'HEAD', `refs/heads/${branch}`]);
    const { size } = await fs.stat(file);
    if (size > MAX_BUNDLE_BYTES) {
      throw new AgentvmError(
        'PAYLOAD_TOO_LARGE',
        `the repository bundle is ${Math.round(size / 1048576)} MiB; the limit is ${MAX_BUNDLE_BYTES / 1048576} MiB`,
      );
    }

    return await fs.readFile(file);
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

async function git(
  cwd: string,
  args: string[],
  trim = true,
  env?: NodeJS.ProcessEnv,
): Promise<string> {
  const { stdout } = await execFileAsync('git', args, { cwd, env, maxBuffer: 64 * 1024 * 1024 });
  return trim ? stdout.trim() : stdout;
}
