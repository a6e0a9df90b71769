import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { AgentvmError } from '../../../../protocol/errors';
import { checkBranchIsFree, checkBranchName } from '../../../../server/cli/commands/result';
import { exitCodeFor } from '../../../../server/cli/exitCodes';
import { makeTempRepo } from '../../../helpers/repos';

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
