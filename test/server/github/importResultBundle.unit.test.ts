import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentvmError } from '../../../protocol/errors';
import { importResultBundle } from '../../../server/github/importResultBundle';
import { buildAgentWork, type AgentWork } from './agentWorkFixture';

describe('importResultBundle (unit)', () => {
  let root: string;
  let work: AgentWork;

  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'agentvm-import-'));
    work = buildAgentWork(path.join(root, 'fixture'));
  });

  after(() => rmSync(root, { recursive: true, force: true }));

  it('unpacks the thin bundle on top of a clone that has the base, leaving the clone alone', async () => {
    const before = execFileSync('git', ['-C', work.userDir, 'count-objects', '-v'], {
      encoding: 'utf8',
    });

    const bare = await importResultBundle(
      work.bundle,
      work.userDir,
      work.headCommit,
      path.join(root, 'one'),
    );

    const log = execFileSync('git', ['-C', bare, 'rev-list', `${work.baseCommit}..result`], {
      encoding: 'utf8',
    });
    assert.equal(log.trim().split('\n').length, work.commits.length);
    assert.equal(
      execFileSync('git', ['-C', work.userDir, 'count-objects', '-v'], { encoding: 'utf8' }),
      before,
    );
    assert.throws(() =>
      execFileSync('git', ['-C', work.userDir, 'cat-file', '-e', work.headCommit], {
        stdio: 'ignore',
      }),
    );
  });

  it('says which clone lacks the base commit', async () => {
    const stranger = path.join(root, 'stranger');
    execFileSync('git', ['init', '--quiet', stranger]);
    execFileSync('git', [
      '-C',
      stranger,
      '-c',
      'user.name=x',
      '-c',
      'user.email=x@x.test',
      'commit',
      '--quiet',
      '--allow-empty',
      '-m',
      'other',
    ]);

    await assert.rejects(
      importResultBundle(work.bundle, stranger, work.headCommit, path.join(root, 'two')),
      (error: AgentvmError) => {
        assert.equal(error.code, 'RESULT_NOT_READY');
        assert.match(
          error.message,
          new RegExp(`does not apply to ${stranger}.*${work.baseCommit}`),
        );
        return true;
      },
    );
  });
});
