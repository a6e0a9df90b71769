import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { WorkspaceEntry } from '../../../protocol/control';
import { checkoutForGuest, MAX_GUEST_TREE_BYTES } from '../../../server/agents/checkoutForGuest';
import { gitEnv } from '../../guest/guestHarness';

describe('checkoutForGuest (unit)', function () {
  this.timeout(60_000);
  let dir: string;
  let repo: string;
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: repo, env: gitEnv(), encoding: 'utf8' }).trim();
  const bundle = (branch: string) => {
    const file = path.join(dir, `${branch}.bundle`);
    git('bundle', 'create', '-q', file, branch);
    return file;
  };
  const fileData = (entries: WorkspaceEntry[], relative: string) => {
    const entry = entries.find((e) => e.path === relative);
    assert.ok(entry?.type === 'file', `${relative} is a file entry`);
    return Buffer.from(entry.data, 'base64');
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-checkout-'));
    repo = path.join(dir, 'repo');
    fs.mkdirSync(repo);
    git('init', '-q', '-b', 'main');
  });

  afterEach(() => {
    delete process.env.GIT_CONFIG_GLOBAL;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('checks the branch out at the base commit with modes, links and a .git without origin', async () => {
    fs.mkdirSync(path.join(repo, 'bin'));
    fs.writeFileSync(path.join(repo, 'bin', 'run.sh'), '#!/bin/sh\necho run\n', { mode: 0o755 });
    fs.writeFileSync(path.join(repo, 'notes.txt'), 'first\n');
    fs.symlinkSync('bin/run.sh', path.join(repo, 'run'));
    git('add', '-A');
    git('commit', '-q', '-m', 'first');
    const base = git('rev-parse', 'HEAD');
    fs.writeFileSync(path.join(repo, 'notes.txt'), 'second\n');
    git('commit', '-q', '-am', 'second');

    const checkout = await checkoutForGuest(bundle('main'), base, 'work', dir);
    assert.equal(checkout.kind, 'tree');
    const { entries } = checkout as Extract<typeof checkout, { kind: 'tree' }>;

    assert.equal(fileData(entries, 'notes.txt').toString(), 'first\n');
    const script = entries.find((e) => e.path === 'bin/run.sh');
    assert.ok(script?.type === 'file' && script.mode === 0o755);
    assert.deepEqual(
      entries.find((e) => e.path === 'run'),
      { type: 'symlink', path: 'run', target: 'bin/run.sh' },
    );
    assert.equal(fileData(entries, '.git/HEAD').toString(), 'ref: refs/heads/work\n');
    assert.doesNotMatch(fileData(entries, '.git/config').toString(), /remote|bundle/);
    // Parents come before their children, so the guest can write the list in order.
    const seen = new Set<string>();
    for (const entry of entries) {
      const parent = path.posix.dirname(entry.path);
      assert.ok(parent === '.' || seen.has(parent), `${parent} is listed before ${entry.path}`);
      seen.add(entry.path);
    }
    assert.deepEqual(
      fs.readdirSync(dir).filter((name) => name.startsWith('checkout-')),
      [],
      'the scratch checkout is removed',
    );
  });

  it("does not let the broker user's git configuration change what the agent gets", async () => {
    fs.writeFileSync(path.join(repo, '.gitattributes'), '*.txt filter=shout\n');
    fs.writeFileSync(path.join(repo, 'quiet.txt'), 'quiet\n');
    git('add', '-A');
    git('commit', '-q', '-m', 'first');
    const globalConfig = path.join(dir, 'global-gitconfig');
    fs.writeFileSync(
      globalConfig,
      '[filter "shout"]\n\tsmudge = tr a-z A-Z\n[core]\n\tautocrlf = true\n',
    );
    process.env.GIT_CONFIG_GLOBAL = globalConfig;

    const checkout = await checkoutForGuest(bundle('main'), git('rev-parse', 'HEAD'), 'main', dir);
    assert.equal(checkout.kind, 'tree');
    const { entries } = checkout as Extract<typeof checkout, { kind: 'tree' }>;
    assert.equal(fileData(entries, 'quiet.txt').toString(), 'quiet\n');
  });

  it('says a checkout over the limit is too large instead of listing it', async () => {
    fs.writeFileSync(path.join(repo, 'big.bin'), randomBytes(MAX_GUEST_TREE_BYTES + 1));
    git('add', '-A');
    git('commit', '-q', '-m', 'big');

    const checkout = await checkoutForGuest(bundle('main'), git('rev-parse', 'HEAD'), 'main', dir);
    assert.equal(checkout.kind, 'too-large');
  });

  it('rejects when the bundle does not hold the base commit', async () => {
    fs.writeFileSync(path.join(repo, 'a.txt'), 'a\n');
    git('add', '-A');
    git('commit', '-q', '-m', 'a');

    await assert.rejects(
      checkoutForGuest(bundle('main'), 'f'.repeat(40), 'main', dir),
      /reference is not a tree/,
    );
  });
});
