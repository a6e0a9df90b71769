import type { Command } from 'commander';
import type { Profile, ProfileProblem } from '../../../protocol/api';
import { action, connect, note, out, printJson, type GlobalOptions } from '../context';

export function registerProfilesCommand(program: Command): void {
  program
    .command('profiles')
    .description('list the agent profiles the broker knows, and the profile files it cannot use')
    .option('--json', 'print JSON (the usable profiles; unusable files are reported on stderr)')
    .action(
      action(async (options: GlobalOptions) => {
        const client = connect(options);
        const [profiles, problems] = await Promise.all([
          client.profiles(),
          client.profileProblems(),
        ]);
        // --json prints the same array as before problems were reported, so scripts keep working.
        if (options.json) {
          printJson(profiles);
          describeProblems(problems).forEach(note);
          return;
        }

        profiles.flatMap(describeProfile).forEach(out);
        describeProblems(problems).forEach(out);
      }),
    );
}

function describeProfile(profile: Profile): string[] {
  const limit = profile.timeLimitMs
    ? `${Math.round(profile.timeLimitMs / 60000)} min`
    : 'no time limit';
  const hosts = profile.allowedHosts.length ? profile.allowedHosts.join(', ') : 'no network';
  const lines = [
    `${profile.name.padEnd(12)} ${profile.memoryMiB} MiB, ${profile.vcpus} vCPU, ${limit}, ${hosts}`,
  ];
  if (profile.description) lines.push(`${''.padEnd(12)} ${profile.description}`);
  return lines;
}

function describeProblems(problems: ProfileProblem[]): string[] {
  if (problems.length === 0) return [];

  return [
    `not usable until fixed (${problems.length} file(s); read again when changed):`,
    ...problems.flatMap((problem) => [
      `${problem.name.padEnd(12)} ${problem.file}`,
      `${''.padEnd(12)} ${problem.reason}`,
    ]),
  ];
}
