import type { Agent, AgentState, Profile } from '../../../protocol/api';
import { terminalStates } from '../../../protocol/api';
import { formatDuration } from '../../../server/cli/commands/formatDuration';

/** Codicon id and theme colour id of each state's icon in the tree and the webview. */
export const stateIcons: Record<AgentState, { icon: string; color?: string }> = {
  queued: { icon: 'clock' },
  starting: { icon: 'loading~spin' },
  running: { icon: 'sync~spin', color: 'charts.blue' },
  pausing: { icon: 'debug-pause', color: 'charts.yellow' },
  awaiting_review: { icon: 'comment-discussion', color: 'charts.yellow' },
  restoring: { icon: 'loading~spin', color: 'charts.yellow' },
  reviewing: { icon: 'eye', color: 'charts.yellow' },
  done: { icon: 'pass', color: 'testing.iconPassed' },
  failed: { icon: 'error', color: 'testing.iconFailed' },
  cancelled: { icon: 'circle-slash' },
};

/** What the user may do with an agent in a given state; drives inline actions and buttons. */
export interface AgentActions {
  open: boolean;
  review: boolean;
  resume: boolean;
  cancel: boolean;
  remove: boolean;
  result: boolean;
}

export function agentActions(agent: Pick<Agent, 'state' | 'result'>): AgentActions {
  const terminal = terminalStates.includes(agent.state);
  return {
    open: true,
    review: agent.state === 'awaiting_review' || agent.state === 'reviewing',
    resume: agent.state === 'awaiting_review' || agent.state === 'reviewing',
    cancel: !terminal,
    remove: true,
    result: agent.state === 'done' && agent.result !== null,
  };
}

/**
 * The tree item's context value: `agent` followed by one `:flag` per allowed action, so menus in
 * package.json match with `viewItem =~ /:resume\b/`.
 */
export function agentContextValue(agent: Pick<Agent, 'state' | 'result'>): string {
  const actions = agentActions(agent);
  const flags = (Object.keys(actions) as (keyof AgentActions)[]).filter((key) => actions[key]);
  return ['agent', ...flags].join(':');
}

/** A span of milliseconds as the CLI writes durations (`45s`, `3m12s`, `1h04m`, `2d03h`). */
export function formatElapsed(elapsedMs: number): string {
  return formatDuration(elapsedMs / 1000);
}

/** The one-line description next to an agent's title: profile, elapsed time, latest progress. */
export function agentDescription(agent: Agent, nowMs: number): string {
  const end = agent.endedAt ?? nowMs;
  const parts = [agent.profile, formatElapsed(end - agent.createdAt)];
  const latest = agent.state === 'awaiting_review' ? agent.review?.message : agent.lastProgress;
  if (latest) parts.push(latest);

  return parts.join(' · ');
}

/** Human words for a state ("awaiting review"). */
export function stateLabel(state: AgentState): string {
  return state.replace(/_/g, ' ');
}

/** A profile's shape and limits on one line: "512 MiB · 1 vCPU · limit 30m 00s · no network". */
export function profileDetail(profile: Profile): string {
  const limit =
    profile.timeLimitMs > 0 ? `limit ${formatElapsed(profile.timeLimitMs)}` : 'no time limit';
  const hosts = profile.allowedHosts.length
    ? `hosts: ${profile.allowedHosts.join(', ')}`
    : 'no network';
  const cpus = `${profile.vcpus} vCPU${profile.vcpus === 1 ? '' : 's'}`;
  return [`${profile.memoryMiB} MiB`, cpus, limit, hosts].join(' · ');
}
