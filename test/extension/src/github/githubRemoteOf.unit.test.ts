import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { githubRemoteOf } from '../../../../extension/src/github/githubRemoteOf';

describe('githubRemoteOf (unit)', () => {
  let root: string;
  const git = (dir: string, ...args: string[]) => execFileSync('git', ['-C', dir, ...args]);

  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'agentvm-remote-of-'));
    git(root, 'init', '--quiet');
  });

  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('reads origin before the other remotes, in https or ssh form', async () => {
    git(root, 'remote', 'add', 'fork', 'https://github.com/someone/widgets.git');
    git(root, 'remote', 'add', 'origin', 'git@github.com:octo/widgets.git');

    assert.deepEqual(await githubRemoteOf(root, 'github.com'), { owner: 'octo', repo: 'widgets' });
  });

  it('skips remotes on other hosts and answers null when none is on the host', async () => {
    git(root, 'remote', 'add', 'origin', 'https://git.example.test/octo/widgets.git');
    assert.equal(await githubRemoteOf(root, 'github.com'), null);

    git(root, 'remote', 'add', 'upstream', 'https://github.com/octo/widgets');
    assert.deepEqual(await githubRemoteOf(root, 'github.com'), { owner: 'octo', repo: 'widgets' });
    assert.deepEqual(await githubRemoteOf(root, 'git.example.test'), {
      owner: 'octo',
      repo: 'widgets',
    });
  });

  it('answers null for a folder that is not a git repository', async () => {
    const plain = mkdtempSync(path.join(os.tmpdir(), 'agentvm-remote-of-plain-'));
    try {
      assert.equal(await githubRemoteOf(plain, 'github.com'), null);
    } finally {
      rmSync(plain, { recursive: true, force: true });
    }
  });
});
