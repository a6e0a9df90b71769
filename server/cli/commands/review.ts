import type { Command } from 'commander';
import { AgentvmError } from '../../../protocol/errors';
import { action, connect, note, out, printJson, type GlobalOptions } from '../context';
import { exitCodes } from '../exitCodes';
import { followAgent } from '../follow';
import { describeNextStep, pauseOrEndStates } from './nextStep';

/**
 * Most bytes `exec --stdin` sends: the input travels to the guest inside one control-channel
 * line, as base64.
 */
const MAX_EXEC_STDIN_BYTES = 16 * 1024 * 1024;

type ExecOptions = GlobalOptions & { timeout: string; stdin?: boolean };

/** All of this process's stdin, or a clear error once it passes `maxBytes` (nothing is sent). */
async function readStdin(maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      throw new AgentvmError(
        'PAYLOAD_TOO_LARGE',
        `stdin is over ${maxBytes / 1024 / 1024} MiB, the most exec --stdin sends`,
        'copy large files in through the review workspace in VS Code, or have the agent fetch them',
      );
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** `review`, `exec`, `resume`: a human looks at the paused agent and answers it. */
export function registerReviewCommands(program: Command): void {
  program
    .command('review')
    .description("restore a paused agent's VM so its workspace can be inspected and edited")
    .argument('<id>')
    .option('--json', 'print JSON')
    .action(
      action(async (id: string, options: GlobalOptions) => {
        const agent = await connect(options).review(id);
        if (options.json) return printJson(agent);

        out(
          `agent ${agent.id} is ${agent.state}: its VM runs again, the agent still waits for your answer`,
        );
        note(`  question: ${agent.review?.message ?? '(none)'}`);
        note(`  agentvm exec ${agent.id} -- git diff HEAD~1   # look around (runs in /workspace)`);
        note(`  agentvm resume ${agent.id} --message "..."    # answer; your edits stay in place`);
      }),
    );

  program
    .command('exec')
    .description(
      "run a shell command in the agent's workspace (VM must be running or under review); its stdin is empty unless --stdin",
    )
    .argument('<id>')
    .argument('<command...>', 'command and arguments (use -- before them)')
    .option('--timeout <ms>', 'timeout in milliseconds', '60000')
    .option(
      '-i, --stdin',
      `send this command's stdin to the command (read to its end first, at most ${MAX_EXEC_STDIN_BYTES / 1024 / 1024} MiB)`,
    )
    .action(
      action(async (id: string, words: string[], options: ExecOptions) => {
        const timeoutMs = Number(options.timeout);
        if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
          throw new AgentvmError(
            'VALIDATION_FAILED',
            '--timeout must be a positive number of milliseconds',
          );
        }

        const command = words.map(shellQuote).join(' ');
        const stdin = options.stdin ? await readStdin(MAX_EXEC_STDIN_BYTES) : undefined;
        const result = (await connect(options).guest(id, {
          op: 'exec',
          command,
          timeoutMs,
          ...(stdin && { stdin: stdin.toString('base64') }),
        })) as {
          code: number | null;
          stdout: string;
          stderr: string;
        };
        process.stdout.write(result.stdout);
        process.stderr.write(result.stderr);
        return result.code ?? exitCodes.failure;
      }),
    );

  program
    .command('resume')
    .description(
      'answer the review and let the agent continue, with any edits made during review in place',
    )
    .argument('<id>')
    .option('-m, --message <text>', "the reviewer's answer", '')
    .option('--detach', 'return at once instead of following the agent')
    .option('--json', 'print JSON')
    .action(
      action(async (id: string, options: GlobalOptions & { message: string; detach?: boolean }) => {
        const client = connect(options);
        const before = await client.events(id);
        const agent = await client.resume(id, options.message);
        if (options.detach) {
          if (options.json) printJson(agent);
          else out(`agent ${agent.id} is ${agent.state}`);
          return;
        }

        if (!options.json) note(`agent ${agent.id} resumed`);
        const afterEventId = before.at(-1)?.id ?? 0;
        const final = await followAgent(client, id, {
          until: pauseOrEndStates,
          print: !options.json,
          afterEventId,
        });
        if (options.json) printJson(final);
        else describeNextStep(final);
        return final.state === 'failed' || final.state === 'cancelled'
          ? exitCodes.agentFailed
          : exitCodes.ok;
      }),
    );
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
