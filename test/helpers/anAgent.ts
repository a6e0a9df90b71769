import { agentSchema, type Agent } from '../../protocol/api';

/** A valid agent as the broker would send it, with `overrides` applied; validated by the schema. */
export function anAgent(overrides: Partial<Agent> = {}): Agent {
  return agentSchema.parse({
    id: 'a1',
    title: 'Fix the parser',
    text: 'Fix the parser',
    profile: 'demo',
    owner: 'tester',
    state: 'running',
    stateReason: null,
    createdAt: 1_000,
    updatedAt: 1_000,
    endedAt: null,
    repo: {
      baseCommit: 'a'.repeat(40),
      branch: 'main',
      uncommitted: [],
      uncommittedIncluded: false,
    },
    review: null,
    lastProgress: null,
    lastOutput: [],
    result: null,
    bootPath: null,
    accel: null,
    ...overrides,
  });
}
