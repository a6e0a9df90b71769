import type { Command } from 'commander';
import { MAX_EXEC_STDIN_BYTES } from '../../../protocol/control';
import { AgentvmError } from '../../../protocol/errors';
import { execOutputBytes, execResultSchema } from '../../../protocol/guestResults';
import {
  action,
  checkAgentIds,
  connect,
  note,
  out,
  parseWholeNumber,
  printError,
  printJson,
  type GlobalOptions,
} from '../context';
import { exitCodes } from '../exitCodes';
import { followAgent } from '../follow';
import { execOutcome } from './execOutcome';
import { describeNextStep, pauseOrEndStates } from './nextStep';

/**
 * How the words after `--` become a command: each is quoted, so a word never splits and `|`, `>`
 * and `*` reach the command as text. A pipeline is a script for `sh -c`.
 */
export const execCommandHelp =
  "the program and its arguments, after --; each word is passed as it is (quoted), so | > && * are not interpreted: for a pipeline or redirect give a script to sh, e.g. -- sh -c 'git log | head -5'";

type ExecOptions = GlobalOptions & { timeout: string; stdin?: boolean };

type ResumeOptions = GlobalOptions & { message: string; detach?: boolean };

/**
 * All of this process's stdin, or a clear error once it passes `maxBytes` (nothing is sent) that
 * says how to send a larger file to agent `id` in pieces.
 */
async function readStdin(maxBytes: number, id: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      throw new AgentvmError(
        'PAYLOAD_TOO_LARGE',
        `stdin is over ${maxBytes / 1024 / 1024} MiB, the most exec --stdin sends`,
        `Send a larger file in pieces: \`split -b ${maxBytes / 1024 / 1024}M FILE PIECE.\`, then for each piece in order \`agentvm exec --stdin ${id} -- sh -c 'cat >> FILE' < PIECE.aa\`; or copy it in through the review workspace in VS Code.`,
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
        checkAgentIds('review', [id]);
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
      "run a command in the agent's workspace (VM must be running or under review); its stdin is empty unless --stdin; its output comes back byte for byte (up to 1 MiB of each stream)",
    )
    .argument('<id>')
    .argument('<command...>', execCommandHelp)
    .option('--timeout <ms>', 'stop the command after this many milliseconds', '60000')
    .option(
      '-i, --stdin',
      `send this command's stdin to the command (read to its end first, at most ${MAX_EXEC_STDIN_BYTES / 1024 / 1024} MiB)`,
    )
    .action(
      action(async (id: string, words: string[], options: ExecOptions) => {
        checkAgentIds('exec', [id]);
        const timeoutMs = parseWholeNumber(options.timeout, '--timeout', {
          min: 1,
          example: 600000,
        });

        const command = words.map(shellQuote).join(' ');
        const stdin = options.stdin ? await readStdin(MAX_EXEC_STDIN_BYTES, id) : undefined;
        const answer = await connect(options).guest(id, {
          op: 'exec',
          command,
          timeoutMs,
          ...(stdin && { stdin: stdin.toString('base64') }),
          outputEncoding: 'base64',
        });
        const result = execResultSchema.parse(answer);
        process.stdout.write(execOutputBytes(result, 'stdout'));
        process.stderr.write(execOutputBytes(result, 'stderr'));

        const outcome = execOutcome(id, result, timeoutMs);
        if (outcome.error) printError(outcome.error);
        return outcome.exitCode;
      }),
    );

  program
    .command('resume')
    .description(
      'answer the review and let the agent continue, with any edits made during review in place',
    )
    .argument('<id>')
    .option(
      '-m, --message <text>',
      'the reviewer\'s answer, as one argument: --message "yes please"',
      '',
    )
    .option('--detach', 'return at once instead of following the agent')
    .option('--json', 'print JSON')
    // Words after the id are refused by the action, with a hint that names --message.
    .allowExcessArguments()
    .action(
      action(async (id: string, options: ResumeOptions, command: Command) => {
        checkAgentIds('resume', [id]);
        const extra = command.args.slice(1);
        if (extra.length > 0) throw answerWithoutMessageError(id, extra, options.message);

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
        // Progress goes to stderr: stdout holds the command's result alone (JSON, or nothing).
        const final = await followAgent(client, id, {
          until: pauseOrEndStates,
          timeline: options.json ? 'none' : 'stderr',
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

/** `resume ID yes please`: the words were meant as the answer, which goes in --message. */
function answerWithoutMessageError(id: string, extra: string[], message: string): AgentvmError {
  const answer = message === '' ? shellQuote(extra.join(' ')) : '"..."';
  return new AgentvmError(
    'BAD_USAGE',
    `too many arguments for 'resume': it takes one agent id, but got ${extra.length + 1} arguments`,
    `Give the answer with --message, quoted as one argument: \`agentvm resume ${id} --message ${answer}\`.`,
  );
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
