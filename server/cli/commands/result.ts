import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { AgentvmError } from '../../../protocol/errors';
import { action, connect, out, printJson, type GlobalOptions } from '../context';

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
        const result = await connect(options).result(id);
        if (options.json) return printJson(result);

        process.stdout.write(result.patch || '(the agent made no commits)\n');
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
        const client = connect(options);
        const result = await client.result(id);
        const branch = options.branch ?? `agentvm/${id}`;
        const repo = await gitRoot(options.repo);

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
        const exists = await git(repo, [
          'rev-parse',
          '--verify',
          '-q',
          `refs/heads/${branch}`,
        ]).then(
          () => true,
          () => false,
        );
        if (exists)
          throw new AgentvmError('APPLY_CONFLICT', `branch ${branch} already exists in ${repo}`);

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

async function git(cwd: string, args: string[]): Promise<string> {
  return (await execFileAsync('git', args, { cwd, maxBuffer: 64 * 1024 * 1024 })).stdout;
}
