import fs from 'node:fs/promises';
import path from 'node:path';
import type { WorkspaceEntry } from '../../protocol/control';
import { runGit } from '../github/runGit';

/**
 * Largest checkout (working tree plus .git, in bytes) sent to the guest as files. The task travels
 * as one control-channel line that the guest holds in memory a few times over while it writes the
 * files; a larger repository goes as its bundle and the guest clones it.
 */
export const MAX_GUEST_TREE_BYTES = 16 * 1024 * 1024;

/** A checkout made by the broker for a guest, or why the guest has to clone the bundle itself. */
export type GuestCheckout =
  | { kind: 'tree'; entries: WorkspaceEntry[]; files: number; bytes: number }
  | { kind: 'too-large'; bytes: number };

/**
 * Git with none of the broker user's configuration: their global or system settings (smudge
 * filters such as git-lfs, autocrlf, hook templates) must not shape what the agent gets.
 */
const isolatedGitEnv = (home: string): NodeJS.ProcessEnv => ({
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  HOME: home,
  XDG_CONFIG_HOME: home,
});

/**
 * Check `branch` out at `baseCommit` from `bundlePath` the way the guest would (clone, drop the
 * origin, which is a file the guest never sees, check out) and return the result as workspace
 * entries. Native git on the host takes tens of milliseconds where the same processes in an
 * emulated guest take a second or more. The scratch checkout under `scratchParent` is removed.
 */
export async function checkoutForGuest(
  bundlePath: string,
  baseCommit: string,
  branch: string,
  scratchParent: string,
): Promise<GuestCheckout> {
  const scratch = await fs.mkdtemp(path.join(scratchParent, 'checkout-'));
  const tree = path.join(scratch, 'tree');
  const options = { env: isolatedGitEnv(scratch), timeoutMs: 120_000 };
  try {
    await runGit(
      scratch,
      ['clone', '-q', '--no-checkout', '--template=', bundlePath, tree],
      options,
    );
    await runGit(tree, ['remote', 'remove', 'origin'], options);
    await runGit(tree, ['checkout', '-q', '-B', branch, baseCommit], options);
    return await readTree(tree);
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/** Every entry under `root`, parents first, symlinks as links; stops counting past the limit. */
async function readTree(root: string): Promise<GuestCheckout> {
  const entries: WorkspaceEntry[] = [];
  let bytes = 0;
  let files = 0;
  const pending = [''];
  while (pending.length > 0) {
    const dir = pending.pop() as string;
    for (const dirent of await fs.readdir(path.join(root, dir), { withFileTypes: true })) {
      const relative = dir === '' ? dirent.name : `${dir}/${dirent.name}`;
      const absolute = path.join(root, relative);
      if (dirent.isSymbolicLink()) {
        entries.push({ type: 'symlink', path: relative, target: await fs.readlink(absolute) });
      } else if (dirent.isDirectory()) {
        const { mode } = await fs.stat(absolute);
        entries.push({ type: 'dir', path: relative, mode: mode & 0o777 });
        pending.push(relative);
      } else if (dirent.isFile()) {
        const stat = await fs.stat(absolute);
        bytes += stat.size;
        files += 1;
        if (bytes > MAX_GUEST_TREE_BYTES) return { kind: 'too-large', bytes };

        const data = (await fs.readFile(absolute)).toString('base64');
        entries.push({ type: 'file', path: relative, mode: stat.mode & 0o777, data });
      }
    }
  }

  return { kind: 'tree', entries, files, bytes };
}
