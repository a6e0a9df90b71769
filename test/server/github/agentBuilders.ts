import type { Agent, AgentEvent, AgentResult } from '../../../protocol/api';
import { anAgent } from '../../helpers/anAgent';
import type { AgentWork } from './agentWorkFixture';

/** A finished agent as the broker reports it, for the agent's work in `work`. */
export function finishedAgent(work: AgentWork, overrides: Partial<Agent> = {}): Agent {
  return anAgent({
    id: 'a1b2',
    title: 'Widgets crash on empty input',
    text: '# Widgets crash on empty input\n\nTask from GitHub issue [octo/widgets#5](https://github.com/octo/widgets/issues/5), opened by @carol (open).\n\nFix it.\n',
    owner: 'alice',
    state: 'done',
    createdAt: 1,
    updatedAt: 2,
    endedAt: 3,
    repo: { ...anAgent().repo, path: work.userDir, baseCommit: work.baseCommit },
    result: { headCommit: work.headCommit, commits: resultOf(work).commits, exitCode: 0 },
    bootPath: 'cold',
    accel: 'tcg',
    ...overrides,
  });
}

export function resultOf(work: AgentWork): AgentResult {
  return {
    baseCommit: work.baseCommit,
    headCommit: work.headCommit,
    commits: work.commits.map((commit) => ({ sha: commit.sha, subject: commit.subject })),
    patch: '',
    exitCode: 0,
  };
}

/** A timeline with two review rounds; the second answer names its request. */
export function reviewEvents(agentId = 'a1b2'): AgentEvent[] {
  const event = (
    id: number,
    kind: AgentEvent['kind'],
    message: string,
    data: Record<string, unknown> = {},
  ): AgentEvent => ({
    id,
    agentId,
    at: id,
    kind,
    message,
    data,
  });
  return [
    event(1, 'state', 'running'),
    event(2, 'review', 'Keep the old API?', { requestId: 'r1' }),
    event(3, 'answer', 'Yes, deprecate it.', { requestId: 'r1' }),
    event(4, 'review', 'Run the slow tests?', { requestId: 'r2' }),
    event(5, 'answer', 'No.'),
    event(6, 'done', 'finished'),
  ];
}
