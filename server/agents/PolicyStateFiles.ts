import fs from 'node:fs';
import path from 'node:path';
import { agentDir } from '../config/paths';

/** What survives a broker restart about an agent's policy (agents/<id>/policy.json, mode 0600). */
export interface PersistedPolicy {
  /** Secret name → placeholder: a restored VM still holds the old placeholders in memory. */
  placeholders: Record<string, string>;
  /** The allowlist, as changed at run time; the profile's until then. */
  allowedHosts?: string[];
  /** VM-seconds already charged when the cost budget was last granted again (after a cost pause). */
  costBaselineSeconds?: number;
}

/**
 * Each agent's policy.json: read whole and written whole. It never holds a secret's value, only
 * placeholders, so it may stay on disk for as long as the agent does.
 */
export class PolicyStateFiles {
  constructor(private readonly dataDir: string) {}

  /** The agent's saved policy state; an empty one when there is none yet (or it is unreadable). */
  load(agentId: string): PersistedPolicy {
    try {
      return JSON.parse(fs.readFileSync(this.file(agentId), 'utf8')) as PersistedPolicy;
    } catch {
      return { placeholders: {} };
    }
  }

  /** Merges `change` into the saved state; nothing is written for an agent whose folder is gone. */
  update(agentId: string, change: Partial<PersistedPolicy>): void {
    const file = this.file(agentId);
    if (!fs.existsSync(path.dirname(file))) return;

    fs.writeFileSync(file, JSON.stringify({ ...this.load(agentId), ...change }), { mode: 0o600 });
  }

  private file(agentId: string): string {
    return path.join(agentDir(agentId, this.dataDir), 'policy.json');
  }
}
