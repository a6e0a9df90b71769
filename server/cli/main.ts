import { exitCodes } from './exitCodes';
import { buildProgram } from './program';

// A reader that stopped reading (`agentvm ls | head -1`) is not an error of this command.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(exitCodes.ok);
  throw error;
});

void buildProgram().parseAsync(process.argv);
