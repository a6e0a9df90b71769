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

export function imagesDir(root = dataDir()): string {
  return path.join(root, 'images');
}

export function agentsDir(root = dataDir()): string {
  return path.join(root, 'agents');
}

export function agentDir(agentId: string, root = dataDir()): string {
  return path.join(agentsDir(root), agentId);
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
