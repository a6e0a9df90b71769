import fs from 'node:fs';
import path from 'node:path';

/**
 * Makes the directory of an agent's listener socket 0700 and owned by this process's user
 * (refusing one that another user owns or that is a symlink), and removes a stale socket left in
 * it. Only the broker's user, which runs the VMs' relays, may then connect: the listener an agent's
 * connection arrives on is its identity.
 */
export function prepareSocketPath(socketPath: string): void {
  const dir = path.dirname(socketPath);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });

  const stat = fs.lstatSync(dir);
  if (!stat.isDirectory()) throw new Error(`${dir} is not a directory`);
  if (process.getuid && stat.uid !== process.getuid())
    throw new Error(`${dir} belongs to uid ${stat.uid}, not to the broker's user`);
  fs.chmodSync(dir, 0o700);

  const existing = fs.lstatSync(socketPath, { throwIfNoEntry: false });
  if (!existing) return;
  if (!existing.isSocket()) throw new Error(`${socketPath} exists and is not a socket`);
  fs.unlinkSync(socketPath);
}
