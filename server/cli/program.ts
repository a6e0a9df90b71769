import path from 'node:path';
import { Command } from 'commander';
import { registerAgentCommands } from './commands/agents';
import { registerAllowCommands } from './commands/allow';
import { registerAuditCommand } from './commands/audit';
import { registerDelegateCommand } from './commands/delegate';
import { registerDoctorCommand } from './commands/doctor';
import { registerImageCommand } from './commands/image';
import { registerPrCommand } from './commands/pr';
import { registerProfilesCommand } from './commands/profiles';
import { registerResultCommands } from './commands/result';
import { registerReviewCommands } from './commands/review';
import { registerServeCommand } from './commands/serve';
import { registerTemplateCommand } from './commands/template';
import { registerTokenCommand } from './commands/token';
import { errorCatalog } from '../../protocol/errors';
import { exitCodes } from './exitCodes';
import { agentvmVersion } from './version';

/**
 * The `agentvm` command line: a thin client of the broker API, plus host set-up commands. `exit`
 * ends the process after commander's own output (help, version, a usage error); tests pass one
 * that throws instead.
 */
export function buildProgram(
  exit: (code: number) => never = (code) => process.exit(code),
): Command {
  const program = new Command('agentvm')
    .description('delegate coding work to agents that run in isolated microVMs')
    .version(agentvmVersion())
    .option(
      '--url <url>',
      'broker URL (default $AGENTVM_URL, else http://127.0.0.1:$AGENTVM_PORT, else http://127.0.0.1:7878)',
    )
    .option(
      '--data-dir <dir>',
      "the broker's data directory: serve keeps its state there, other commands read the token from it (default $AGENTVM_DATA_DIR or ~/.local/share/agentvm)",
    )
    // `agentvm serve --help` lists --data-dir and --url too.
    .configureHelp({ showGlobalOptions: true })
    // commander's own errors (a missing argument, an unknown option) in the house format.
    .configureOutput({ outputError: (text, write) => write(usageError(text)) })
    .exitOverride((error) => exit(error.exitCode === 0 ? exitCodes.ok : exitCodes.usage));

  registerDoctorCommand(program);
  registerImageCommand(program);
  registerTemplateCommand(program);
  registerServeCommand(program);
  registerDelegateCommand(program);
  registerAgentCommands(program);
  registerReviewCommands(program);
  registerResultCommands(program);
  registerPrCommand(program);
  registerProfilesCommand(program);
  registerTokenCommand(program);
  registerAuditCommand(program);
  registerAllowCommands(program);

  // Global options: --url is read by every command through its own options; --data-dir is the
  // same as AGENTVM_DATA_DIR, which every reader of the data directory (dataDir()) honours.
  program.hook('preAction', (_program, command) => {
    const { url, dataDir } = program.opts<{ url?: string; dataDir?: string }>();
    if (url !== undefined) command.setOptionValue('url', url);
    if (dataDir !== undefined) process.env.AGENTVM_DATA_DIR = path.resolve(dataDir);
  });
  return program;
}

/**
 * commander's error text (`error: missing required argument 'x'`) as `error [BAD_USAGE]: …` and
 * one hint line. The suggestion commander prints on a line of its own (`(Did you mean
 * --profile?)`) leads the hint, so the error stays two lines.
 */
export function usageError(text: string): string {
  const suggestionLine = /^\((Did you mean .*\?)\)$/;
  const lines = text
    .replace(/^error: /, '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  const suggestion = lines.map((line) => suggestionLine.exec(line)?.[1]).find(Boolean);
  const message = lines.filter((line) => !suggestionLine.test(line)).join(' ');
  const hint = [suggestion, errorCatalog.BAD_USAGE.hint].filter(Boolean).join(' ');
  return `error [BAD_USAGE]: ${message}\n  hint: ${hint}\n`;
}
