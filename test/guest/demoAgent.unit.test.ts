import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { profileSchema } from '../../protocol/api';
import { bundleGuest, bundleOf, gitEnv, GuestHarness, makeTask } from './guestHarness';

const repoRoot = path.resolve(__dirname, '../..');
const profileDir = path.join(repoRoot, 'profiles', 'demo');

describe('demo profile and demo agent (unit)', function () {
  this.timeout(120_000);
  let bundleDir: string;
  let harness: GuestHarness;

  before(async () => {
    bundleDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-demo-bundle-'));
  });

  after(() => fs.rmSync(bundleDir, { recursive: true, force: true }));

  afterEach(async () => harness?.stop());

  it('is a valid profile whose files exist next to it', () => {
    const profile = profileSchema.parse(
      JSON.parse(fs.readFileSync(path.join(profileDir, 'profile.json'), 'utf8')),
    );
    assert.equal(profile.name, 'demo');
    assert.equal(profile.memoryMiB, 512);
    for (const hostPath of Object.values(profile.files)) {
      assert.ok(fs.existsSync(path.join(profileDir, hostPath)), `${hostPath} exists`);
    }
  });

  it('makes the same single-commit demo repository every time, with exactly one failing test', () => {
    const a = path.join(bundleDir, 'repo-a');
    const b = path.join(bundleDir, 'repo-b');
    const make = (dest: string) =>
      execFileSync('sh', [path.join(repoRoot, 'scripts', 'make-demo-repo.sh'), dest])
        .toString()
        .trim();
    assert.equal(make(a), make(b));

    const tests = runTests(a);
    assert.equal(tests.fail, 1);
    assert.ok(tests.pass >= 4);
  });

  it('fixes the bug, asks for review, adds a regression test on "yes" and keeps the reviewer\'s edit', async () => {
    const bundle = await bundleGuest(bundleDir);
    harness = await GuestHarness.start(bundle);
    await harness.waitFor((m) => m.type === 'ready');

    const repo = path.join(harness.dir, 'origin');
    const baseCommit = execFileSync('sh', [
      path.join(repoRoot, 'scripts', 'make-demo-repo.sh'),
      repo,
    ])
      .toString()
      .trim();
    const profile = profileSchema.parse(
      JSON.parse(fs.readFileSync(path.join(profileDir, 'profile.json'), 'utf8')),
    );
    // The profile's guest paths live under /opt in a VM; on the host they go to the temp dir.
    const files = Object.entries(profile.files).map(([guestPath, hostPath]) => ({
      path: path.join(harness.dir, guestPath),
      mode: 0o755,
      data: fs.readFileSync(path.join(profileDir, hostPath)).toString('base64'),
    }));
    const command = profile.command.replace('/opt/', `${harness.dir}/opt/`);
    harness.send({
      type: 'task',
      task: makeTask(harness, { baseCommit, bundle: bundleOf(repo, 'main') }, { command, files }),
    });

    const review = await harness.waitForEvent('review', { timeoutMs: 60_000 });
    assert.match(review.message, /regression test\? \(answer yes to add one\)/);

    // The reviewer edits the README in the paused workspace before answering.
    const edited = await harness.request(1, {
      op: 'fs.writeFile',
      path: 'README.md',
      data: Buffer.from('# demo-stats\n\nReviewed.\n').toString('base64'),
      create: true,
      overwrite: true,
    });
    assert.equal(edited.ok, true);
    harness.send({ type: 'review-answer', requestId: review.requestId, message: 'Yes please' });

    const result = await harness.waitForEvent('result', { timeoutMs: 60_000 });
    assert.deepEqual((await harness.waitForEvent('exit')).code, 0);
    assert.match((await harness.waitForEvent('done')).message, /3 commit\(s\), all tests pass/);
    assert.deepEqual(
      result.commits.map((c) => c.subject),
      [
        'Fix numeric sorting in stats',
        "Apply reviewer's edits",
        'Add a regression test for numeric median',
      ],
    );

    const bundleFile = path.join(harness.dir, 'result.bundle');
    fs.writeFileSync(bundleFile, Buffer.from(result.bundle, 'base64'));
    const git = (...args: string[]) =>
      execFileSync('git', args, { cwd: repo, env: gitEnv() }).toString();
    git('fetch', '-q', bundleFile, 'agentvm-result:agent-fix');
    git('checkout', '-q', 'agent-fix');
    const tests = runTests(repo);
    assert.deepEqual([tests.fail, tests.pass], [0, 7]);
    assert.match(fs.readFileSync(path.join(repo, 'README.md'), 'utf8'), /Reviewed\./);
  });
});

/** Runs the repository's `node --test` and counts passing and failing tests. */
function runTests(repo: string): { pass: number; fail: number } {
  let output: string;
  try {
    output = execFileSync('node', ['--test', '--test-reporter=tap'], { cwd: repo }).toString();
  } catch (error) {
    output = String((error as { stdout: Buffer }).stdout);
  }

  const count = (name: string) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(output)?.[1]);
  return { pass: count('pass'), fail: count('fail') };
}
