import { Option, type Command } from 'commander';
import { terminalStates } from '../../../protocol/api';
import { liveRemovalError } from '../../agents/liveRemovalError';
import {
  action,
  checkAgentIds,
  connect,
  note,
  out,
  printJson,
  type GlobalOptions,
} from '../context';
import { exitCodes } from '../exitCodes';
import { followAgent, formatEvent, printEvent } from '../follow';
import { terminalSafe } from '../terminalSafe';
import { agentDetailsHelp, formatAgentDetails } from './formatAgentDetails';
import { agentListHeader, agentListHelp, formatAgentRow } from './formatAgentRow';
import { describeNextStep, pauseOrEndStates } from './nextStep';

/** `ls`, `show`, `logs`, `wait`, `cancel`, `rm`: looking at and ending agents. */
export function registerAgentCommands(program: Command): void {
  program
    .command('ls')
    .description('list agents')
    .option('--json', 'print JSON')
    .addHelpText('after', agentListHelp)
    .action(
      action(async (options: GlobalOptions) => {
        const agents = await connect(options).listAgents();
        if (options.json) return printJson(agents);

        if (agents.length === 0)
          return out('no agents yet; start one with `agentvm delegate "..."`');

        out(agentListHeader);
        for (const agent of agents) formatAgentRow(agent).forEach(out);
      }),
    );

  program
    .command('show')
    .description(
      'print what is known of one agent: its state, what it waits for, its result, how long its VM ran, its task',
    )
    .argument('<id>')
    .option('--json', 'print the agent as JSON')
    .addHelpText('after', agentDetailsHelp)
    .action(
      action(async (id: string, options: GlobalOptions) => {
        checkAgentIds('show', [id]);
        const agent = await connect(options).getAgent(id);
        if (options.json) return printJson(agent);

        formatAgentDetails(agent).forEach(out);
      }),
    );

  program
    .command('logs')
    .description(
      "print an agent's timeline (or its VM console) on stdout; with --follow, the entries to come as well",
    )
    .argument('<id>')
    .option('-f, --follow', 'keep printing until the agent needs review or ends')
    .addOption(
      new Option(
        '--console',
        "print the VM's serial console instead (not with --follow or --json)",
      ).conflicts(['follow', 'json']),
    )
    .option(
      '--json',
      'print the events as a JSON array; with --follow, one JSON object per line instead (each event as it comes, in the same shape)',
    )
    .action(
      action(
        async (id: string, options: GlobalOptions & { follow?: boolean; console?: boolean }) => {
          checkAgentIds('logs', [id]);
          const client = connect(options);
          if (options.console) {
            const text = await client.consoleLog(id);
            // The guest writes the console: shown, not obeyed, even when redirected to a file.
            process.stdout.write(terminalSafe(text));
            if (text.trim() === '') {
              // A template clone's kernel booted in the template's VM, so its console starts
              // empty and stays quiet unless the kernel has something to say.
              note(
                `the console of agent ${id} is empty: a VM started from a template prints nothing there after its restore; the agent's own output is in \`agentvm logs ${id}\``,
              );
            }
            return;
          }

          const agent = await client.getAgent(id);
          const events = await client.events(id);
          if (!options.follow) {
            if (options.json) return printJson(events);

            for (const event of events) out(formatEvent(event, agent.createdAt));
            return;
          }

          // The whole timeline, what happened and what comes, is this command's output (stdout),
          // so `logs -f ID | grep x` sees every line. A stream is no JSON array: one event a line.
          const timeline = options.json ? 'stdout-json' : 'stdout';
          for (const event of events) printEvent(event, agent.createdAt, timeline);
          const final = await followAgent(client, id, {
            until: pauseOrEndStates,
            timeline,
            afterEventId: events.at(-1)?.id ?? 0,
          });
          if (!options.json) describeNextStep(final);
        },
      ),
    );

  program
    .command('wait')
    .description(
      'wait until the agent needs review or ends, printing nothing meanwhile; then print its state',
    )
    .argument('<id>')
    .option('--json', 'print the agent as JSON')
    .action(
      action(async (id: string, options: GlobalOptions) => {
        checkAgentIds('wait', [id]);
        const final = await followAgent(connect(options), id, {
          until: pauseOrEndStates,
          timeline: 'none',
        });
        if (options.json) printJson(final);
        else out(final.state);
        return final.state === 'failed' || final.state === 'cancelled'
          ? exitCodes.agentFailed
          : exitCodes.ok;
      }),
    );

  program
    .command('cancel')
    .description('stop an agent that has not ended; its VM is ended and its work so far discarded')
    .argument('<id>')
    .option('--json', 'print JSON')
    .action(
      action(async (id: string, options: GlobalOptions) => {
        checkAgentIds('cancel', [id]);
        const agent = await connect(options).cancel(id);
        if (options.json) printJson(agent);
        else out(`agent ${agent.id} is ${agent.state}`);
      }),
    );

  program
    .command('rm')
    .description('remove an agent, its VM and all its files')
    .argument('<id...>')
    .option('--force', 'also remove agents that have not ended (their VM is stopped, work lost)')
    .action(
      action(async (ids: string[], options: GlobalOptions & { force?: boolean }) => {
        checkAgentIds('rm', ids);
        const client = connect(options);
        // The broker refuses an agent that has not ended without force. Every id is checked here
        // first as well, so that a refusal of one of several ids removes none of them.
        const agents = [];
        for (const id of ids) agents.push(await client.getAgent(id));
        if (!options.force) {
          const live = agents.find((agent) => !terminalStates.includes(agent.state));
          if (live) throw liveRemovalError(live.id, live.state);
        }

        for (const agent of agents) {
          await client.remove(agent.id, { force: options.force });
          out(`removed ${agent.id}`);
        }
      }),
    );
}
