import { z } from 'zod';
import { fileStatSchema } from './control';

/**
 * The `result` of a successful `response` to each guest request op (see guestRequestSchema in
 * ./control). Failed requests answer `ok: false` with `error.code` set to the errno name
 * (ENOENT, EEXIST, EISDIR, ENOTDIR, ENOTEMPTY, EACCES, ...) or GUEST_ERROR.
 */

/** fs.stat: symlinks are followed; a dangling symlink reports type `symlink`. */
export const statResultSchema = fileStatSchema;

/** fs.readdir: one entry per name (no `.`/`..`); symlinks are reported as `symlink`. */
export const readdirResultSchema = z.array(
  z.object({ name: z.string(), type: z.enum(['file', 'directory', 'symlink', 'other']) }),
);
export type ReaddirResult = z.infer<typeof readdirResultSchema>;

/** fs.readFile: the whole file, base64. */
export const readFileResultSchema = z.object({ data: z.string() });

/** fs.writeFile, fs.delete, fs.rename, fs.mkdir answer an empty object. */
export const emptyResultSchema = z.object({});

/** exec: output is capped (see `truncated`); code is null when a signal ended the command. */
export const execResultSchema = z.object({
  code: z.number().int().nullable(),
  signal: z.string().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  /** True when stdout or stderr went over the cap and was cut. */
  truncated: z.boolean(),
  /** True when the command ran past timeoutMs and was killed. */
  timedOut: z.boolean(),
  /** `base64` when stdout and stderr are base64 (the request asked so); absent: UTF-8 text. */
  outputEncoding: z.literal('base64').optional(),
});
export type ExecResult = z.infer<typeof execResultSchema>;

/** exec.interrupt: whether an exec of that name was running (and got SIGINT). */
export const execInterruptResultSchema = z.object({ interrupted: z.boolean() });

/** An exec result's stdout or stderr as the bytes the command wrote (as far as they were kept). */
export function execOutputBytes(result: ExecResult, stream: 'stdout' | 'stderr'): Buffer {
  return Buffer.from(result[stream], result.outputEncoding === 'base64' ? 'base64' : 'utf8');
}

/**
 * changes: work tree against the task's baseCommit, untracked files included.
 * status: A added, M modified, D deleted, T type changed, U untracked.
 */
export const changesResultSchema = z.array(
  z.object({ path: z.string(), status: z.enum(['A', 'M', 'D', 'T', 'U']) }),
);
export type ChangesResult = z.infer<typeof changesResultSchema>;
