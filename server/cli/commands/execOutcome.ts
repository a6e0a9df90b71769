import { AgentvmError } from '../../../protocol/errors';
import type { ExecResult } from '../../../protocol/guestResults';
import { exitCodes } from '../exitCodes';

/** Most bytes of stdout and of stderr each the guest agent returns from one exec. */
export const execOutputCapBytes = 1024 * 1024;

/** What `agentvm exec` does after printing the command's output. */
export interface ExecOutcome {
  exitCode: number;
  /** Printed after the output when the command did not simply run to its end. */
  error?: AgentvmError;
}

/**
 * The exit code and error of `agentvm exec` for the guest's answer: the command's own exit code
 * when it ran to its end with its whole output, an error otherwise (timed out, killed by a
 * signal, output cut at the cap), so that nothing is lost silently.
 */
export function execOutcome(agentId: string, result: ExecResult, timeoutMs: number): ExecOutcome {
  const cut = result.truncated
    ? `; stdout or stderr went over ${execOutputCapBytes / 1024 / 1024} MiB and was cut there`
    : '';

  if (result.timedOut) {
    const signal = result.signal ? ` with ${result.signal}` : '';
    return {
      exitCode: exitCodes.failure,
      error: new AgentvmError(
        'EXEC_TIMED_OUT',
        `the command ran past --timeout ${timeoutMs} ms and was stopped${signal}; the output above is what it printed until then${cut}`,
        `Give it more time with --timeout MS (it was ${timeoutMs}), e.g. agentvm exec --timeout ${timeoutMs * 10} ${agentId} -- ...`,
      ),
    };
  }

  if (result.code === null) {
    return {
      exitCode: exitCodes.failure,
      error: new AgentvmError(
        'EXEC_KILLED',
        `the command was killed by signal ${result.signal ?? '(unknown)'}${cut}`,
        `Something in the VM ended it (often the kernel when the VM runs out of memory); see \`agentvm logs ${agentId} --console\`.`,
      ),
    };
  }

  if (result.truncated) {
    const exited = result.code === 0 ? '' : ` (the command exited with code ${result.code})`;
    return {
      // The command's own failure code is kept; a success that lost output is not a success.
      exitCode: result.code === 0 ? exitCodes.failure : result.code,
      error: new AgentvmError(
        'EXEC_OUTPUT_TRUNCATED',
        `stdout or stderr went over ${execOutputCapBytes / 1024 / 1024} MiB and was cut there; the output above is incomplete${exited}`,
        `Redirect the output into a file in the workspace (agentvm exec ${agentId} -- sh -c 'CMD > out.txt 2>&1') and read it in the review workspace (VS Code), or print less (e.g. | tail -n 200).`,
      ),
    };
  }

  return { exitCode: result.code };
}
