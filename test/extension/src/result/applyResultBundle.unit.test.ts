import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentvmError } from '../../../../protocol/errors';
import { applyResultBundle } from '../../../../extension/src/result/applyResultBundle';

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t.invalid', ...args], { cwd })
    .toString()
    .trim();

describe('applyResultBundle (unit)', () => {
  let dir: string;
  let local: string;
  let agentSide: string;
  let base: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-apply-'));
    local = path.join(dir, 'local');
    fs.mkdirSync(local);
    git(local, 'init', '-q', '-b', 'main');
    fs.writeFileSync(path.join(local, 'a.txt'), 'one\n');
    git(local, 'add', '-A');
    git(local, 'commit', '-q', '-m', 'base');
    base = git(local, 'rev-parse', 'HEAD');
    agentSide = path.join(dir, 'agent');
    git(dir, 'clone', '-q', local, agentSide);
  });

  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function agentCommit(content: string): { bundle: Buffer; head: string } {
    fs.writeFileSync(path.join(agentSide, 'a.txt'), content);
    git(agentSide, 'commit', '-q', '-am', 'agent change');
    const head = git(agentSide, 'rev-parse', 'HEAD');
    git(agentSide, 'update-ref', 'refs/heads/result', head);
    const file = path.join(dir, 'result.bundle');
    git(agentSide, 'bundle', 'create', '-q', file, `${base}..result`);
    return { bundle: fs.readFileSync(file), head };
  }

  it("creates agentvm/<id> at the agent's head without touching the work tree or HEAD", async () => {
    const { bundle, head } = agentCommit('two\n');
    const branch = await applyResultBundle(local, 'a1', bundle, head);

    assert.equal(branch, 'agentvm/a1');
    assert.equal(git(local, 'rev-parse', 'agentvm/a1'), head);
    assert.equal(git(local, 'rev-parse', 'HEAD'), base);
    assert.equal(fs.readFileSync(path.join(local, 'a.txt'), 'utf8'), 'one\n');
    assert.equal(
      git(local, 'for-each-ref', 'refs/agentvm-import'),
      '',
      'temporary refs are removed',
    );
  });

  it('refuses to overwrite an existing branch with APPLY_CONFLICT', async () => {
    const { bundle, head } = agentCommit('two\n');
    git(local, 'branch', 'agentvm/a1');
    await assert.rejects(applyResultBundle(local, 'a1', bundle, head), (error: AgentvmError) => {
      assert.equal(error.code, 'APPLY_CONFLICT');
      return true;
    });
    assert.equal(git(local, 'rev-parse', 'agentvm/a1'), base);
  });

  it('rejects a bundle that does not hold the announced head commit', async () => {
    const { bundle } = agentCommit('two\n');
    await assert.rejects(
      applyResultBundle(local, 'a1', bundle, 'f'.repeat(40)),
      /does not contain/,
    );
    assert.equal(git(local, 'branch', '--list', 'agentvm/a1'), '');
  });

  it('rejects a directory that is not a git repository', async () => {
    const plain = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-plain-'));
    try {
      await assert.rejects(
        applyResultBundle(plain, 'a1', Buffer.from(''), base),
        (error: AgentvmError) => {
          assert.equal(error.code, 'NOT_A_GIT_REPOSITORY');
          return true;
        },
      );
    } finally {
      fs.rmSync(plain, { recursive: true, force: true });
    }
  });
});
