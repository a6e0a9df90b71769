import type { Command } from 'commander';
import { action, connect, out, printJson, type GlobalOptions } from '../context';

export function registerProfilesCommand(program: Command): void {
  program
    .command('profiles')
    .description('list the agent profiles the broker knows')
    .option('--json', 'print JSON')
    .action(
      action(async (options: GlobalOptions) => {
        const profiles = await connect(options).profiles();
        if (options.json) return printJson(profiles);

        for (const profile of profiles) {
          const limit = profile.timeLimitMs
            ? `${Math.round(profile.timeLimitMs / 60000)} min`
            : 'no time limit';
          const hosts = profile.allowedHosts.length
            ? profile.allowedHosts.join(', ')
            : 'no network';
          out(
            `${profile.name.padEnd(12)} ${profile.memoryMiB} MiB, ${profile.vcpus} vCPU, ${limit}, ${hosts}`,
          );
          if (profile.description) out(`${''.padEnd(12)} ${profile.description}`);
        }
      }),
    );
}
