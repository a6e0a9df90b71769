import type { Logger } from '../log';
import type { Store } from '../store/Store';
import type { AgentJournal } from './AgentJournal';
import type { AgentLocks } from './AgentLocks';
import type { AgentManagerOptions } from './AgentManager';

/**
 * What every part of the agent life cycle shares, one per {@link AgentManager}: its options, the
 * store, the journal every change goes through, and the per-agent locks.
 */
export interface AgentContext {
  options: AgentManagerOptions;
  store: Store;
  log: Logger;
  journal: AgentJournal;
  locks: AgentLocks;
}

/** An error's message for an agent's state reason. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
