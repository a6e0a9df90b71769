import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentvmError } from '../../../protocol/errors';
import { checkRemoteMatches, parseRemoteUrl } from '../../../server/github/checkRemoteMatches';

describe('checkRemoteMatches (unit)', () => {
  let root: string;

  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'agentvm-remote-'));
  });

  after(() => rmSync(root, { recursive: true, force: true }));

  function repoWithRemotes(name: string, remotes: Record<string, string>): string {
    const dir = path.join(root, name);
    execFileSync('git', ['init', '--quiet', dir]);
    for (const [remote, url] of Object.entries(remotes))
      execFileSync('git', ['-C', dir, 'remote', 'add', remote, url]);
    return dir;
  }

  it('reads https, scp-like ssh, ssh:// and git:// remote URLs', () => {
    const expected = { owner: 'octo', repo: 'widgets' };
    for (const url of [
      'https://github.com/octo/widgets.git',
      'https://github.com/octo/widgets',
      'https://user@github.com/octo/widgets/',
      'git@github.com:octo/widgets.git',
      'github.com:octo/widgets',
      'ssh://git@github.com/octo/widgets.git',
      'ssh://git@github.com:22/octo/widgets',
      'git://github.com/octo/widgets.git',
    ]) {
      assert.deepEqual(parseRemoteUrl(url), expected, url);
    }
  });

  it('ignores other hosts and paths that are not OWNER/REPO', () => {
    for (const url of [
      'https://gitlab.com/octo/widgets.git',
      'git@gitlab.com:octo/widgets.git',
      'https://github.com/octo',
      '/srv/git/widgets.git',
      'file:///srv/octo/widgets',
    ]) {
      assert.equal(parseRemoteUrl(url), null, url);
    }
  });

  it('finds the matching remote, comparing names without case', async () => {
    const dir = repoWithRemotes('match', {
      fork: 'git@github.com:me/widgets.git',
      upstream: 'https://github.com/Octo/Widgets.git',
    });

    assert.deepEqual(await checkRemoteMatches(dir, { owner: 'octo', repo: 'widgets' }), {
      name: 'upstream',
      url: 'https://github.com/Octo/Widgets.git',
    });
  });

  it('refuses a clone of another repository and lists its remotes without credentials', async () => {
    const dir = repoWithRemotes('other', {
      origin: 'https://x-access-token:ghp_secret1234@github.com/me/other.git',
    });

    await assert.rejects(
      checkRemoteMatches(dir, { owner: 'octo', repo: 'widgets' }),
      (error: AgentvmError) => {
        assert.equal(error.code, 'REMOTE_MISMATCH');
        assert.match(
          error.message,
          /is not a clone of octo\/widgets: its remotes are origin https:\/\/github.com\/me\/other.git/,
        );
        assert.doesNotMatch(error.message, /ghp_secret1234/);
        return true;
      },
    );
  });

  it('refuses a clone without remotes and a directory that is not a clone', async () => {
    const bare = repoWithRemotes('none', {});
    await assert.rejects(
      checkRemoteMatches(bare, { owner: 'octo', repo: 'widgets' }),
      /has no remotes/,
    );

    const plain = mkdtempSync(path.join(os.tmpdir(), 'agentvm-plain-'));
    try {
      await assert.rejects(
        checkRemoteMatches(plain, { owner: 'octo', repo: 'widgets' }),
        (error: AgentvmError) => error.code === 'NOT_A_GIT_REPOSITORY',
      );
    } finally {
      rmSync(plain, { recursive: true, force: true });
    }
  });
});
