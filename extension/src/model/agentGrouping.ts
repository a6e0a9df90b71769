import type { Agent, AgentState } from '../../../protocol/api';

/** The groups of the Agents tree, in display order: what needs the user comes first. */
export const agentGroups = ['needsReview', 'active', 'done', 'failed'] as const;
export type AgentGroup = (typeof agentGroups)[number];

export const agentGroupLabels: Record<AgentGroup, string> = {
  needsReview: 'Needs review',
  active: 'Running',
  done: 'Done',
  failed: 'Failed or cancelled',
};

const groupOfState: Record<AgentState, AgentGroup> = {
  pausing: 'needsReview',
  awaiting_review: 'needsReview',
  restoring: 'needsReview',
  reviewing: 'needsReview',
  queued: 'active',
  starting: 'active',
  running: 'active',
  done: 'done',
  failed: 'failed',
  cancelled: 'failed',
};

export function groupOf(state: AgentState): AgentGroup {
  return groupOfState[state];
}

/**
 * Whether the agent is in the tree's "Needs review" group: it asked for a human, from the moment
 * its VM is being paused until it is resumed. The status bar counts these, so the two agree.
 */
export function needsReview(agent: Agent): boolean {
  return groupOf(agent.state) === 'needsReview';
}

/**
 * Splits agents into the tree's groups (empty groups left out), newest first within a group
 * except "Needs review", where the longest-waiting request comes first.
 */
export function groupAgents(agents: readonly Agent[]): { group: AgentGroup; agents: Agent[] }[] {
  const buckets = new Map<AgentGroup, Agent[]>();
  for (const agent of agents) {
    const group = groupOf(agent.state);
    const bucket = buckets.get(group) ?? [];
    bucket.push(agent);
    buckets.set(group, bucket);
  }

  const result: { group: AgentGroup; agents: Agent[] }[] = [];
  for (const group of agentGroups) {
    const bucket = buckets.get(group);
    if (!bucket) continue;

    bucket.sort((a, b) =>
      group === 'needsReview' ? reviewTime(a) - reviewTime(b) : b.createdAt - a.createdAt,
    );
    result.push({ group, agents: bucket });
  }

  return result;
}

function reviewTime(agent: Agent): number {
  return agent.review?.requestedAt ?? agent.updatedAt;
}
