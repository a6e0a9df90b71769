import type { Command } from 'commander';
import { AgentvmError } from '../../../protocol/errors';
import { dataDir, storePath } from '../../config/paths';
import { Store } from '../../store/Store';
import { action, out } from '../context';

/** `token create`: a local administrative step on the broker's machine (it opens the store). */
export function registerTokenCommand(program: Command): void {
  const token = program
    .command('token')
    .description('manage broker tokens (run on the broker machine)');
  token
    .command('create')
    .description('create a token for a user and print it')
    .requiredOption('--user <name>', 'user the token belongs to')
    .option('--admin', 'the user may see and act on every agent')
    .action(
      action(async (options: { user: string; admin?: boolean }) => {
        if (!/^[\w.@-]{1,64}$/.test(options.user)) {
          throw new AgentvmError(
            'VALIDATION_FAILED',
            'user names are 1-64 letters, digits, or . _ @ -',
          );
        }

        const store = new Store(storePath(dataDir()));
        try {
          out(store.createToken(options.user, options.admin === true));
        } finally {
          store.close();
        }
      }),
    );
}
