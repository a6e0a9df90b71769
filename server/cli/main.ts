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

/** The `agentvm` command line: a thin client of the broker API, plus host set-up commands. */
function buildProgram(): Command {
  const program = new Command('agentvm')
    .description('delegate coding work to agents that run in isolated microVMs')
    .version(agentvmVersion())
    .option('--url <url>', 'broker URL (default $AGENTVM_URL or http://127.0.0.1:7878)')
    .option(
      '--data-dir <dir>',
      "the broker's data directory: serve keeps its state there, other commands read the token from it (default $AGENTVM_DATA_DIR or ~/.local/share/agentvm)",
    )
    // `agentvm serve --help` lists --data-dir and --url too.
    .configureHelp({ showGlobalOptions: true })
    // commander's own errors (a missing argument, an unknown option) in the house format.
    .configureOutput({ outputError: (text, write) => write(usageError(text)) })
    .exitOverride((error) => {
      process.exit(error.exitCode === 0 ? exitCodes.ok : exitCodes.usage);
    });

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
  return program;
}

/** `error: missing required argument 'x'` as `error [BAD_USAGE]: …` and its hint. */
function usageError(text: string): string {
  const message = text.trim().replace(/^error: /, '');
  return `error [BAD_USAGE]: ${message}\n  hint: ${errorCatalog.BAD_USAGE.hint}\n`;
}

// A reader that stopped reading (`agentvm ls | head -1`) is not an error of this command.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(exitCodes.ok);
  throw error;
});

// Global options: --url is read by every command through its own options; --data-dir is the
// same as AGENTVM_DATA_DIR, which every reader of the data directory (dataDir()) honours.
const program = buildProgram();
program.hook('preAction', (_program, command) => {
  const { url, dataDir } = program.opts<{ url?: string; dataDir?: string }>();
  if (url !== undefined) command.setOptionValue('url', url);
  if (dataDir !== undefined) process.env.AGENTVM_DATA_DIR = path.resolve(dataDir);
});
void program.parseAsync(process.argv);
