import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AGENTCTL_SOCKET_PATH, GUEST_WORKSPACE_DIR } from '../protocol/control';

/** The unprivileged user the agent command runs as. */
export interface AgentUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Everything the guest agent reads from its environment, resolved once at start. */
export interface GuestConfig {
  /** Unix socket to connect to instead of the virtio-serial port (host tests). */
  controlPath: string | null;
  workspaceDir: string;
  /** Holds the task file, the agentctl socket and temporary export files. */
  runDir: string;
  agentctlSocketPath: string;
  /** null: run everything as the guest agent's own user (host tests). */
  agentUser: AgentUser | null;
  /** Whether `sync` may set the system clock; off by default outside a VM. */
  setClock: boolean;
  /** Hash of the guest agent's own code, reported in `ready`. */
  version: string;
}

const DEFAULT_AGENT_UID = 1000;

/** Reads the guest agent's settings from `env` (AGENTVM_* overrides for tests). */
export function loadGuestConfig(env: NodeJS.ProcessEnv = process.env): GuestConfig {
  const controlPath = env.AGENTVM_CONTROL_PATH || null;
  const agentctlSocketPath = env.AGENTVM_AGENTCTL_SOCKET || AGENTCTL_SOCKET_PATH;
  const userName = env.AGENTVM_AGENT_USER ?? 'agent';

  return {
    controlPath,
    workspaceDir: env.AGENTVM_WORKSPACE || GUEST_WORKSPACE_DIR,
    runDir: env.AGENTVM_RUN_DIR || path.dirname(agentctlSocketPath),
    agentctlSocketPath,
    agentUser: userName === '' ? null : lookUpUser(userName),
    setClock: env.AGENTVM_SET_CLOCK ? env.AGENTVM_SET_CLOCK === '1' : controlPath === null,
    version: ownVersion(),
  };
}

/** Finds `name` in /etc/passwd; the image creates it as uid/gid 1000 if the file lacks it. */
export function lookUpUser(name: string, passwdPath = '/etc/passwd'): AgentUser {
  let passwd = '';
  try {
    passwd = fs.readFileSync(passwdPath, 'utf8');
  } catch {
    // No passwd file: fall through to the image's documented default.
  }

  for (const line of passwd.split('\n')) {
    const [entryName, , uid, gid, , home] = line.split(':');
    if (entryName === name && uid !== undefined && gid !== undefined) {
      return { name, uid: Number(uid), gid: Number(gid), home: home || `/home/${name}` };
    }
  }

  return { name, uid: DEFAULT_AGENT_UID, gid: DEFAULT_AGENT_UID, home: `/home/${name}` };
}

function ownVersion(): string {
  try {
    return createHash('sha256').update(fs.readFileSync(__filename)).digest('hex').slice(0, 12);
  } catch {
    return 'unknown';
  }
}
