import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { guestRequestSchema, type GuestRequestInput } from '../../protocol/control';
import { execOutputBytes, execResultSchema } from '../../protocol/guestResults';
import { handleGuestRequest } from '../../guest/handleGuestRequest';
import { baseEnv } from '../../guest/runProcess';

describe('handleGuestRequest (unit)', () => {
  let workspaceDir: string;

  beforeEach(() => {
    workspaceDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-guest-request-'));
  });

  afterEach(() => fs.rmSync(workspaceDir, { recursive: true, force: true }));

  const exec = async (command: string, outputEncoding?: 'utf8' | 'base64') => {
    const request: GuestRequestInput = { op: 'exec', command, timeoutMs: 10_000, outputEncoding };
    const context = { workspaceDir, user: null, baseCommit: null, env: baseEnv(null) };
    return execResultSchema.parse(
      await handleGuestRequest(guestRequestSchema.parse(request), context),
    );
  };

  it('reports an exec whose command is killed by a signal as killed by that signal, not as code 128+n', async () => {
    // Regression: `agentvm exec ID -- sh -c 'kill -9 $$'` came back as exit code 137.
    const killed = await exec("sh -c 'echo before; kill -9 $$'");
    assert.deepEqual([killed.code, killed.signal, killed.stdout], [null, 'SIGKILL', 'before\n']);

    const terminated = await exec("sh -c 'kill -TERM $$'");
    assert.deepEqual([terminated.code, terminated.signal], [null, 'SIGTERM']);
  });

  it('keeps the exit code of a command that exits with 137 itself, and of a list', async () => {
    const exited = await exec("sh -c 'exit 137'");
    assert.deepEqual([exited.code, exited.signal], [137, null]);

    const list = await exec('echo one; echo two >&2; exit 4');
    assert.deepEqual([list.code, list.stdout, list.stderr], [4, 'one\n', 'two\n']);
  });

  it('returns exec output byte for byte when asked for base64, and as UTF-8 text by default (regression: bytes that are not UTF-8 came back as U+FFFD)', async () => {
    const command = "printf '\\377\\376\\000\\001A'; printf '\\351t\\351' >&2";
    const exact = await exec(command, 'base64');
    assert.equal(exact.outputEncoding, 'base64');
    assert.deepEqual(execOutputBytes(exact, 'stdout'), Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x41]));
    assert.deepEqual(execOutputBytes(exact, 'stderr'), Buffer.from([0xe9, 0x74, 0xe9]));

    const text = await exec(command);
    assert.equal(text.outputEncoding, undefined);
    assert.equal(text.stdout, '\ufffd\ufffd\u0000\u0001A');
  });

  it("interrupts a named exec's whole process group with SIGINT, and says when no exec of that name runs (the review terminal's Ctrl+C)", async () => {
    const context = { workspaceDir, user: null, baseCommit: null, env: baseEnv(null) };
    const request = (input: GuestRequestInput) =>
      handleGuestRequest(guestRequestSchema.parse(input), context);
    // A list: the shell stays the group leader, and the sleep in it must stop too.
    const running = request({
      op: 'exec',
      command: 'echo started; sleep 30; echo not reached',
      timeoutMs: 60_000,
      execId: 'term-1',
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const duplicate = request({ op: 'exec', command: 'true', timeoutMs: 1_000, execId: 'term-1' });
    await assert.rejects(duplicate, /an exec named term-1 runs already/);

    assert.deepEqual(await request({ op: 'exec.interrupt', execId: 'term-1' }), {
      interrupted: true,
    });
    const result = execResultSchema.parse(await running);
    assert.deepEqual(
      [result.signal, result.stdout, result.timedOut],
      ['SIGINT', 'started\n', false],
    );

    assert.deepEqual(await request({ op: 'exec.interrupt', execId: 'term-1' }), {
      interrupted: false,
    });
  });
});
