import fs from 'node:fs';
import path from 'node:path';
import type { WorkspaceEntry } from '../protocol/control';
import type { AgentUser } from './guestConfig';

/**
 * Writes the broker's checkout into `workspaceDir` and gives every entry to `user`. Plain file
 * system calls in this process: under emulation each process spawn (git clone, checkout) costs
 * hundreds of milliseconds, a file write a fraction of one.
 */
export function writeWorkspace(
  entries: WorkspaceEntry[],
  workspaceDir: string,
  user: AgentUser | null,
): void {
  const root = path.resolve(workspaceDir);
  // This runs as root: no entry may land outside the workspace, also not through a link it made.
  const links: string[] = [];
  for (const entry of entries) {
    const target = path.resolve(root, entry.path);
    const viaLink = links.some((link) => target.startsWith(link + path.sep));
    if (!target.startsWith(root + path.sep) || viaLink) {
      throw new Error(`workspace entry ${JSON.stringify(entry.path)} is outside ${root}`);
    }

    switch (entry.type) {
      case 'dir':
        fs.mkdirSync(target, { mode: entry.mode });
        fs.chmodSync(target, entry.mode);
        break;
      case 'file':
        fs.writeFileSync(target, Buffer.from(entry.data, 'base64'), { mode: entry.mode });
        // The umask may have taken bits (an executable script must stay executable).
        fs.chmodSync(target, entry.mode);
        break;
      case 'symlink':
        fs.symlinkSync(entry.target, target);
        links.push(target);
        break;
    }
    if (user) fs.lchownSync(target, user.uid, user.gid);
  }
}
