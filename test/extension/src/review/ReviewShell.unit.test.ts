import assert from 'node:assert/strict';
import type { ExecResult } from '../../../../protocol/guestResults';
import { ReviewShell } from '../../../../extension/src/review/ReviewShell';

/** A guest whose execs run until the test ends them (or they are interrupted), one at a time. */
class FakeGuest {
  readonly commands: string[] = [];
  readonly interrupts: string[] = [];
  private current: { execId: string; finish: (result: ExecResult) => void } | undefined;

  exec = (
    _agentId: string,
    command: string,
    _timeoutMs?: number,
    _cwd?: string,
    execId?: string,
  ): Promise<ExecResult> => {
    this.commands.push(command);
    return new Promise((finish) => (this.current = { execId: execId ?? '', finish }));
  };

  interrupt = async (_agentId: string, execId: string): Promise<boolean> => {
    this.interrupts.push(execId);
    if (this.current?.execId !== execId) return false;

    this.end({ signal: 'SIGINT', code: null, stdout: '' });
    return true;
  };

  get runningId(): string | undefined {
    return this.current?.execId;
  }

  end(result: Partial<ExecResult> & { stdout: string }): void {
    const current = this.current;
    this.current = undefined;
    current?.finish({
      code: 0,
      signal: null,
      stderr: '',
      truncated: false,
      timedOut: false,
      ...result,
    });
  }
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('ReviewShell (unit)', () => {
  let guest: FakeGuest;
  let screen: string;
  let shell: ReviewShell;

  beforeEach(() => {
    guest = new FakeGuest();
    screen = '';
    shell = new ReviewShell(
      'a1',
      guest,
      { write: (text) => (screen += text), close: () => undefined },
      { warn: () => undefined },
    );
    shell.open();
  });

  it('runs lines typed while a command runs after it, in order, and shows what was typed (regression: they were dropped)', async () => {
    shell.input('sleep 5\r');
    await settle();
    shell.input('echo one\recho two\r');
    await settle();
    assert.deepEqual(guest.commands, ['sleep 5']);
    assert.match(screen, /echo one\r\necho two\r\n$/);

    guest.end({ stdout: '' });
    await settle();
    assert.deepEqual(guest.commands, ['sleep 5', 'echo one']);
    guest.end({ stdout: 'one\n' });
    await settle();
    guest.end({ stdout: 'two\n' });
    await settle();
    assert.deepEqual(guest.commands, ['sleep 5', 'echo one', 'echo two']);
    assert.match(screen, /one\r\n.*two\r\n.*agentvm\$/s);
  });

  it('sends Ctrl+C to the running command as an interrupt of that very exec, drops the lines typed ahead, and prompts again (regression: Ctrl+C did nothing until the 120 s limit)', async () => {
    shell.input('sleep 100\r');
    await settle();
    const execId = guest.runningId;
    assert.ok(execId, 'the command runs with an exec id');
    shell.input('rm -rf build\r');
    shell.input('\x03');
    await settle();

    assert.deepEqual(guest.interrupts, [execId]);
    assert.deepEqual(guest.commands, ['sleep 100']);
    assert.match(screen, /\^C\r\n\x1b\[2m\[exit SIGINT\]\x1b\[0m\r\n\x1b\[1magentvm\$\x1b\[0m $/);

    // The next command gets an exec id of its own.
    shell.input('true\r');
    await settle();
    assert.notEqual(guest.runningId, execId);
  });

  it('clears the line being typed on Ctrl+C when no command runs, without an interrupt', async () => {
    shell.input('half a comm');
    shell.input('\x03');
    await settle();
    assert.deepEqual(guest.interrupts, []);
    assert.deepEqual(guest.commands, []);
    assert.match(screen, /half a comm\^C\r\n\x1b\[1magentvm\$\x1b\[0m $/);
  });
});
