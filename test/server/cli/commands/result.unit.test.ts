import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { AgentvmError } from '../../../../protocol/errors';
import { checkBranchIsFree, checkBranchName } from '../../../../server/cli/commands/result';
import { exitCodeFor } from '../../../../server/cli/exitCodes';
import { makeTempRepo } from '../../../helpers/repos';
import { runCli } from '../runCli';
import { startBrokerWithAgents, type BrokerWithAgents } from '../startBrokerWithAgents';

describe('agentvm apply branch checks (unit)', () => {
  let repo = '';

  before(() => {
    repo = makeTempRepo();
    execFileSync('git', ['branch', 'agentvm/abc123'], { cwd: repo });
  });

  after(() => {
    if (repo) fs.rmSync(repo, { recursive: true, force: true });
  });

  for (const name of ['bad..name', 'has space', '', '-x', 'HEAD', '@{-1}', 'x.lock']) {
    it(`refuses --branch ${JSON.stringify(name)} as bad input (exit 2) with a hint`, async () => {
      await assert.rejects(checkBranchName(name), (error: unknown) => {
        assert.ok(error instanceof AgentvmError);
        assert.equal(error.code, 'VALIDATION_FAILED');
        assert.equal(exitCodeFor(error.code), 2);
        assert.match(error.hint, /check-ref-format/);
        return true;
      });
    });
  }

  it('accepts an ordinary branch name', async () => {
    await checkBranchName('agentvm/fix-median');
  });

  it('refuses agentvm/ID/sub when agentvm/ID exists, and the reverse, naming the clash', async () => {
    await assert.rejects(checkBranchIsFree(repo, 'agentvm/abc123/sub'), (error: unknown) => {
      assert.ok(error instanceof AgentvmError);
      assert.equal(error.code, 'APPLY_CONFLICT');
      assert.match(error.message, /branch agentvm\/abc123 exists/);
      assert.match(error.hint, /--branch/);
      return true;
    });
    await assert.rejects(checkBranchIsFree(repo, 'agentvm'), /APPLY_CONFLICT|agentvm\/abc123/);
    await assert.rejects(checkBranchIsFree(repo, 'agentvm/abc123'), /already exists/);
    await checkBranchIsFree(repo, 'agentvm/other');
  });
});

describe('agentvm diff, apply and pr of an agent that ended without a result (unit)', function () {
  this.timeout(30_000);
  let broker: BrokerWithAgents;
  let repo = '';

  before(async () => {
    repo = makeTempRepo();
    broker = await startBrokerWithAgents({
      cancelled1: 'cancelled',
      failed1: 'failed',
      waiting1: 'awaiting_review',
    });
  });

  after(async () => {
    await broker?.stop();
    if (repo) fs.rmSync(repo, { recursive: true, force: true });
  });

  const cli = (args: string[]) =>
    runCli(args, { AGENTVM_URL: broker.url, AGENTVM_TOKEN: broker.token });

  for (const [id, what] of [
    ['cancelled1', 'was cancelled'],
    ['failed1', 'failed'],
  ]) {
    it(`says an agent that ${what} has no result and never will, not "no result yet" (regression: diff and apply of ${id})`, async () => {
      for (const args of [
        ['diff', id],
        ['apply', id, '--repo', repo],
        ['pr', id],
      ]) {
        const run = await cli(args);

        assert.equal(run.exitCode, 1, run.stderr);
        assert.match(
          run.stderr,
          new RegExp(
            `^error \\[RESULT_NOT_READY\\]: agent ${id} ${what}, so it has no result and never will$`,
            'm',
          ),
          `${args[0]}: ${run.stderr}`,
        );
        assert.doesNotMatch(run.stderr, /yet/);
        assert.match(run.stderr, /^ {2}hint: .*delegate the task again/m);
      }
    });
  }

  it('still says "no result yet" of an agent that waits for review, with the hint to review it', async () => {
    const run = await cli(['diff', 'waiting1']);

    assert.equal(run.exitCode, 1, run.stderr);
    assert.match(run.stderr, /^error \[RESULT_NOT_READY\]: agent waiting1 has no result yet/m);
    assert.match(run.stderr, /^ {2}hint: .*agentvm review waiting1/m);
  });
});
