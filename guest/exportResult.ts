import fs from 'node:fs';
import path from 'node:path';
import type { GuestEvent } from '../protocol/control';
import type { AgentUser } from './guestConfig';
import { git } from './runProcess';

/** Subject of the commit that saves work the agent left uncommitted. */
export const LEFTOVER_COMMIT_SUBJECT = 'agentvm: changes left uncommitted by the agent';

/** The ref the result bundle carries (bundles need at least one ref). */
export const RESULT_REF = 'refs/heads/agentvm-result';

type ResultEvent = Extract<GuestEvent, { kind: 'result' }>;

/**
 * Collects the agent's work: commits anything left in the work tree, then returns its commits
 * baseCommit..HEAD with a git bundle (holding {@link RESULT_REF}) and a format-patch text.
 * `scratchDir` must be writable by `user`; the bundle file is written there and removed.
 */
export async function exportResult(
  workspace: string,
  baseCommit: string,
  user: AgentUser | null,
  scratchDir: string,
): Promise<ResultEvent> {
  const status = await git(['status', '--porcelain', '--untracked-files=all'], workspace, user);
  if (status.length > 0) {
    await git(['add', '-A'], workspace, user);
    await git(['commit', '-q', '--no-verify', '-m', LEFTOVER_COMMIT_SUBJECT], workspace, user);
  }

  const headCommit = (await git(['rev-parse', 'HEAD'], workspace, user)).toString().trim();
  const range = `${baseCommit}..${headCommit}`;
  const log = await git(['log', '--reverse', '--format=%H%x00%s', range], workspace, user);
  const commits = log
    .toString('utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [sha, subject] = line.split('\0');
      return { sha, subject: subject ?? '' };
    });

  if (commits.length === 0) {
    return { kind: 'result', baseCommit, headCommit, commits, bundle: '', patch: '' };
  }

  await git(['update-ref', RESULT_REF, headCommit], workspace, user);
  const bundlePath = path.join(scratchDir, `result-${process.pid}-${Date.now()}.bundle`);
  try {
    await git(
      ['bundle', 'create', '-q', bundlePath, RESULT_REF, `^${baseCommit}`],
      workspace,
      user,
    );
    const bundle = fs.readFileSync(bundlePath).toString('base64');
    const patch = await git(['format-patch', '--stdout', range], workspace, user);

    return {
      kind: 'result',
      baseCommit,
      headCommit,
      commits,
      bundle,
      patch: patch.toString('utf8'),
    };
  } finally {
    fs.rmSync(bundlePath, { force: true });
  }
}
