import assert from 'node:assert/strict';
import { Command } from 'commander';
import type { ExecResult } from '../../../../protocol/guestResults';
import { execOutcome } from '../../../../server/cli/commands/execOutcome';
import { registerReviewCommands } from '../../../../server/cli/commands/review';
import { exitCodeFor } from '../../../../server/cli/exitCodes';

function anExecResult(overrides: Partial<ExecResult> = {}): ExecResult {
  return {
    code: 0,
    signal: null,
    stdout: '',
    stderr: '',
    truncated: false,
    timedOut: false,
    ...overrides,
  };
}

describe('agentvm exec outcome (unit)', () => {
  it("passes the command's own exit code through when it ran to its end", () => {
    assert.deepEqual(execOutcome('a1', anExecResult({ code: 0 }), 60_000), { exitCode: 0 });
    assert.deepEqual(execOutcome('a1', anExecResult({ code: 127 }), 60_000), { exitCode: 127 });
  });

  it('fails, saying stdout/stderr were cut at 1 MiB, when the answer has truncated: true', () => {
    const outcome = execOutcome('a1', anExecResult({ code: 0, truncated: true }), 60_000);
    assert.notEqual(outcome.exitCode, 0);
    assert.equal(outcome.error?.code, 'EXEC_OUTPUT_TRUNCATED');
    assert.match(outcome.error.message, /stdout or stderr went over 1 MiB and was cut/);
    assert.match(outcome.error.hint, /into a file in the workspace/);
  });

  it('keeps a failing exit code of a command whose output was also cut', () => {
    const outcome = execOutcome('a1', anExecResult({ code: 3, truncated: true }), 60_000);
    assert.equal(outcome.exitCode, 3);
    assert.match(outcome.error?.message ?? '', /exited with code 3/);
  });

  it('reports exec --timeout 1000 -- sh -c "echo start; sleep 5" as timed out, with a hint about --timeout', () => {
    const answer = anExecResult({
      code: null,
      signal: 'SIGTERM',
      stdout: 'start\n',
      timedOut: true,
    });
    const outcome = execOutcome('a1', answer, 1000);
    assert.equal(outcome.exitCode, 1);
    assert.equal(outcome.error?.code, 'EXEC_TIMED_OUT');
    assert.match(outcome.error.message, /--timeout 1000 ms/);
    assert.match(outcome.error.hint, /--timeout/);
    assert.equal(exitCodeFor('EXEC_TIMED_OUT'), 1);
  });

  it('names the signal that killed a command', () => {
    const outcome = execOutcome('a1', anExecResult({ code: null, signal: 'SIGKILL' }), 60_000);
    assert.equal(outcome.exitCode, 1);
    assert.equal(outcome.error?.code, 'EXEC_KILLED');
    assert.match(outcome.error.message, /killed by signal SIGKILL/);
    assert.match(outcome.error.hint, /agentvm logs a1 --console/);
  });

  it('explains in its help that words are quoted one by one and how to run a pipeline', () => {
    const program = new Command('agentvm');
    registerReviewCommands(program);
    const exec = program.commands.find((command) => command.name() === 'exec');
    const help = exec?.helpInformation() ?? '';
    assert.doesNotMatch(help, /shell command/);
    assert.match(help, /sh -c/);
    assert.match(help, /quoted/);
  });
});
