import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { AgentvmError } from '../../../protocol/errors';

const execFileAsync = promisify(execFile);

/** The local branch an agent's result is applied to. */
export function resultBranchName(agentId: string): string {
  return `agentvm/${agentId}`;
}

/**
 * Fetches an agent's result bundle into the repository at `repoDir` as the new branch
 * `agentvm/<agentId>` pointing at `headCommit`. The work tree, index and current branch are
 * untouched; an existing branch of that name is an APPLY_CONFLICT, never overwritten.
 */
export async function applyResultBundle(
  repoDir: string,
  agentId: string,
  bundle: Buffer,
  headCommit: string,
): Promise<string> {
  const branch = resultBranchName(agentId);
  const root = await git(repoDir, ['rev-parse', '--show-toplevel']).catch(() => {
    throw new AgentvmError('NOT_A_GIT_REPOSITORY', `${repoDir} is not inside a git work tree`);
  });
  const exists = await git(root, ['rev-parse', '--verify', '-q', `refs/heads/${branch}`]).catch(
    () => '',
  );
  if (exists) {
    throw new AgentvmError(
      'APPLY_CONFLICT',
      `branch ${branch} already exists in ${root}`,
      `Delete it with \`git branch -D ${branch}\` or rename it, then apply again.`,
    );
  }

  const file = path.join(os.tmpdir(), `agentvm-result-${randomBytes(6).toString('hex')}.bundle`);
  const importPrefix = `refs/agentvm-import/${randomBytes(6).toString('hex')}`;
  try {
    await fs.writeFile(file, bundle);
    await git(root, ['bundle', 'verify', '-q', file]).catch((error: Error) => {
      throw new AgentvmError(
        'GUEST_ERROR',
        `the result bundle does not apply to ${root}: ${error.message}`,
      );
    });
    await git(root, ['fetch', '-q', '--no-tags', file, `+refs/*:${importPrefix}/*`]);
    await git(root, ['cat-file', '-e', `${headCommit}^{commit}`]).catch(() => {
      throw new AgentvmError('GUEST_ERROR', `the result bundle does not contain ${headCommit}`);
    });
    await git(root, ['branch', branch, headCommit]);
    return branch;
  } finally {
    const refs = await git(root, ['for-each-ref', '--format=%(refname)', importPrefix]).catch(
      () => '',
    );
    for (const ref of refs.split('\n').filter(Boolean)) {
      await git(root, ['update-ref', '-d', ref]).catch(() => undefined);
    }
    await fs.rm(file, { force: true });
  }
}

async function git(cwd: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('git', args, { cwd, maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}
