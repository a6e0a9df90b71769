import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Where agentvm keeps its state. `AGENTVM_DATA_DIR` overrides; otherwise the XDG data home.
 *
 * Layout:
 *   images/<key>/         kernel, initramfs.img, rootfs.ext4, manifest.json (one per image key)
 *   images/cache/         debootstrap root filesystems, keyed by their inputs
 *   agents/<id>/          one VM's overlay, sockets, console log, snapshot and result files
 *   broker.db             the SQLite store
 *   token                 the local admin token (mode 0600)
 */
export function dataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AGENTVM_DATA_DIR) return path.resolve(env.AGENTVM_DATA_DIR);

  const xdg = env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(xdg, 'agentvm');
}

/**
 * Creates the data directory with mode 0700, or takes group and other access away from an existing
 * one (it holds the store, the token, the egress CA and every agent's sockets). Returns the mode it
 * had when it had to be tightened, null otherwise, so the caller can log the change.
 */
export function secureDataDir(root = dataDir()): number | null {
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });

  const mode = fs.statSync(root).mode & 0o777;
  if ((mode & 0o077) === 0) return null;

  fs.chmodSync(root, mode & 0o700);
  return mode;
}

export function imagesDir(root = dataDir()): string {
  return path.join(root, 'images');
}

export function agentsDir(root = dataDir()): string {
  return path.join(root, 'agents');
}

export function agentDir(agentId: string, root = dataDir()): string {
  return path.join(agentsDir(root), agentId);
}

/** The agent's VM serial console, which the VMM driver writes into the agent's VM directory. */
export function agentConsolePath(agentId: string, root = dataDir()): string {
  return path.join(agentDir(agentId, root), 'console.log');
}

export function storePath(root = dataDir()): string {
  return path.join(root, 'broker.db');
}

export function tokenPath(root = dataDir()): string {
  return path.join(root, 'token');
}

/** Root of this package (where package.json is), both from sources (tsx) and from dist bundles. */
export function packageRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    if (require('node:fs').existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`package.json not found above ${__dirname}`);
}
