import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAgentctlArgs } from '../../guest/agentctl';
import { bundleGuest } from './guestHarness';

describe('agentctl (unit)', function () {
  this.timeout(30_000);
  let dir: string;
  let agentctl: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-agentctl-'));
    agentctl = (await bundleGuest(dir)).agentctl;
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const run = (...args: string[]) =>
    spawnSync(process.execPath, [agentctl, ...args], {
      env: { PATH: process.env.PATH, AGENTVM_AGENTCTL_SOCKET: path.join(dir, 'absent.sock') },
      encoding: 'utf8',
    });

  it('parses each command and joins the words of its message', () => {
    assert.deepEqual(parseAgentctlArgs(['progress', 'running', 'tests']), {
      type: 'progress',
      message: 'running tests',
    });
    assert.deepEqual(parseAgentctlArgs(['done']), { type: 'done', message: '' });
    assert.deepEqual(parseAgentctlArgs(['review', 'ok?']), { type: 'review', message: 'ok?' });
    assert.equal(parseAgentctlArgs(['--help']), 'help');
  });

  it('prints help and exits 0 on --help', () => {
    const result = run('--help');
    assert.equal(result.status, 0);
    assert.match(result.stdout, /Usage: agentctl <command>/);
  });

  it('exits 2 with a usage message for an unknown command or a missing message', () => {
    for (const args of [[], ['frobnicate'], ['review'], ['progress', '  ']]) {
      const result = run(...args);
      assert.equal(result.status, 2, `agentctl ${args.join(' ')}`);
      assert.match(result.stderr, /^agentctl: .+\n\nUsage:/);
    }
  });

  it('refuses a progress message over 4096 characters and a review over 16384 with exit 2', () => {
    assert.deepEqual(parseAgentctlArgs(['progress', 'p'.repeat(4096)]), {
      type: 'progress',
      message: 'p'.repeat(4096),
    });
    assert.deepEqual(parseAgentctlArgs(['review', 'r'.repeat(16384)]), {
      type: 'review',
      message: 'r'.repeat(16384),
    });

    const progress = run('progress', 'p'.repeat(4097));
    assert.equal(progress.status, 2);
    assert.match(progress.stderr, /MESSAGE is 4097 characters; the limit is 4096/);

    const review = run('review', 'r'.repeat(16385));
    assert.equal(review.status, 2);
    assert.match(review.stderr, /MESSAGE is 16385 characters; the limit is 16384/);

    const done = run('done', 'd'.repeat(4097));
    assert.equal(done.status, 2);
  });

  it('exits 1 and names the socket when the guest agent is not there', () => {
    const result = run('progress', 'hi');
    assert.equal(result.status, 1);
    assert.match(result.stderr, /cannot reach the guest agent at .*absent\.sock/);
  });
});
