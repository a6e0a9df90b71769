import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

/** A user's clone at the base commit and a bundle of the agent's commits on top of it. */
export interface AgentWork {
  /** The repository the agent worked in (base plus the agent's commits). */
  workDir: string;
  /** A clone that has only the base commit, like the user's after delegating. */
  userDir: string;
  baseCommit: string;
  headCommit: string;
  /** `git bundle` of baseCommit..headCommit, as the broker holds it. */
  bundle: Buffer;
  /** The agent's commits as `git rev-list --reverse --topo-order` lists them. */
  commits: Array<{ sha: string; parents: string[]; subject: string }>;
}

const isolatedEnv = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };

function git(dir: string, args: string[], dates?: { author: string; committer: string }): string {
  const env = dates
    ? { ...isolatedEnv, GIT_AUTHOR_DATE: dates.author, GIT_COMMITTER_DATE: dates.committer }
    : isolatedEnv;
  return execFileSync('git', ['-C', dir, ...args], { env, encoding: 'utf8' }).trim();
}

function write(root: string, file: string, content: string | Buffer): void {
  mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
  writeFileSync(path.join(root, file), content);
}

const agent = ['-c', 'user.name=Agent Smith', '-c', 'user.email=agent@example.test'];

/**
 * Builds, under `root`: a base commit with plain, executable, symlinked and nested files; then
 * the agent's work on top: edits, an addition, deletions (one emptying a directory), a mode-only
 * change, symlink changes, a binary file, a side branch merged back, and an empty commit. Dates
 * carry non-UTC offsets so a recreated commit only matches when they survive the round trip.
 */
export function buildAgentWork(root: string): AgentWork {
  const workDir = path.join(root, 'work');
  const userDir = path.join(root, 'user');
  mkdirSync(workDir, { recursive: true });
  git(workDir, ['init', '--quiet', '-b', 'main']);

  write(workDir, 'README.md', '# widgets\n');
  write(workDir, 'src/a.txt', 'alpha\n');
  write(workDir, 'scripts/run.sh', '#!/bin/sh\necho run\n');
  chmodSync(path.join(workDir, 'scripts/run.sh'), 0o755);
  write(workDir, 'old.txt', 'to be removed\n');
  write(workDir, 'dir/nested/deep.txt', 'deep\n');
  write(workDir, 'dir/keep.txt', 'keep\n');
  symlinkSync('README.md', path.join(workDir, 'link'));
  git(workDir, ['add', '-A']);
  git(
    workDir,
    ['-c', 'user.name=Dev', '-c', 'user.email=dev@example.test', 'commit', '--quiet', '-m', 'base'],
    {
      author: '2024-02-01T09:00:00+0000',
      committer: '2024-02-01T09:00:00+0000',
    },
  );
  const baseCommit = git(workDir, ['rev-parse', 'HEAD']);
  execFileSync('git', ['clone', '--quiet', workDir, userDir], { env: isolatedEnv });

  write(workDir, 'src/a.txt', 'alpha\nbeta\n');
  write(workDir, 'new/file.txt', 'new file\n');
  unlinkSync(path.join(workDir, 'old.txt'));
  git(workDir, ['add', '-A']);
  git(
    workDir,
    [
      '-c',
      'user.name=agentvm',
      '-c',
      'user.email=agentvm@localhost',
      'commit',
      '--quiet',
      '--author=Agent Smith <agent@example.test>',
      '-m',
      'Edit a, add new file, drop old\n\nBody line.',
    ],
    {
      author: '2024-03-01T10:00:00+0200',
      committer: '2024-03-01T11:30:00-0500',
    },
  );

  git(workDir, ['checkout', '--quiet', '-b', 'side']);
  write(workDir, 'side.txt', 'from the side branch\n');
  git(workDir, ['add', '-A']);
  git(workDir, [...agent, 'commit', '--quiet', '-m', 'Side work'], {
    author: '2024-03-01T12:00:00+0530',
    committer: '2024-03-01T12:00:00+0530',
  });
  git(workDir, ['checkout', '--quiet', 'main']);

  chmodSync(path.join(workDir, 'src/a.txt'), 0o755);
  unlinkSync(path.join(workDir, 'link'));
  symlinkSync('src/a.txt', path.join(workDir, 'link'));
  symlinkSync('scripts', path.join(workDir, 'link2'));
  rmSync(path.join(workDir, 'dir/nested'), { recursive: true });
  write(workDir, 'bin.dat', Buffer.concat([Buffer.from([0, 1, 2, 255]), randomBytes(2048)]));
  git(workDir, ['add', '-A']);
  git(workDir, [...agent, 'commit', '--quiet', '-m', 'Make a executable, move links, binary'], {
    author: '2024-03-02T08:00:00+0100',
    committer: '2024-03-02T08:00:00+0100',
  });

  git(workDir, [...agent, 'merge', '--quiet', '--no-ff', '-m', "Merge branch 'side'", 'side'], {
    author: '2024-03-02T09:00:00+0100',
    committer: '2024-03-02T09:00:00+0100',
  });
  git(workDir, [...agent, 'commit', '--quiet', '--allow-empty', '-m', 'Empty checkpoint'], {
    author: '2024-03-02T10:00:00+0100',
    committer: '2024-03-02T10:00:00+0100',
  });
  const headCommit = git(workDir, ['rev-parse', 'HEAD']);

  const bundlePath = path.join(root, 'result.bundle');
  git(workDir, ['bundle', 'create', '--quiet', bundlePath, 'main', `^${baseCommit}`]);

  const commits = git(workDir, [
    'rev-list',
    '--reverse',
    '--topo-order',
    '--format=%P%x09%s',
    `${baseCommit}..${headCommit}`,
  ])
    .split('\n')
    .reduce<AgentWork['commits']>((list, line) => {
      if (line.startsWith('commit ')) list.push({ sha: line.slice(7), parents: [], subject: '' });
      else {
        const [parents, subject] = line.split('\t');
        list[list.length - 1].parents = parents.split(' ');
        list[list.length - 1].subject = subject;
      }
      return list;
    }, []);

  return { workDir, userDir, baseCommit, headCommit, bundle: readFileSync(bundlePath), commits };
}

/** Runs git with no user or system configuration, for test setup. */
export function plainGit(dir: string, args: string[]): string {
  return git(dir, args);
}
