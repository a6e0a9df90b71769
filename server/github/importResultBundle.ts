import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AgentvmError } from '../../protocol/errors';
import { GitCommandError, runGit } from './runGit';

/**
 * Unpacks an agent's result bundle (`baseCommit..headCommit`) into a new bare repository under
 * `workDir` and returns its path. The bundle is thin: it leaves out everything the base already
 * has, so the new repository borrows the objects of `baseRepoDir` (any clone holding the base
 * commit) through git's alternates file instead of copying them. Nothing in `baseRepoDir` changes.
 */
export async function importResultBundle(
  bundle: Buffer,
  baseRepoDir: string,
  headCommit: string,
  workDir: string,
): Promise<string> {
  const commonDir = await runGit(baseRepoDir, [
    'rev-parse',
    '--path-format=absolute',
    '--git-common-dir',
  ]).catch(() => {
    throw new AgentvmError('NOT_A_GIT_REPOSITORY', `${baseRepoDir} is not a git repository`);
  });

  const bareDir = path.join(workDir, 'result.git');
  const bundlePath = path.join(workDir, 'result.bundle');
  await mkdir(workDir, { recursive: true });
  await runGit(workDir, ['init', '--quiet', '--bare', bareDir]);
  await writeFile(
    path.join(bareDir, 'objects', 'info', 'alternates'),
    path.join(commonDir, 'objects') + '\n',
  );
  await writeFile(bundlePath, bundle);

  try {
    await runGit(bareDir, ['bundle', 'verify', bundlePath]);
  } catch (error) {
    const stderr = error instanceof GitCommandError ? error.stderr : String(error);
    throw new AgentvmError(
      'RESULT_NOT_READY',
      `The result bundle does not apply to ${baseRepoDir}: ${stderr.trim().split('\n').join(' ')}`,
      'Use a clone that contains the commit the agent started from (fetch or pull it first).',
    );
  }

  await runGit(bareDir, ['bundle', 'unbundle', bundlePath]);
  await runGit(bareDir, ['cat-file', '-e', `${headCommit}^{commit}`]).catch(() => {
    throw new AgentvmError(
      'RESULT_NOT_READY',
      `The result bundle does not contain commit ${headCommit}.`,
    );
  });

  // A ref keeps the unpacked commits reachable should anything run gc in this repository.
  await runGit(bareDir, ['update-ref', 'refs/heads/result', headCommit]);
  return bareDir;
}
