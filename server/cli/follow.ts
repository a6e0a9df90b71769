import type { BrokerClient } from '../../client/BrokerClient';
import type { Agent, AgentEvent, AgentState } from '../../protocol/api';
import { AgentvmError } from '../../protocol/errors';
import { jsonLine, note, out } from './context';
import { exitCodes } from './exitCodes';
import { terminalSafe } from './terminalSafe';

/**
 * Where the timeline entries that arrive while following go:
 * - `stdout`: as text, where the command's result goes (`logs -f`: the timeline is its output);
 * - `stdout-json`: one JSON object per line, an event as `logs --json` lists it (`logs -f --json`);
 * - `stderr`: as text, as progress beside the command's result (`delegate` and `resume`, whose
 *   stdout holds only the agent's id or JSON, so the progress does not mix into it);
 * - `none`: nowhere (`wait`, and `--json` runs of `delegate` and `resume`).
 */
export type TimelineOutput = 'stdout' | 'stdout-json' | 'stderr' | 'none';

export interface FollowOptions {
  /** Stop when the agent reaches one of these states. */
  until: readonly AgentState[];
  /** Where each timeline entry goes while following. */
  timeline: TimelineOutput;
  /** Replay the events after this id first. */
  afterEventId?: number;
}

/**
 * Streams an agent's timeline until it reaches one of `until` and returns the agent then.
 * Uses the WebSocket event stream; if it drops, polls the HTTP API instead, so a broker restart
 * while following costs nothing but a few seconds.
 */
export async function followAgent(
  client: BrokerClient,
  agentId: string,
  options: FollowOptions,
): Promise<Agent> {
  // Ctrl-C stops the following, not the agent: say so, and how to get back to it.
  const onInterrupt = () => {
    note(interruptNotice(agentId));
    process.exit(exitCodes.interrupted);
  };
  process.once('SIGINT', onInterrupt);
  try {
    return await followUntil(client, agentId, options);
  } finally {
    process.removeListener('SIGINT', onInterrupt);
  }
}

/** The line printed when Ctrl-C ends the following of an agent that goes on without us. */
export function interruptNotice(agentId: string): string {
  return `stopped following; agent ${agentId} keeps running: follow it again with \`agentvm logs -f ${agentId}\`, or stop it with \`agentvm cancel ${agentId}\``;
}

/** How the event stream ended: the agent reached a wanted state, was removed, or the stream dropped. */
type StreamOutcome = { agent: Agent } | { removed: true } | { dropped: true };

async function followUntil(
  client: BrokerClient,
  agentId: string,
  options: FollowOptions,
): Promise<Agent> {
  const startedAt = (await client.getAgent(agentId)).createdAt;
  let lastEventId = options.afterEventId ?? 0;
  const show = (event: AgentEvent) => {
    if (event.id <= lastEventId) return;

    lastEventId = event.id;
    printEvent(event, startedAt, options.timeline);
  };

  const outcome = await new Promise<StreamOutcome>((resolve) => {
    let settled = false;
    const finish = (result: StreamOutcome) => {
      if (settled) return;

      settled = true;
      stream.close();
      resolve(result);
    };
    const finishIfWanted = (agent: Agent) => {
      if (!options.until.includes(agent.state)) return;

      // Entries written just before the state change may not have arrived yet: fetch them first.
      // Should that fail, the agent's state is still the answer.
      void client
        .events(agentId, lastEventId)
        .then((events) => events.forEach(show))
        .catch(() => undefined)
        .then(() => finish({ agent }));
    };
    const stream = client.stream(
      { agentId, afterEventId: lastEventId },
      {
        // The agent may have reached a final state, or been removed, before the subscription
        // took effect: look once it has. Any other failure here is the broker's, which closes
        // the stream too.
        onSubscribed: () => {
          client.getAgent(agentId).then(finishIfWanted, (error: unknown) => {
            if (isAgentNotFound(error)) finish({ removed: true });
          });
        },
        onMessage: (message) => {
          if (message.type === 'event') show(message.event);
          if (message.type === 'agent') finishIfWanted(message.agent);
          if (message.type === 'removed') finish({ removed: true });
        },
        onClose: () => finish({ dropped: true }),
      },
    );
  });
  if ('agent' in outcome) return outcome.agent;
  if ('removed' in outcome) throw removedWhileFollowed(agentId);

  return pollUntil(client, agentId, options, show);
}

/**
 * Follows by polling the HTTP API, once a second: the broker may be restarting, so a failed
 * request is tried again, but an agent the broker no longer has ends the following.
 */
async function pollUntil(
  client: BrokerClient,
  agentId: string,
  options: FollowOptions,
  show: (event: AgentEvent) => void,
): Promise<Agent> {
  const unlessRemoved = (error: unknown): undefined => {
    if (isAgentNotFound(error)) throw removedWhileFollowed(agentId);

    return undefined;
  };
  let lastSeen = 0;
  for (;;) {
    const events = (await client.events(agentId, lastSeen).catch(unlessRemoved)) ?? [];
    for (const event of events) {
      show(event);
      lastSeen = event.id;
    }
    const agent = await client.getAgent(agentId).catch(unlessRemoved);
    if (agent && options.until.includes(agent.state)) return agent;

    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function isAgentNotFound(error: unknown): boolean {
  return error instanceof AgentvmError && error.code === 'AGENT_NOT_FOUND';
}

/** The error that ends the following of an agent removed meanwhile (exit 5, as an unknown id). */
export function removedWhileFollowed(agentId: string): AgentvmError {
  return new AgentvmError(
    'AGENT_NOT_FOUND',
    `agent ${agentId} was removed while it was being followed: its VM and files are gone`,
    'Someone removed it (`agentvm rm`, or another client of the broker); `agentvm ls` lists the agents there are.',
  );
}

/** Writes one timeline entry where `timeline` says. */
export function printEvent(event: AgentEvent, startedAt: number, timeline: TimelineOutput): void {
  switch (timeline) {
    case 'stdout':
      return out(formatEvent(event, startedAt));
    case 'stdout-json':
      return jsonLine(event);
    case 'stderr':
      return note(formatEvent(event, startedAt));
    case 'none':
      return;
  }
}

/**
 * One timeline entry as text: elapsed time since creation, kind, message. Output is indented
 * under a `│`, one line per line; the further lines of another message are indented under its
 * first, so no line an agent wrote can pass for a timeline entry of its own. Control characters
 * are shown, not obeyed ({@link terminalSafe}).
 */
export function formatEvent(event: AgentEvent, startedAt: number): string {
  const elapsed = formatElapsed(event.at - startedAt);
  const message = terminalSafe(event.message);
  if (event.kind === 'output') {
    return message
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => `${elapsed}   │ ${line}`)
      .join('\n');
  }

  const head = `${elapsed} ${event.kind.padEnd(8)} `;
  const continuation = ' '.repeat(head.length);
  return message
    .split('\n')
    .map((line, index) => (index === 0 ? head + line : line && continuation + line))
    .join('\n');
}

export function formatElapsed(ms: number): string {
  // Rounded to tenths before splitting, so 59.96 s is 01:00.0 and not 00:60.0.
  const tenths = Math.round(Math.max(0, ms) / 100);
  const minutes = Math.floor(tenths / 600);
  const seconds = ((tenths % 600) / 10).toFixed(1).padStart(4, '0');
  return `[${String(minutes).padStart(2, '0')}:${seconds}]`;
}
