import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exportResult } from '../../guest/exportResult';
import { guestEventSchema } from '../../protocol/control';

describe('exportResult (unit)', () => {
  let dir: string;
  let workspace: string;
  let scratch: string;
  let baseCommit: string;

  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: workspace, encoding: 'utf8' }).trim();

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-export-'));
    workspace = path.join(dir, 'workspace');
    scratch = path.join(dir, 'scratch');
    fs.mkdirSync(workspace);
    fs.mkdirSync(scratch);
    git('init', '-q', '-b', 'main');
    git('config', 'user.name', 'Test');
    git('config', 'user.email', 'test@example.invalid');
    fs.writeFileSync(path.join(workspace, 'README'), 'base\n');
    git('add', '-A');
    git('commit', '-q', '-m', 'base');
    baseCommit = git('rev-parse', 'HEAD');
    // Random bytes do not compress: the bundle is about as large as the file.
    fs.writeFileSync(path.join(workspace, 'data.bin'), crypto.randomBytes(48 * 1024));
    git('add', '-A');
    git('commit', '-q', '-m', 'add data');
  });

  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('sends a result that fits the control line limit as it is', async () => {
    const event = await exportResult(workspace, baseCommit, null, scratch, 1024 * 1024);

    assert.equal(event.kind, 'result');
    assert.deepEqual(event.kind === 'result' && event.commits.map((commit) => commit.subject), [
      'add data',
    ]);
    assert.ok(JSON.stringify({ type: 'event', seq: 1, event }).length <= 1024 * 1024);
  });

  it('turns a result over the limit into a fatal error naming its size, the limit and a way out', async () => {
    const event = guestEventSchema.parse(
      await exportResult(workspace, baseCommit, null, scratch, 32 * 1024),
    );

    assert.equal(event.kind, 'error');
    if (event.kind !== 'error') return;
    assert.equal(event.fatal, true);
    const size = Number(/\((\d+) characters\), over/.exec(event.message)?.[1]);
    assert.ok(size > 32 * 1024, event.message);
    assert.match(event.message, /over the limit of 32 KiB \(32768 characters\)/);
    assert.match(event.message, /commit less .* or split the work/);
    assert.deepEqual(fs.readdirSync(scratch), [], 'the bundle file is left behind');
  });

  it('checks the patch too when the bundle alone fits', async () => {
    // A bundle compresses this text; the patch carries it whole.
    fs.writeFileSync(path.join(workspace, 'notes.txt'), 'the same line again\n'.repeat(20_000));
    const limit = 128 * 1024;

    const event = await exportResult(workspace, baseCommit, null, scratch, limit);

    assert.equal(event.kind, 'error');
    assert.match(event.kind === 'error' ? event.message : '', /too large to send to the host/);
    assert.equal(git('log', '-1', '--format=%s'), 'agentvm: changes left uncommitted by the agent');
  });
});
