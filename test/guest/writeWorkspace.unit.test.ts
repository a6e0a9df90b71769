import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { WorkspaceEntry } from '../../protocol/control';
import { checkoutForGuest } from '../../server/agents/checkoutForGuest';
import { writeWorkspace } from '../../guest/writeWorkspace';
import { bundleGuest, GuestHarness, makeRepo, makeTask } from './guestHarness';

const file = (relative: string, text: string, mode = 0o644): WorkspaceEntry => ({
  type: 'file',
  path: relative,
  mode,
  data: Buffer.from(text).toString('base64'),
});

describe('writeWorkspace (unit)', function () {
  this.timeout(60_000);
  let dir: string;
  let workspace: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-write-'));
    workspace = path.join(dir, 'workspace');
    fs.mkdirSync(workspace);
  });

  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes directories, files with their modes and symlinks', () => {
    writeWorkspace(
      [
        { type: 'dir', path: 'bin', mode: 0o755 },
        file('bin/run.sh', '#!/bin/sh\n', 0o755),
        file('readme', 'hi\n'),
        { type: 'symlink', path: 'run', target: 'bin/run.sh' },
      ],
      workspace,
      null,
    );
    assert.equal(fs.statSync(path.join(workspace, 'bin/run.sh')).mode & 0o777, 0o755);
    assert.equal(fs.readFileSync(path.join(workspace, 'readme'), 'utf8'), 'hi\n');
    assert.equal(fs.readlinkSync(path.join(workspace, 'run')), 'bin/run.sh');
  });

  it('refuses an entry outside the workspace, also through a symlink it wrote', () => {
    assert.throws(() => writeWorkspace([file('../escaped', 'x')], workspace, null), /outside/);
    assert.throws(
      () =>
        writeWorkspace(
          [{ type: 'symlink', path: 'out', target: dir }, file('out/escaped', 'x')],
          workspace,
          null,
        ),
      /outside/,
    );
    assert.equal(fs.existsSync(path.join(dir, 'escaped')), false);
  });
});

describe('GuestAgent with a workspace checked out by the broker (unit)', function () {
  this.timeout(60_000);
  let bundleDir: string;
  let harness: GuestHarness;

  before(async () => {
    bundleDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-guest-bundle-'));
    harness = await GuestHarness.start(await bundleGuest(bundleDir));
    await harness.waitFor((m) => m.type === 'ready');
  });

  after(async () => {
    await harness.stop();
    fs.rmSync(bundleDir, { recursive: true, force: true });
  });

  it('runs the agent in a clean checkout and exports what it committed', async () => {
    const repo = makeRepo(harness.dir);
    const bundlePath = path.join(harness.dir, 'repo.bundle');
    fs.writeFileSync(bundlePath, Buffer.from(repo.bundle, 'base64'));
    const checkout = await checkoutForGuest(bundlePath, repo.baseCommit, 'main', harness.dir);
    assert.equal(checkout.kind, 'tree');
    const entries = (checkout as Extract<typeof checkout, { kind: 'tree' }>).entries;

    const command = [
      'git status --porcelain > ../status.txt',
      'git rev-parse --abbrev-ref HEAD > ../branch.txt',
      'echo changed > hello.txt && git commit -qam "Change hello"',
    ].join(' && ');
    const task = makeTask(harness, repo, { command, repo: { kind: 'tree', entries } });
    harness.send({ type: 'task', task });
    const result = await harness.waitForEvent('result');

    assert.equal(fs.readFileSync(path.join(harness.dir, 'status.txt'), 'utf8'), '');
    assert.equal(fs.readFileSync(path.join(harness.dir, 'branch.txt'), 'utf8'), 'main\n');
    assert.equal(result.baseCommit, repo.baseCommit);
    assert.deepEqual(
      result.commits.map((commit) => commit.subject),
      ['Change hello'],
    );
    const log = execFileSync('git', ['log', '--format=%an', '-1'], {
      cwd: harness.workspace,
      encoding: 'utf8',
    });
    assert.equal(log, 'agentvm agent\n', "the image's fallback identity authored the commit");
  });
});
