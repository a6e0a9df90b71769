import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { AgentvmError } from '../../../protocol/errors';
import { action, checkAgentIds, connect, out, printJson, type GlobalOptions } from '../context';
import { terminalSafe } from '../terminalSafe';
import { explainMissingResult } from './explainMissingResult';

const execFileAsync = promisify(execFile);

/** `diff` and `apply`: the agent's commits, as a patch or as a local branch. */
export function registerResultCommands(program: Command): void {
  program
    .command('diff')
    .description("print the agent's result as a patch (git format-patch)")
    .argument('<id>')
    .option('--json', 'print the result as JSON')
    .action(
      action(async (id: string, options: GlobalOptions) => {
        checkAgentIds('diff', [id]);
        const client = connect(options);
        const result = await explainMissingResult(client, id, () => client.result(id));
        if (options.json) return printJson(result);

        if (!result.patch) return out('(the agent made no commits)');

        // The agent wrote the patch. On a terminal it is for reading, so its control characters
        // are shown; redirected it is data for `git am` and must stay byte for byte.
        process.stdout.write(process.stdout.isTTY ? terminalSafe(result.patch) : result.patch);
      }),
    );

  program
    .command('apply')
    .description("create a local branch with the agent's commits")
    .argument('<id>')
    .option('--repo <dir>', 'local repository (must contain the base commit)', '.')
    .option('--branch <name>', 'branch to create (default agentvm/<id>)')
    .option('--json', 'print JSON')
    .action(
      action(async (id: string, options: GlobalOptions & { repo: string; branch?: string }) => {
        checkAgentIds('apply', [id]);
        // A --branch git would refuse is bad input, found before anything is fetched or written.
        if (options.branch !== undefined) await checkBranchName(options.branch);
        const repo = await gitRoot(options.repo);
        if (options.branch !== undefined) await checkBranchIsFree(repo, options.branch);

        const client = connect(options);
        const result = await explainMissingResult(client, id, () => client.result(id));
        const branch = options.branch ?? `agentvm/${id}`;
        if (options.branch === undefined) await checkBranchIsFree(repo, branch);

        const hasBase = await git(repo, ['cat-file', '-e', `${result.baseCommit}^{commit}`]).then(
          () => true,
          () => false,
        );
        if (!hasBase) {
          throw new AgentvmError(
            'VALIDATION_FAILED',
            `${repo} does not contain the agent's base commit ${result.baseCommit.slice(0, 12)}`,
            'Run apply in the repository the task was delegated from (or a clone of it).',
          );
        }

        if (result.commits.length === 0) {
          await git(repo, ['branch', branch, result.baseCommit]);
        } else {
          await fetchBundle(repo, await client.resultBundle(id), branch);
        }

        const head = (await git(repo, ['rev-parse', `refs/heads/${branch}`])).trim();
        if (head !== result.headCommit) {
          throw new AgentvmError(
            'INTERNAL',
            `branch ${branch} is at ${head}, expected ${result.headCommit}`,
          );
        }

        if (options.json) return printJson({ branch, headCommit: head, commits: result.commits });

        out(
          `branch ${branch} created at ${head.slice(0, 12)} with ${result.commits.length} commit(s):`,
        );
        for (const commit of result.commits) out(`  ${commit.sha.slice(0, 12)} ${commit.subject}`);
      }),
    );
}

async function fetchBundle(repo: string, bundle: Buffer, branch: string): Promise<void> {
  const file = path.join(os.tmpdir(), `agentvm-result-${process.pid}-${Date.now()}.bundle`);
  try {
    await fs.writeFile(file, bundle);
    const heads = (await git(repo, ['bundle', 'list-heads', file])).trim().split('\n');
    const ref = heads[0]?.split(' ')[1];
    if (!ref) throw new AgentvmError('INTERNAL', 'the result bundle has no ref');

    await git(repo, ['fetch', '-q', file, `${ref}:refs/heads/${branch}`]);
  } finally {
    await fs.rm(file, { force: true });
  }
}

async function gitRoot(dir: string): Promise<string> {
  try {
    return (await git(dir, ['rev-parse', '--show-toplevel'])).trim();
  } catch {
    throw new AgentvmError(
      'NOT_A_GIT_REPOSITORY',
      `${path.resolve(dir)} is not inside a git work tree`,
    );
  }
}

/**
 * Refuses a branch name git would not create (`git check-ref-format --branch`), and one starting
 * with '-', which git commands would read as an option.
 */
export async function checkBranchName(name: string): Promise<void> {
  const valid =
    !name.startsWith('-') &&
    (await execFileAsync('git', ['check-ref-format', '--branch', name], { cwd: os.tmpdir() }).then(
      // --branch expands @{-1} and friends; only a name that stays as it is was meant literally.
      ({ stdout }) => stdout.trim() === name,
      () => false,
    ));
  if (valid) return;

  throw new AgentvmError(
    'VALIDATION_FAILED',
    `--branch ${JSON.stringify(name)} is not a valid branch name`,
    "Pass a name git accepts as a branch (see `git check-ref-format --branch NAME`): no spaces, '..', '~', '^', ':', '?', '*', '[', '\\', no leading '-', no trailing '/' or '.lock'; e.g. --branch agentvm/fix-median.",
  );
}

/**
 * Refuses a branch that exists, and one git cannot create next to the existing ones: `a/b` when
 * `a` is a branch, or `a` when some `a/...` is.
 */
export async function checkBranchIsFree(repo: string, branch: string): Promise<void> {
  const existing = (await git(repo, ['for-each-ref', '--format=%(refname:short)', 'refs/heads/']))
    .split('\n')
    .filter((name) => name.length > 0);
  if (existing.includes(branch)) {
    throw new AgentvmError('APPLY_CONFLICT', `branch ${branch} already exists in ${repo}`);
  }

  const clash = existing.find(
    (name) => branch.startsWith(`${name}/`) || name.startsWith(`${branch}/`),
  );
  if (clash) {
    throw new AgentvmError(
      'APPLY_CONFLICT',
      `branch ${branch} cannot be created in ${repo}: branch ${clash} exists, and git cannot have both a branch and a folder of branches of one name`,
      `Pass --branch with another name (e.g. ${clash.replace(/\/+$/, '')}-2), or delete or rename ${clash} first.`,
    );
  }
}

/** Runs git in `cwd`; a failure is GIT_FAILED with git's own message, never a stack trace. */
async function git(cwd: string, args: string[]): Promise<string> {
  try {
    return (await execFileAsync('git', args, { cwd, maxBuffer: 64 * 1024 * 1024 })).stdout;
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    const reason = stderr.split('\n').join(' ') || (error as Error).message;
    throw new AgentvmError('GIT_FAILED', `git ${args[0]} failed in ${cwd}: ${reason}`);
  }
}
