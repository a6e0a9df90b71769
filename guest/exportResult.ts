import fs from 'node:fs';
import path from 'node:path';
import { MAX_GUEST_LINE_CHARS, type GuestEvent } from '../protocol/control';
import type { AgentUser } from './guestConfig';
import { git } from './runProcess';

/** Subject of the commit that saves work the agent left uncommitted. */
export const LEFTOVER_COMMIT_SUBJECT = 'agentvm: changes left uncommitted by the agent';

/** The ref the result bundle carries (bundles need at least one ref). */
export const RESULT_REF = 'refs/heads/agentvm-result';

type ResultEvent = Extract<GuestEvent, { kind: 'result' }>;
type ErrorEvent = Extract<GuestEvent, { kind: 'error' }>;

/** Room for the control line's envelope around an event (`{"type":"event","seq":N,"event":…}`). */
const ENVELOPE_CHARS = 64;

/**
 * Collects the agent's work: commits anything left in the work tree, then returns its commits
 * baseCommit..HEAD with a git bundle (holding {@link RESULT_REF}) and a format-patch text.
 * `scratchDir` must be writable by `user`; the bundle file is written there and removed.
 *
 * The result travels as one control line, and the host drops a line longer than `maxLineChars`
 * (never finishing the agent). A result that would not fit becomes a fatal `error` event instead,
 * giving its size, the limit and what to do, so the agent ends failed with that reason.
 */
export async function exportResult(
  workspace: string,
  baseCommit: string,
  user: AgentUser | null,
  scratchDir: string,
  maxLineChars: number = MAX_GUEST_LINE_CHARS,
): Promise<ResultEvent | ErrorEvent> {
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
    // Checked before reading: a bundle far over the limit need not be loaded and encoded.
    const bundleChars = 4 * Math.ceil(fs.statSync(bundlePath).size / 3);
    if (bundleChars + ENVELOPE_CHARS > maxLineChars) {
      return tooLarge(bundleChars + ENVELOPE_CHARS, maxLineChars, commits.length);
    }

    const bundle = fs.readFileSync(bundlePath).toString('base64');
    const patch = await git(['format-patch', '--stdout', range], workspace, user);
    const result: ResultEvent = {
      kind: 'result',
      baseCommit,
      headCommit,
      commits,
      bundle,
      patch: patch.toString('utf8'),
    };
    const chars = JSON.stringify(result).length + ENVELOPE_CHARS;
    return chars > maxLineChars ? tooLarge(chars, maxLineChars, commits.length) : result;
  } finally {
    fs.rmSync(bundlePath, { force: true });
  }
}

function tooLarge(chars: number, limit: number, commits: number): ErrorEvent {
  const size = (count: number) =>
    count >= 1024 * 1024
      ? `${(count / (1024 * 1024)).toFixed(1)} MiB`
      : `${Math.ceil(count / 1024)} KiB`;
  return {
    kind: 'error',
    fatal: true,
    message:
      `the agent's result (${commits} commit(s) as a git bundle and a patch) is too large to ` +
      `send to the host: ${size(chars)} (${chars} characters), over the limit of ${size(limit)} ` +
      `(${limit} characters); commit less (no build output, dependencies or large data files) ` +
      `or split the work into smaller tasks`,
  };
}
