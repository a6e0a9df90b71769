import type { Agent } from '../../../protocol/api';
import { terminalSafe } from '../terminalSafe';
import { formatDuration } from './formatDuration';

/** Width of the labels of `agentvm show`; values start after them and two spaces. */
const LABEL_WIDTH = 9;

/** What `agentvm show --help` says about its lines. */
export const agentDetailsHelp = `
VM time is how long the agent's VM has run, the time the profile's cost budget
is counted in: time queued, booting or saved while awaiting review does not
count. With it, how the VM started (from a template or a cold boot) and the
accelerator (kvm or tcg). \`delegated\` and \`ended\` are wall-clock times.`;

/**
 * What `agentvm show` prints for one agent: a heading with its id and title, then one labelled
 * line for each thing known of it (what waits on the user first, the task text last). A value
 * that spans lines (a review question, a failure reason, the task) is indented under its first
 * line. `now` is in epoch milliseconds.
 */
export function formatAgentDetails(agent: Agent, now = Date.now()): string[] {
  const lines = [`agent ${agent.id}: ${oneLine(agent.title)}`];
  const field = (label: string, value: string | null | undefined) => {
    if (value === null || value === undefined || value === '') return;

    const [first, ...rest] = terminalSafe(value).trimEnd().split('\n');
    const indent = ' '.repeat(LABEL_WIDTH + 4);
    lines.push(`  ${label.padEnd(LABEL_WIDTH)}  ${first}`);
    for (const line of rest) lines.push(line === '' ? '' : indent + line);
  };

  field('state', agent.state);
  field('reason', agent.stateReason);
  field('review', agent.review?.message);
  field('progress', agent.lastProgress);
  field('result', agent.result && resultLine(agent.result));
  field('VM time', vmTimeLine(agent));
  field(
    'delegated',
    `${timestamp(agent.createdAt)} (${formatDuration((now - agent.createdAt) / 1000)} ago)`,
  );
  if (agent.endedAt !== null) {
    const took = formatDuration((agent.endedAt - agent.createdAt) / 1000);
    field('ended', `${timestamp(agent.endedAt)} (${took} after delegation)`);
  }
  field('profile', agent.profile);
  field('owner', agent.owner);
  field('repo', repoLine(agent.repo));
  field('task', agent.text);
  return lines;
}

function vmTimeLine(agent: Agent): string {
  if (agent.vmSeconds === undefined) return 'not reported (the broker is older than this CLI)';

  const how = [
    agent.bootPath === 'template' ? 'started from a template' : undefined,
    agent.bootPath === 'cold' ? 'cold-booted' : undefined,
    agent.accel ?? undefined,
  ].filter(Boolean);
  return [formatDuration(agent.vmSeconds), ...how].join(', ');
}

function resultLine(result: NonNullable<Agent['result']>): string {
  const exit = result.exitCode === null ? '' : `, agent command exited with ${result.exitCode}`;
  const commits = result.commits.map((commit) => `${commit.sha.slice(0, 12)} ${commit.subject}`);
  return [`${result.commits.length} commit(s)${exit}`, ...commits].join('\n');
}

function repoLine(repo: Agent['repo']): string {
  const where = `${repo.path ? `${repo.path}, ` : ''}${repo.branch} at ${repo.baseCommit.slice(0, 12)}`;
  const count = repo.uncommitted.length;
  if (count === 0) return where;

  return `${where}; ${count} uncommitted file(s) ${repo.uncommittedIncluded ? 'included' : 'left out'}`;
}

/** Epoch milliseconds as `2026-01-05 09:00:00 UTC`. */
function timestamp(ms: number): string {
  return `${new Date(ms).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}

function oneLine(text: string): string {
  return terminalSafe(text)
    .replace(/\s*\n\s*/g, ' ')
    .trim();
}
