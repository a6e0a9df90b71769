import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentvmError } from '../../../protocol/errors';
import { cloneRepository } from '../../../server/github/cloneRepository';
import { buildAgentWork, type AgentWork } from './agentWorkFixture';
import { GitHttpServer } from './gitHttpServer';

// github.com cannot be reached from the test machines, so the clone runs against git's own
// smart-HTTP backend on loopback, which checks the Authorization header as GitHub does.
describe('cloneRepository (unit)', () => {
  const token = 'ghp_testtoken0123456789';
  let root: string;
  let work: AgentWork;
  let server: GitHttpServer;
  let baseUrl: string;

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'agentvm-clone-'));
    work = buildAgentWork(path.join(root, 'fixture'));
    mkdirSync(path.join(root, 'served', 'octo'), { recursive: true });
    execFileSync('git', [
      'clone',
      '--quiet',
      '--bare',
      work.workDir,
      path.join(root, 'served', 'octo', 'widgets.git'),
    ]);

    const expected = `Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`;
    server = new GitHttpServer(path.join(root, 'served'), expected);
    baseUrl = await server.start();
  });

  after(async () => {
    await server.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('clones over HTTP with the token in the Authorization header and keeps it off the disk', async () => {
    const dest = path.join(root, 'clones', 'ok');

    await cloneRepository({ owner: 'octo', repo: 'widgets' }, dest, token, { baseUrl });

    const head = execFileSync('git', ['-C', dest, 'rev-parse', 'HEAD'], {
      encoding: 'utf8',
    }).trim();
    assert.equal(head, work.headCommit);
    const origin = execFileSync('git', ['-C', dest, 'remote', 'get-url', 'origin'], {
      encoding: 'utf8',
    }).trim();
    assert.equal(origin, `${baseUrl}/octo/widgets.git`);
    assert.ok(server.authorizations.some((value) => value.startsWith('Basic ')));

    const base64Token = Buffer.from(`x-access-token:${token}`).toString('base64');
    for (const file of filesUnder(path.join(dest, '.git'))) {
      const content = readFileSync(file);
      assert.equal(content.includes(token), false, `${file} holds the token`);
      assert.equal(content.includes(base64Token), false, `${file} holds the encoded token`);
    }
  });

  it('reports a rejected token as GITHUB_UNAUTHORIZED without echoing it', async () => {
    const dest = path.join(root, 'clones', 'bad');

    await assert.rejects(
      cloneRepository({ owner: 'octo', repo: 'widgets' }, dest, 'ghp_wrongtoken999', { baseUrl }),
      (error: AgentvmError) => {
        assert.equal(error.code, 'GITHUB_UNAUTHORIZED');
        assert.match(error.message, /Cloning octo\/widgets failed: the server rejected the token/);
        assert.doesNotMatch(error.message, /ghp_wrongtoken999/);
        return true;
      },
    );
  });

  it('reports a missing repository as GITHUB_NOT_FOUND naming it', async () => {
    await assert.rejects(
      cloneRepository(
        { owner: 'octo', repo: 'gadgets' },
        path.join(root, 'clones', 'missing'),
        token,
        { baseUrl },
      ),
      (error: AgentvmError) => {
        assert.equal(error.code, 'GITHUB_NOT_FOUND');
        assert.match(error.message, /octo\/gadgets/);
        return true;
      },
    );
  });
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? filesUnder(full) : [full];
  });
}
