import type { Agent } from '../../../protocol/api';
import { terminalSafe } from '../terminalSafe';
import { formatDuration } from './formatDuration';

const columns = [
  { name: 'ID', width: 10 },
  { name: 'STATE', width: 15 },
  { name: 'PROFILE', width: 10 },
  /** How long the agent's VM has run (see {@link agentListHelp}). */
  { name: 'VM TIME', width: 7 },
  { name: 'TITLE', width: 0 },
];

/** The header line of `agentvm ls`. */
export const agentListHeader = columns
  .map((column) => column.name.padEnd(column.width))
  .join('  ')
  .trimEnd();

/** What `agentvm ls --help` says about the columns. */
export const agentListHelp = `
Columns:
  ID, STATE, PROFILE  the agent, its state, its profile
  VM TIME             how long its VM has run (45s, 3m07s, 2h05m), the time
                      the profile's cost budget is counted in: time queued,
                      booting or saved while awaiting review does not count
                      (\`agentvm show ID\` has when it was delegated and when
                      it ended); - when the broker is too old to say
  TITLE               the task's title
Under a row: a pending review's question, how an ended agent ended, or else
its latest progress message.`;

/** Indent of the detail line: under the STATE column, so it reads as part of the row above. */
const detailIndent = ' '.repeat(columns[0].width + 2);

/**
 * The lines `agentvm ls` prints for one agent: its row, whose TITLE is the task's title, and
 * under it the line that matters now: the question it put to the reviewer while a review is
 * pending; how it ended, once it ended (its last progress message would be stale then); otherwise
 * its latest progress message.
 */
export function formatAgentRow(agent: Agent): string[] {
  const vmTime = agent.vmSeconds === undefined ? '-' : formatDuration(agent.vmSeconds);
  const cells = [agent.id, agent.state, agent.profile, vmTime, oneLine(agent.title)];
  const row = cells.map((cell, index) => cell.padEnd(columns[index].width)).join('  ');

  const detail = agent.review
    ? `review: ${oneLine(agent.review.message)}`
    : (endLine(agent) ??
      (agent.lastProgress ? `progress: ${oneLine(agent.lastProgress)}` : undefined));
  return detail ? [row, detailIndent + detail] : [row];
}

function endLine(agent: Agent): string | undefined {
  const reason = agent.stateReason ? `: ${oneLine(agent.stateReason)}` : '';
  switch (agent.state) {
    case 'done':
      return `done: ${agent.result?.commits.length ?? 0} commit(s)`;
    case 'failed':
      return `failed${reason || ': no reason recorded'}`;
    case 'cancelled':
      return `cancelled${reason}`;
    default:
      return undefined;
  }
}

/** Longest detail line; a failure reason can carry a whole console dump (`agentvm logs` has it). */
const MAX_DETAIL_CHARS = 200;

/**
 * A guest's message may hold line breaks and control characters; a table row must not. They are
 * shown before the line is cut, so the cut cannot fall inside an escape sequence.
 */
function oneLine(text: string): string {
  const line = terminalSafe(text)
    .replace(/\s*\n\s*/g, ' ')
    .trim();
  return line.length > MAX_DETAIL_CHARS ? `${line.slice(0, MAX_DETAIL_CHARS - 1)}…` : line;
}
