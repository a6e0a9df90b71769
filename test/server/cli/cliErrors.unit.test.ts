import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../../../server/config/paths';
import { startImagelessBroker, type ImagelessBroker } from '../../helpers/imagelessBroker';
import { makeTempRepo } from '../../helpers/repos';

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the bundled CLI as a separate process (the broker lives in this one, so never block). */
function cli(args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<CliRun> {
  const entry = path.join(packageRoot(), 'dist', 'cli.js');
  return new Promise((resolve) => {
    execFile(
      'node',
      [entry, ...args],
      { env: { ...process.env, ...env }, cwd },
      (error, stdout, stderr) => {
        const code = error ? ((error as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
      },
    );
  });
}

describe('agentvm CLI errors (unit)', function () {
  this.timeout(60_000);
  let harness: ImagelessBroker;
  let repo: string;
  let env: NodeJS.ProcessEnv;

  before(async function () {
    if (!fs.existsSync(path.join(packageRoot(), 'dist', 'cli.js'))) this.skip();

    repo = makeTempRepo();
    harness = await startImagelessBroker();
    env = { AGENTVM_URL: harness.url, AGENTVM_DATA_DIR: harness.dataDir, AGENTVM_TOKEN: '' };
  });

  after(async () => {
    await harness?.stop();
    if (repo) fs.rmSync(repo, { recursive: true, force: true });
  });

  it('exits quietly with 0 when its reader stops reading (agentvm ls | head -1)', async () => {
    const child = spawn('node', [path.join(packageRoot(), 'dist', 'cli.js'), 'ls'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // Closed before the CLI has its answer from the broker, so its first write meets EPIPE.
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /EPIPE|at /);
  });

  it('names an unknown agent id with its code and a hint, and exits 5', async () => {
    const run = await cli(['logs', 'nosuchagent'], env);
    assert.equal(run.code, 5);
    assert.match(run.stderr, /^error \[AGENT_NOT_FOUND\]: .*nosuchagent/m);
    assert.match(run.stderr, /^ {2}hint: /m);
  });

  it('reports a missing argument in the same format, with a hint, and exits 2', async () => {
    const run = await cli(['exec', 'someagent'], env);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^error \[BAD_USAGE\]: missing required argument 'command'/m);
    assert.match(run.stderr, /^ {2}hint: .*--help/m);
  });

  it('refuses exec --stdin input over its limit with a code and a hint, sending nothing', async () => {
    const child = spawn(
      'node',
      [path.join(packageRoot(), 'dist', 'cli.js'), 'exec', 'someagent', '--stdin', '--', 'cat'],
      { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // The CLI stops reading once over the limit; whatever it did not read is not an error here.
    child.stdin.on('error', () => undefined);
    child.stdin.end(Buffer.alloc(9 * 1024 * 1024, 'x'));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.notEqual(code, 0);
    assert.match(stderr, /^error \[PAYLOAD_TOO_LARGE\]: stdin is over 8 MiB/m);
    // A way that works from the command line, not only from VS Code.
    assert.match(stderr, /^ {2}hint: .*split -b 8M FILE/m);
    assert.match(stderr, /agentvm exec --stdin someagent -- sh -c 'cat >> FILE' < PIECE/);
    // Nothing reached the broker: the unknown agent would have been named otherwise.
    assert.doesNotMatch(stderr, /AGENT_NOT_FOUND/);
  });

  it('refuses --allow-dirty together with --include-uncommitted before sending anything', async () => {
    const run = await cli(
      ['delegate', '--repo', repo, '--allow-dirty', '--include-uncommitted', 'task'],
      env,
    );
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /^error \[BAD_USAGE\]: option '--allow-dirty' cannot be used with option '--include-uncommitted'/m,
    );
  });

  it('prints the error body as one line of JSON on stderr with --json', async () => {
    const run = await cli(['ls', '--json', '--url', env.AGENTVM_URL!], {
      ...env,
      AGENTVM_TOKEN: 'avm_wrong',
    });
    assert.equal(run.code, 6);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^\{.*\}\n$/);
    const body = JSON.parse(run.stderr) as { error: { code: string; hint: string } };
    assert.equal(body.error.code, 'UNAUTHORIZED');
    assert.ok(body.error.hint.length > 0);
  });

  it('refuses a directory that is not a git repository before contacting the broker, exit 2', async () => {
    const plain = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-notrepo-'));
    try {
      const run = await cli(['delegate', '--repo', plain, '--profile', 'plain', 'do', 'it'], env);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /NOT_A_GIT_REPOSITORY/);
    } finally {
      fs.rmSync(plain, { recursive: true, force: true });
    }
  });

  it('refuses a dirty work tree and says what would and would not be sent', async () => {
    fs.writeFileSync(path.join(repo, 'README.md'), 'changed\n');
    try {
      const run = await cli(['delegate', '--repo', repo, '--profile', 'plain', 'do', 'it'], env);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /DIRTY_WORKTREE.*README\.md/);
      assert.match(run.stderr, /--allow-dirty/);
    } finally {
      fs.writeFileSync(path.join(repo, 'README.md'), '# test\n');
    }
  });

  it('reports an unknown profile and leaves no agent behind', async () => {
    const run = await cli(['delegate', '--repo', repo, '--profile', 'nope', 'do', 'it'], env);
    assert.equal(run.code, 5);
    assert.match(run.stderr, /PROFILE_NOT_FOUND.*plain/);
    const list = await cli(['ls', '--json'], env);
    assert.deepEqual(JSON.parse(list.stdout), []);
  });

  it('says no broker answers, with exit 4, when nothing listens', async () => {
    const run = await cli(['ls'], { ...env, AGENTVM_URL: 'http://127.0.0.1:9' });
    assert.equal(run.code, 4);
    assert.match(run.stderr, /BROKER_UNREACHABLE/);
  });

  it('refuses to delegate without a guest image: IMAGE_MISSING with a hint, exit 1, no agent', async () => {
    const imageless = await startImagelessBroker({ image: 'missing' });
    try {
      const imagelessEnv = {
        ...env,
        AGENTVM_URL: imageless.url,
        AGENTVM_DATA_DIR: imageless.dataDir,
      };
      const run = await cli(
        ['delegate', '--repo', repo, '--profile', 'plain', 'do', 'it'],
        imagelessEnv,
      );
      assert.equal(run.code, 1);
      assert.match(run.stderr, /error \[IMAGE_MISSING\]/);
      assert.match(run.stderr, /hint: .*agentvm image build/);
      const list = await cli(['ls', '--json'], imagelessEnv);
      assert.deepEqual(JSON.parse(list.stdout), []);
    } finally {
      await imageless.stop();
    }
  });

  it('refuses --url notaurl as bad input with exit 2, not as an unreachable broker', async () => {
    const run = await cli(['ls', '--url', 'notaurl'], env);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /^error \[VALIDATION_FAILED\]: --url "notaurl"/m);
    assert.match(run.stderr, /^ {2}hint: /m);
  });

  it('names --limit, not a query parameter, for audit --limit x (exit 2)', async () => {
    const run = await cli(['audit', '--limit', 'x'], env);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /^error \[VALIDATION_FAILED\]: --limit must be a whole number/m);
    assert.doesNotMatch(run.stderr, /query parameter/);
  });

  for (const branch of ['bad..name', 'has space', '', '-x']) {
    it(`refuses apply --branch ${JSON.stringify(branch)} with exit 2 and a hint, no INTERNAL or stack`, async () => {
      const run = await cli(['apply', 'someagent', '--repo', repo, '--branch', branch], env);
      assert.equal(run.code, 2, run.stderr);
      assert.match(
        run.stderr,
        /^error \[VALIDATION_FAILED\]: --branch .* is not a valid branch name/m,
      );
      assert.match(run.stderr, /^ {2}hint: /m);
      assert.doesNotMatch(run.stderr, /INTERNAL|bug in agentvm|^\s+at /m);
    });
  }

  it('refuses serve --host 999.1.1.1 with exit 2 and a hint, no getaddrinfo stack', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-serve-'));
    try {
      const run = await cli(['serve', '--host', '999.1.1.1', '--port', '0'], {
        ...env,
        AGENTVM_DATA_DIR: dataDir,
      });
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /^error \[VALIDATION_FAILED\]: --host "999\.1\.1\.1"/m);
      assert.doesNotMatch(run.stderr, /INTERNAL|getaddrinfo|^\s+at /m);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('serve --data-dir DIR keeps its state in DIR and warns when there is no guest image', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-serve-'));
    const child = spawn(
      'node',
      [path.join(packageRoot(), 'dist', 'cli.js'), 'serve', '--port', '0', '--data-dir', dataDir],
      {
        env: { ...process.env, ...env, AGENTVM_DATA_DIR: '', AGENTVM_LOG_LEVEL: 'error' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
          if (/^warning: .*$/m.test(stderr)) resolve();
        });
        void exited.then(() => reject(new Error(`serve exited: ${stderr}`)));
      });
      assert.match(stderr, new RegExp(`token file: ${dataDir}/token`));
      assert.match(
        stderr,
        /^warning: .*delegations will fail with [A-Z_]+ until `agentvm (image build|doctor --fix)/m,
      );
      assert.ok(fs.existsSync(path.join(dataDir, 'token')));
    } finally {
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('removes an agent that has ended without asking for --force', async () => {
    const started = await cli(
      ['delegate', '--repo', repo, '--profile', 'plain', '--detach', 'do', 'it'],
      env,
    );
    const id = started.stdout.trim();
    assert.equal((await cli(['wait', id], env)).stdout.trim(), 'failed');
    const run = await cli(['rm', id], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `removed ${id}\n`);
  });

  it('exits 3 when the delegated agent fails, and prints the reason', async () => {
    const run = await cli(['delegate', '--repo', repo, '--profile', 'plain', 'do', 'it'], env);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /failed: this test driver boots no VMs/);
    // The next steps lead to the timeline first, where a command's own output is.
    const id = /agent (\w+) failed/.exec(run.stderr)?.[1] ?? '';
    assert.match(run.stderr, new RegExp(`agentvm logs ${id} +# its timeline`));

    const console = await cli(['logs', id, '--console'], env);
    assert.equal(console.code, 0);
    assert.equal(console.stdout, '');
    assert.match(console.stderr, /console of agent \w+ is empty: .*`agentvm logs \w+`/);
  });
});
