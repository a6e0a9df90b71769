import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleRepository, SNAPSHOT_EMAIL, SNAPSHOT_NAME } from '../../client/repoBundle';
import { AgentvmError } from '../../protocol/errors';
import { git, makeTempRepo } from '../helpers/repos';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof AgentvmError, `expected an AgentvmError, got ${String(error)}`);
  return error.code;
}

describe('bundleRepository (unit)', () => {
  const cleanup: string[] = [];
  afterEach(() => {
    for (const dir of cleanup.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  function repo(files?: Record<string, string>): string {
    const dir = makeTempRepo(files);
    cleanup.push(dir);
    return dir;
  }

  it('bundles HEAD of the current branch so that a clone has the base commit', async () => {
    const dir = repo({ 'a.txt': 'a\n' });
    const upload = await bundleRepository(dir);
    assert.equal(upload.baseCommit, git(dir, ['rev-parse', 'HEAD']));
    assert.equal(upload.branch, 'main');

    const file = path.join(dir, '..', `${path.basename(dir)}.bundle`);
    cleanup.push(file);
    fs.writeFileSync(file, Buffer.from(upload.bundle, 'base64'));
    const clone = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-clone-'));
    cleanup.push(clone);
    execFileSync('git', ['clone', '-q', file, clone]);
    assert.equal(git(clone, ['cat-file', '-t', upload.baseCommit]), 'commit');
    assert.equal(
      git(dir, ['for-each-ref']).split('\n').length,
      1,
      'no ref is added to the repository',
    );
    assert.equal(git(clone, ['rev-parse', 'HEAD']), upload.baseCommit);
  });

  it('refuses a dirty work tree by default and names the changed files', async () => {
    const dir = repo({ 'a.txt': 'a\n' });
    fs.writeFileSync(path.join(dir, 'a.txt'), 'changed\n');
    fs.writeFileSync(path.join(dir, 'new.txt'), 'new\n');
    const error = await bundleRepository(dir).catch((caught: AgentvmError) => caught);
    assert.ok(error instanceof AgentvmError);
    assert.equal(error.code, 'DIRTY_WORKTREE');
    assert.match(error.message, /a\.txt/);
    assert.match(error.message, /new\.txt/);
  });

  it('sends HEAD only with allowDirty, and says what was left out', async () => {
    const dir = repo({ 'a.txt': 'a\n' });
    fs.writeFileSync(path.join(dir, 'a.txt'), 'changed\n');
    const upload = await bundleRepository(dir, { allowDirty: true });
    assert.equal(upload.baseCommit, git(dir, ['rev-parse', 'HEAD']));
    assert.deepEqual(upload.uncommitted, ['a.txt']);
    assert.equal(upload.uncommittedIncluded, false);
  });

  it('includes tracked and untracked changes as a snapshot commit without touching HEAD or the index', async () => {
    const dir = repo({ 'a.txt': 'a\n' });
    const head = git(dir, ['rev-parse', 'HEAD']);
    fs.writeFileSync(path.join(dir, 'a.txt'), 'changed\n');
    fs.writeFileSync(path.join(dir, 'new.txt'), 'new\n');
    const upload = await bundleRepository(dir, { includeUncommitted: true });
    assert.notEqual(upload.baseCommit, head);
    assert.equal(git(dir, ['rev-parse', `${upload.baseCommit}^`]), head);
    assert.equal(git(dir, ['show', `${upload.baseCommit}:new.txt`]), 'new');
    assert.equal(git(dir, ['rev-parse', 'HEAD']), head);
    assert.equal(git(dir, ['diff', '--cached', '--name-only']), '');
    assert.equal(upload.uncommittedIncluded, true);
  });

  describe('where git knows no identity for the user', () => {
    const saved: NodeJS.ProcessEnv = {};
    const unknownIdentity: NodeJS.ProcessEnv = {
      HOME: undefined,
      XDG_CONFIG_HOME: undefined,
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_CONFIG_NOSYSTEM: '1',
      // No guess from the host name either, whatever this machine is called.
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'user.useConfigOnly',
      GIT_CONFIG_VALUE_0: 'true',
      GIT_AUTHOR_NAME: undefined,
      GIT_AUTHOR_EMAIL: undefined,
      GIT_COMMITTER_NAME: undefined,
      GIT_COMMITTER_EMAIL: undefined,
      EMAIL: undefined,
    };

    beforeEach(() => {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-nohome-'));
      cleanup.push(home);
      for (const [name, value] of Object.entries({ ...unknownIdentity, HOME: home })) {
        saved[name] = process.env[name];
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    });

    afterEach(() => {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    });

    it('makes the snapshot commit as agentvm (regression: "Please tell me who you are" on a fresh machine)', async () => {
      const dir = repo({ 'a.txt': 'a\n' });
      fs.writeFileSync(path.join(dir, 'a.txt'), 'changed\n');

      const upload = await bundleRepository(dir, { includeUncommitted: true });

      assert.equal(
        git(dir, ['log', '-1', '--format=%an <%ae>|%cn <%ce>', upload.baseCommit]),
        `${SNAPSHOT_NAME} <${SNAPSHOT_EMAIL}>|${SNAPSHOT_NAME} <${SNAPSHOT_EMAIL}>`,
      );
      assert.equal(git(dir, ['show', `${upload.baseCommit}:a.txt`]), 'changed');
    });

    it("keeps the user's identity where the repository has one", async () => {
      const dir = repo({ 'a.txt': 'a\n' });
      git(dir, ['config', 'user.name', 'Ada Reviewer']);
      git(dir, ['config', 'user.email', 'ada@example.invalid']);
      fs.writeFileSync(path.join(dir, 'b.txt'), 'new\n');

      const upload = await bundleRepository(dir, { includeUncommitted: true });

      assert.equal(
        git(dir, ['log', '-1', '--format=%an <%ae>|%cn <%ce>', upload.baseCommit]),
        'Ada Reviewer <ada@example.invalid>|Ada Reviewer <ada@example.invalid>',
      );
    });
  });

  it('reports a directory that is not a git repository, and a missing one', async () => {
    const plain = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-plain-'));
    cleanup.push(plain);
    assert.equal(await codeOf(bundleRepository(plain)), 'NOT_A_GIT_REPOSITORY');
    assert.equal(
      await codeOf(bundleRepository(path.join(plain, 'missing'))),
      'NOT_A_GIT_REPOSITORY',
    );
  });

  it('reports a repository without commits as EMPTY_REPOSITORY', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-empty-'));
    cleanup.push(empty);
    git(empty, ['init', '-q']);
    assert.equal(await codeOf(bundleRepository(empty)), 'EMPTY_REPOSITORY');
  });
});
