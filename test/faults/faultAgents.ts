import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { BrokerClient } from '../../client/BrokerClient';
import type { Agent, AgentState } from '../../protocol/api';
import { storePath } from '../../server/config/paths';
import { qemuPidsMentioning } from '../helpers/vmBroker';

/** The fault tests' profile directory (profile `faults`: 256 MiB, a scripted agent). */
export const faultProfilesDir = path.join(__dirname, 'profiles');

/** Polls until the agent is in one of `states`; throws with its timeline if it ends elsewhere. */
export async function waitForState(
  client: BrokerClient,
  id: string,
  states: AgentState[],
  timeoutMs = 300_000,
): Promise<Agent> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const agent = await client.getAgent(id);
    if (states.includes(agent.state)) return agent;

    const ended = ['done', 'failed', 'cancelled'].includes(agent.state);
    if (ended || Date.now() > deadline) {
      const timeline = (await client.events(id)).map((event) => `  ${event.kind} ${event.message}`);
      throw new Error(
        `agent ${id} is ${agent.state} (${agent.stateReason}), wanted ${states.join('|')}\n${timeline.join('\n')}`,
      );
    }

    await sleep(200);
  }
  throw new Error(`agent ${id} never reached ${states.join('|')}`);
}

/** Polls (every 5 ms, at most `timeoutMs`) until one of `files` exists. */
export async function waitForAnyFile(files: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!files.some((file) => fs.existsSync(file))) {
    if (Date.now() > deadline)
      throw new Error(`none of ${files.join(', ')} appeared within ${timeoutMs} ms`);

    await sleep(5);
  }
}

/** What the store file says about an agent, read directly (for a broker that is not running). */
export function storedAgent(
  dataDir: string,
  id: string,
): { state: string; vmPid: number | null; snapshot: unknown } {
  const db = new Database(storePath(dataDir), { readonly: true, fileMustExist: true });
  try {
    const row = db
      .prepare('SELECT state, vm_pid, snapshot_json FROM agents WHERE id = ?')
      .get(id) as
      { state: string; vm_pid: number | null; snapshot_json: string | null } | undefined;
    if (!row) throw new Error(`agent ${id} is not in the store`);

    return {
      state: row.state,
      vmPid: row.vm_pid,
      snapshot: row.snapshot_json ? JSON.parse(row.snapshot_json) : null,
    };
  } finally {
    db.close();
  }
}

/** SIGKILLs QEMU processes whose command line mentions `dir` (only ones this test started there). */
export function killVmsUnder(dir: string): number {
  const pids = qemuPidsMentioning(dir);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // It ended on its own meanwhile.
    }
  }
  return pids.length;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
