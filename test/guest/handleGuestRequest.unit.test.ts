import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { guestRequestSchema, type GuestRequestInput } from '../../protocol/control';
import { execResultSchema } from '../../protocol/guestResults';
import { handleGuestRequest } from '../../guest/handleGuestRequest';
import { baseEnv } from '../../guest/runProcess';

describe('handleGuestRequest (unit)', () => {
  let workspaceDir: string;

  beforeEach(() => {
    workspaceDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-guest-request-'));
  });

  afterEach(() => fs.rmSync(workspaceDir, { recursive: true, force: true }));

  const exec = async (command: string) => {
    const request: GuestRequestInput = { op: 'exec', command, timeoutMs: 10_000 };
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
});
