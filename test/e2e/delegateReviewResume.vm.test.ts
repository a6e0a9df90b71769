import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import { bundleRepository } from '../../client/repoBundle';
import { packageRoot } from '../../server/config/paths';
import { git } from '../helpers/repos';
import { useVmAgentSuite } from '../helpers/useVmAgentSuite';
import { qemuPidsMentioning } from '../helpers/vmBroker';

describe('delegate → review → resume → apply, in a real microVM (vm)', function () {
  this.timeout(15 * 60_000);
  let agentId = '';
  const suite = useVmAgentSuite({ agentId: () => agentId });
  const { harness } = suite;

  it('runs the demo agent, which pauses for review with no QEMU process left for it', async () => {
    const failing = spawnSync('node', ['--test'], { cwd: suite.demoRepo, encoding: 'utf8' });
    assert.notEqual(failing.status, 0, 'the demo repository starts with a failing test');

    const repo = await bundleRepository(suite.demoRepo);
    const agent = await harness.client.createAgent({
      text: 'Make the failing test pass.',
      profile: 'demo',
      repo,
    });
    agentId = agent.id;

    const paused = await harness.waitFor(agentId, ['awaiting_review']);
    assert.match(paused.review?.message ?? '', /regression test/);
    assert.deepEqual(qemuPidsMentioning(path.join(harness.dataDir, 'agents', agentId)), []);
    const events = await harness.client.events(agentId);
    const kinds = events.map((event) => event.kind);
    for (const kind of ['progress', 'output', 'review'])
      assert.ok(kinds.includes(kind as never), `timeline has ${kind}`);
    assert.ok(
      events.some((event) => /^workspace: checked out by the broker/.test(event.message)),
      'the broker checked the repository out and sent it as files',
    );
  });

  it('survives a broker restart while awaiting review', async () => {
    await harness.restart();
    const agent = await harness.client.getAgent(agentId);
    assert.equal(agent.state, 'awaiting_review');
  });

  it('restores the paused VM for review, with the agent still waiting and its work in place', async () => {
    const reviewing = await harness.client.review(agentId);
    assert.equal(reviewing.state, 'reviewing');

    const log = (await harness.client.guest(agentId, {
      op: 'exec',
      command: 'git log --format=%s',
    })) as { stdout: string };
    assert.match(log.stdout, /Fix/);
    const processes = (await harness.client.guest(agentId, {
      op: 'exec',
      command: 'ps -eo args || ls /proc',
    })) as { stdout: string };
    assert.match(processes.stdout, /agentctl|[0-9]/);

    // `agentvm exec --stdin` hands its own stdin to the command in the VM. The CLI runs as its
    // own process; the broker lives in this one, so never block on it.
    const cli = path.join(packageRoot(), 'dist', 'cli.js');
    const child = spawn('node', [cli, 'exec', agentId, '--stdin', '--', 'tr', 'a-z', 'A-Z'], {
      env: { ...process.env, AGENTVM_URL: harness.url, AGENTVM_TOKEN: harness.token },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.end('through stdin\n');
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.deepEqual([code, stdout], [0, 'THROUGH STDIN\n'], stderr);

    // The review terminal's Ctrl+C: an interrupt reaches the exec that runs, through the broker.
    const sleeping = harness.client.guest(agentId, {
      op: 'exec',
      command: 'sleep 600',
      execId: 'review-terminal-1',
    });
    let interrupted = { interrupted: false };
    for (let attempt = 0; attempt < 50 && !interrupted.interrupted; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      interrupted = (await harness.client.guest(agentId, {
        op: 'exec.interrupt',
        execId: 'review-terminal-1',
      })) as { interrupted: boolean };
    }
    assert.deepEqual(interrupted, { interrupted: true });
    const stopped = (await sleeping) as { signal: string | null; timedOut: boolean };
    assert.deepEqual([stopped.signal, stopped.timedOut], ['SIGINT', false]);

    await harness.client.guest(agentId, {
      op: 'fs.writeFile',
      path: 'REVIEW-NOTES.md',
      data: Buffer.from('Reviewed in the paused VM.\n').toString('base64'),
    });
  });

  it("resumes with the reviewer's answer; the agent acts on it and keeps the reviewer's edit", async () => {
    await harness.client.resume(agentId, 'yes, please add one');
    const done = await harness.waitFor(agentId, ['done']);
    const subjects = done.result?.commits.map((commit) => commit.subject) ?? [];
    assert.ok(subjects.length >= 2, `commits: ${subjects.join(' | ')}`);
    assert.ok(
      subjects.some((subject) => /regression/i.test(subject)),
      `commits: ${subjects.join(' | ')}`,
    );

    const result = await harness.client.result(agentId);
    assert.match(result.patch, /REVIEW-NOTES\.md/);
  });

  it('`agentvm apply` makes a local branch on which the repository tests pass', async () => {
    // The CLI runs as its own process; the broker lives in this one, so never block on it.
    const cli = path.join(packageRoot(), 'dist', 'cli.js');
    const env = { ...process.env, AGENTVM_URL: harness.url, AGENTVM_TOKEN: harness.token };
    await promisify(execFile)('node', [cli, 'apply', agentId, '--repo', suite.demoRepo], { env });

    git(suite.demoRepo, ['checkout', '-q', `agentvm/${agentId}`]);
    const tests = spawnSync('node', ['--test'], { cwd: suite.demoRepo, encoding: 'utf8' });
    assert.equal(tests.status, 0, tests.stdout + tests.stderr);
    assert.ok(fs.existsSync(path.join(suite.demoRepo, 'REVIEW-NOTES.md')));
  });
});
