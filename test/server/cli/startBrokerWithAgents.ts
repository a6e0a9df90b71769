import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AgentState } from '../../../protocol/api';
import { agentDir, storePath } from '../../../server/config/paths';
import { Store, type AgentRecord } from '../../../server/store/Store';
import { anAgentRecord } from '../../helpers/anAgentRecord';
import { createImagelessBroker } from '../../helpers/imagelessBroker';

export interface BrokerWithAgents {
  url: string;
  token: string;
  /** Stops the broker and removes its data directory. */
  stop(): Promise<void>;
}

/**
 * A broker that boots no VM, started on a data directory that already holds one agent (of this
 * user) per entry of `agents`, id → state: states no VM-less broker reaches by itself. An agent
 * awaiting review gets a snapshot file, so the broker keeps it waiting when it starts. `fields`
 * sets more of an agent's record, by id.
 */
export async function startBrokerWithAgents(
  agents: Record<string, AgentState>,
  fields: Record<string, Partial<AgentRecord>> = {},
): Promise<BrokerWithAgents> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-cli-agents-'));
  const store = new Store(storePath(dataDir));
  try {
    for (const [id, state] of Object.entries(agents)) {
      const ended = ['done', 'failed', 'cancelled'].includes(state);
      const statePath = path.join(agentDir(id, dataDir), 'snapshot', 'state.bin');
      if (state === 'awaiting_review') {
        fs.mkdirSync(path.dirname(statePath), { recursive: true });
        fs.writeFileSync(statePath, 'not a real snapshot');
      }
      store.insertAgent(
        anAgentRecord({
          id,
          owner: os.userInfo().username,
          state,
          stateReason: state === 'failed' ? 'the agent command exited with code 1' : null,
          endedAt: ended ? Date.now() : null,
          review:
            state === 'awaiting_review'
              ? { requestId: 'r1', message: 'ok?', requestedAt: Date.now() }
              : null,
          snapshot:
            state === 'awaiting_review'
              ? { statePath, sizeBytes: 19, checksum: 'sha256:00', durationMs: 1 }
              : null,
          ...fields[id],
        }),
      );
      store.appendEvent(id, { kind: 'state', message: state });
    }
  } finally {
    store.close();
  }

  const broker = createImagelessBroker(dataDir);
  const { url, token } = await broker.start();
  return {
    url,
    token,
    stop: async () => {
      await broker.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
