import fs from 'node:fs';
import path from 'node:path';
import type { FileStat, GuestRequest } from '../protocol/control';
import type { ChangesResult, ExecResult, ReaddirResult } from '../protocol/guestResults';
import type { AgentUser } from './guestConfig';
import { execSimpleCommand } from './execSimpleCommand';
import { git, killGroup, runProcess } from './runProcess';

/** Largest file fs.readFile returns, in bytes; the answer travels as one control-channel line. */
const MAX_READ_BYTES = 64 * 1024 * 1024;
/** Most bytes of stdout and of stderr an exec request returns. */
const MAX_EXEC_OUTPUT_BYTES = 1024 * 1024;

/** Process group leaders of the execs that run now and were given an `execId`, by that id. */
const namedExecs = new Map<string, number>();

/** What a request needs to know about the VM's task. */
export interface RequestContext {
  workspaceDir: string;
  user: AgentUser | null;
  /** The task's base commit; null before a task arrived. */
  baseCommit: string | null;
  /** Environment for `exec`, the same the agent command got. */
  env: Record<string, string>;
}

/** A failed request; `code` is an errno name (ENOENT, EEXIST, ...) or a registry code. */
export class GuestRequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Serves one file-API or exec request from the host (a reviewer browsing the paused agent's VM).
 * Relative paths are taken from the workspace. Node's fs errors pass through with their errno
 * code as `code`.
 */
export async function handleGuestRequest(
  request: GuestRequest,
  context: RequestContext,
): Promise<unknown> {
  const resolve = (p: string) => path.resolve(context.workspaceDir, p);

  switch (request.op) {
    case 'fs.stat':
      return statPath(resolve(request.path));
    case 'fs.readdir':
      return readDirectory(resolve(request.path));
    case 'fs.readFile': {
      const file = resolve(request.path);
      const size = fs.statSync(file).size;
      if (size > MAX_READ_BYTES) {
        throw new GuestRequestError(
          'EFBIG',
          `${file} is ${size} bytes; the limit is ${MAX_READ_BYTES}`,
        );
      }

      return { data: fs.readFileSync(file).toString('base64') };
    }
    case 'fs.writeFile':
      writeFile(resolve(request.path), request, context.user);
      return {};
    case 'fs.delete':
      deletePath(resolve(request.path), request.recursive);
      return {};
    case 'fs.rename': {
      const to = resolve(request.to);
      if (!request.overwrite && fs.existsSync(to)) {
        throw new GuestRequestError('EEXIST', `${to} exists already`);
      }

      fs.renameSync(resolve(request.from), to);
      return {};
    }
    case 'fs.mkdir': {
      const dir = resolve(request.path);
      fs.mkdirSync(dir);
      if (context.user) fs.chownSync(dir, context.user.uid, context.user.gid);
      return {};
    }
    case 'exec':
      return execCommand(request, context);
    case 'exec.interrupt': {
      const pid = namedExecs.get(request.execId);
      if (pid !== undefined) killGroup(pid, 'SIGINT');
      return { interrupted: pid !== undefined };
    }
    case 'changes':
      return listChanges(context);
  }
}

function typeOf(stats: fs.Stats | fs.Dirent): FileStat['type'] {
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isDirectory()) return 'directory';
  if (stats.isFile()) return 'file';
  return 'other';
}

function statPath(target: string): FileStat {
  let stats: fs.Stats;
  try {
    stats = fs.statSync(target);
  } catch (error) {
    // A dangling symlink still exists; report the link itself.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    stats = fs.lstatSync(target);
  }

  return { type: typeOf(stats), size: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs };
}

function readDirectory(dir: string): ReaddirResult {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .map((entry) => ({ name: entry.name, type: typeOf(entry) }));
}

function writeFile(
  file: string,
  request: Extract<GuestRequest, { op: 'fs.writeFile' }>,
  user: AgentUser | null,
): void {
  const exists = fs.existsSync(file);
  if (exists && !request.overwrite) throw new GuestRequestError('EEXIST', `${file} exists already`);
  if (!exists && !request.create) throw new GuestRequestError('ENOENT', `${file} does not exist`);
  if (exists && fs.statSync(file).isDirectory()) {
    throw new GuestRequestError('EISDIR', `${file} is a directory`);
  }

  fs.writeFileSync(file, Buffer.from(request.data, 'base64'));
  if (user) fs.chownSync(file, user.uid, user.gid);
}

function deletePath(target: string, recursive: boolean): void {
  const stats = fs.lstatSync(target);
  if (!stats.isDirectory()) {
    fs.unlinkSync(target);
    return;
  }

  if (recursive) fs.rmSync(target, { recursive: true });
  else fs.rmdirSync(target);
}

async function execCommand(
  request: Extract<GuestRequest, { op: 'exec' }>,
  context: RequestContext,
): Promise<ExecResult> {
  const { execId } = request;
  if (execId !== undefined && namedExecs.has(execId)) {
    throw new GuestRequestError('EEXIST', `an exec named ${execId} runs already`);
  }

  // The command as the shell's own process where it can be, so a signal that kills it is reported
  // as that signal (EXEC_KILLED on the host), not as the shell's exit code 128+n.
  const result = await runProcess('sh', ['-c', execSimpleCommand(request.command)], {
    cwd: path.resolve(context.workspaceDir, request.cwd ?? '.'),
    user: context.user,
    env: context.env,
    timeoutMs: request.timeoutMs,
    maxOutputBytes: MAX_EXEC_OUTPUT_BYTES,
    input: request.stdin === undefined ? undefined : Buffer.from(request.stdin, 'base64'),
    onSpawn: (pid) => {
      if (execId !== undefined) namedExecs.set(execId, pid);
    },
  }).finally(() => {
    if (execId !== undefined) namedExecs.delete(execId);
  });

  const encoding = request.outputEncoding;
  return {
    code: result.code,
    signal: result.signal,
    stdout: result.stdout.toString(encoding),
    stderr: result.stderr.toString(encoding),
    truncated: result.truncated,
    timedOut: result.timedOut,
    ...(encoding === 'base64' && { outputEncoding: encoding }),
  };
}

async function listChanges(context: RequestContext): Promise<ChangesResult> {
  if (!context.baseCommit)
    throw new GuestRequestError('INVALID_STATE', 'no task has been checked out yet');

  const { workspaceDir, user } = context;
  const diff = await git(
    ['diff', '--name-status', '--no-renames', '-z', context.baseCommit],
    workspaceDir,
    user,
  );
  const fields = diff.toString('utf8').split('\0');
  const changes: ChangesResult = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const status = fields[i].charAt(0);
    if (status === 'A' || status === 'M' || status === 'D' || status === 'T') {
      changes.push({ path: fields[i + 1], status });
    }
  }

  const untracked = await git(
    ['ls-files', '--others', '--exclude-standard', '-z'],
    workspaceDir,
    user,
  );
  for (const file of untracked.toString('utf8').split('\0')) {
    if (file !== '') changes.push({ path: file, status: 'U' });
  }

  return changes;
}
