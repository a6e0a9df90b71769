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

// Global options (--url) are read by every command through its own options.
const program = buildProgram();
program.hook('preAction', (_program, command) => {
  const url = program.opts<{ url?: string }>().url;
  if (url) command.setOptionValue('url', url);
});
void program.parseAsync(process.argv);
