import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommandLauncher } from '../../guest/CommandLauncher';

/** Everything the process printed on stdout, and how it ended. */
function finished(child: ChildProcess): Promise<{ stdout: string; code: number | null }> {
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  return new Promise((resolve) => child.once('close', (code) => resolve({ stdout, code })));
}

describe('CommandLauncher (unit)', function () {
  this.timeout(20_000);
  let dir: string;

  beforeEach(
    () => (dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-launch-')))),
  );
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('becomes the command with exactly the given environment, directory and no stdin', async () => {
    const launcher = CommandLauncher.start(null);
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      MULTI: 'two\nlines',
      ODD: 'ü and spaces = "quoted"',
      EMPTY: '',
    };
    const command = [
      'printf "%s|%s|[%s]|%s\\n" "$MULTI" "$ODD" "$EMPTY" "$(pwd)"',
      'env | grep -c "^HOME=" || true',
      'read line; echo "read exit $?"',
      'echo "pid $$ group $(ps -o pgid= -p $$ | tr -d " ")"',
    ].join('; ');
    const child = launcher.launch(command, dir, env);
    assert.ok(child, 'a fresh launcher runs the command');
    const { stdout, code } = await finished(child);

    assert.equal(code, 0);
    const lines = stdout.split('\n');
    assert.equal(lines.slice(0, 2).join('\n'), `two\nlines|ü and spaces = "quoted"|[]|${dir}`);
    assert.equal(lines[2], '0', 'no variable of the launcher itself (HOME) leaks in');
    assert.equal(lines[3], 'read exit 1', 'stdin is /dev/null');
    const [, pid, group] = /^pid (\d+) group (\d+)$/.exec(lines[4] ?? '') ?? [];
    assert.equal(pid, String(child.pid), 'the launcher process itself became the command');
    assert.equal(group, pid, 'the command leads its own process group');
  });

  it('is used once, and not at all once it is gone', async () => {
    const used = CommandLauncher.start(null);
    const first = used.launch('true', dir, { PATH: process.env.PATH ?? '/usr/bin:/bin' });
    assert.ok(first);
    assert.equal(used.launch('true', dir, {}), null);
    await finished(first);

    const killed = CommandLauncher.start(null);
    const gone = new Promise((resolve) =>
      (killed as unknown as { child: ChildProcess }).child.once('exit', resolve),
    );
    (killed as unknown as { child: ChildProcess }).child.kill('SIGKILL');
    await gone;
    assert.equal(killed.launch('true', dir, {}), null);
  });

  it('reports a directory it cannot enter as the command failing, with the reason', async () => {
    const launcher = CommandLauncher.start(null);
    const child = launcher.launch('true', path.join(dir, 'missing'), {});
    assert.ok(child);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const { code } = await finished(child);
    assert.notEqual(code, 0);
    assert.match(stderr, /cannot enter .*missing/);
  });
});
