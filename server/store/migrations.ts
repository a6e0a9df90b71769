/**
 * Schema migrations, applied in order inside one transaction each. A store file from an older
 * agentvm is brought up to date on open; never edit a migration that has shipped, add one.
 */
export const migrations: readonly string[] = [
  // 1: users, tokens, agents, events
  `
  CREATE TABLE users (
    name TEXT PRIMARY KEY,
    admin INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE tokens (
    token_hash TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users(name),
    created_at INTEGER NOT NULL
  );
  CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    profile TEXT NOT NULL,
    profile_json TEXT NOT NULL,
    state TEXT NOT NULL,
    state_reason TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    ended_at INTEGER,
    repo_json TEXT NOT NULL,
    review_json TEXT,
    last_progress TEXT,
    last_output_json TEXT NOT NULL DEFAULT '[]',
    result_json TEXT,
    boot_path TEXT,
    accel TEXT,
    vm_pid INTEGER,
    guest_seq INTEGER NOT NULL DEFAULT 0,
    snapshot_json TEXT,
    exit_code INTEGER
  );
  CREATE INDEX agents_owner ON agents(owner);
  CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    data_json TEXT NOT NULL DEFAULT '{}'
  );
  CREATE INDEX events_agent ON events(agent_id, id);
  `,
  // 2: the GitHub issue an agent was delegated from, and accumulated VM time for cost limits
  `
  ALTER TABLE agents ADD COLUMN issue_ref TEXT;
  ALTER TABLE agents ADD COLUMN vm_seconds REAL NOT NULL DEFAULT 0;
  `,
  // 3: snapshot checksums name their algorithm (`sha256:<hex>`, now mostly `xxh64:<hex>`)
  `
  UPDATE agents
  SET snapshot_json = json_set(
    json_remove(snapshot_json, '$.sha256'),
    '$.checksum',
    'sha256:' || json_extract(snapshot_json, '$.sha256')
  )
  WHERE snapshot_json IS NOT NULL AND json_extract(snapshot_json, '$.sha256') IS NOT NULL;
  `,
];
