import type { Command } from 'commander';
import { bundleRepository } from '../../../client/repoBundle';
import { action, connect, note, printJson, type GlobalOptions } from '../context';
import { exitCodes } from '../exitCodes';
import { followAgent } from '../follow';
import { describeNextStep, pauseOrEndStates } from './nextStep';

interface DelegateOptions extends GlobalOptions {
  repo: string;
  profile: string;
  title?: string;
  allowDirty?: boolean;
  includeUncommitted?: boolean;
  detach?: boolean;
}

export function registerDelegateCommand(program: Command): void {
  program
    .command('delegate')
    .description('hand a task to an agent in its own microVM and follow it until it needs review or ends')
    .argument('<text...>', 'the task, in words')
    .option('--repo <dir>', 'repository the agent works on', '.')
    .option('--profile <name>', 'agent profile (see `agentvm profiles`)', 'demo')
    .option('--title <title>', 'short title (default: the first line of the task)')
    .option('--allow-dirty', 'send HEAD even if the work tree has uncommitted changes (they are not sent)')
    .option('--include-uncommitted', 'send uncommitted changes too, as a snapshot commit on top of HEAD')
    .option('--detach', 'print the agent id and return at once')
    .option('--json', 'print the agent as JSON')
    .action(
      action(async (words: string[], options: DelegateOptions) => {
        const client = connect(options);
        const repo = await bundleRepository(options.repo, {
          allowDirty: options.allowDirty,
          includeUncommitted: options.includeUncommitted,
        });
        if (repo.uncommitted.length > 0) {
          const what = repo.uncommittedIncluded
            ? 'included as a snapshot commit'
            : 'NOT included (only committed work is sent)';
          note(`note: ${repo.uncommitted.length} uncommitted change(s) ${what}`);
        }

        const agent = await client.createAgent({
          text: words.join(' '),
          title: options.title,
          profile: options.profile,
          repo,
        });
        if (!options.json) {
          note(`agent ${agent.id} queued (profile ${agent.profile}, ${repo.branch} at ${repo.baseCommit.slice(0, 12)})`);
        }
        if (options.detach) {
          if (options.json) printJson(agent);
          else process.stdout.write(agent.id + '\n');
          return exitCodes.ok;
        }

        const final = await followAgent(client, agent.id, { until: pauseOrEndStates, print: !options.json });
        if (options.json) printJson(final);
        else describeNextStep(final);
        return final.state === 'failed' || final.state === 'cancelled' ? exitCodes.agentFailed : exitCodes.ok;
      }),
    );
}
