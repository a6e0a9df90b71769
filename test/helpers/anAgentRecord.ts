import { profileSchema } from '../../protocol/api';
import type { AgentRecord } from '../../server/store/Store';
import { anAgent } from './anAgent';

/**
 * A store record of an agent created now that has not booted a VM, with `overrides` applied. Its
 * profile spec runs `true` under the record's profile name.
 */
export function anAgentRecord(overrides: Partial<AgentRecord> = {}): AgentRecord {
  const now = Date.now();
  const agent = anAgent({ createdAt: now, updatedAt: now });
  return {
    ...agent,
    profileSpec: profileSchema.parse({ name: overrides.profile ?? agent.profile, command: 'true' }),
    vmPid: null,
    guestSeq: 0,
    snapshot: null,
    exitCode: null,
    issueRef: null,
    vmSeconds: 0,
    ...overrides,
  };
}
