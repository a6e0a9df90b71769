// What the extension-host suites share: the environment scripts/vscode/run.mjs sets, and waiting
// for an agent's state through the extension's own store.
import type { Agent, AgentState } from '../../../protocol/api';
import type { ExtensionApi } from '../../../extension/src/extension';

export const repoDir = requiredEnv('AGENTVM_TEST_REPO');
export const brokerUrl = requiredEnv('AGENTVM_TEST_BROKER_URL');
const stateTimeoutMs = Number(process.env.AGENTVM_TEST_STATE_TIMEOUT_MS ?? 480_000);

function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set by scripts/vscode/run.mjs`);
  return value;
}

/** Resolves when the agent reaches one of `states`; rejects on a terminal state or the deadline. */
export function waitForState(
  api: ExtensionApi,
  agentId: string,
  states: AgentState[],
): Promise<Agent> {
  const { store } = api.services;
  return new Promise((resolve, reject) => {
    const check = (agent: Agent | undefined) => {
      if (!agent || agent.id !== agentId) return false;
      if (states.includes(agent.state)) {
        finish();
        resolve(agent);
        return true;
      }
      if (
        ['failed', 'cancelled'].includes(agent.state) ||
        (agent.state === 'done' && !states.includes('done'))
      ) {
        finish();
        reject(new Error(`agent ${agentId} ended ${agent.state}: ${agent.stateReason ?? ''}`));
        return true;
      }
      return false;
    };
    const timer = setTimeout(() => {
      finish();
      reject(
        new Error(
          `agent ${agentId} did not reach ${states.join('/')} in ${stateTimeoutMs} ms; last ${store.get(agentId)?.state}`,
        ),
      );
    }, stateTimeoutMs);
    const subscription = store.onDidChangeAgent(({ agent }) => void check(agent));
    const finish = () => {
      clearTimeout(timer);
      subscription.dispose();
    };
    check(store.get(agentId));
  });
}
