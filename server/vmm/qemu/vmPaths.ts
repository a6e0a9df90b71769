import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The longest unix socket path the kernel accepts (`sun_path` is 108 bytes with its NUL). */
export const MAX_UNIX_SOCKET_PATH_BYTES = 107;

/** Every file the QEMU driver keeps for one VM. */
export interface VmPaths {
  vmDir: string;
  /** qcow2 overlay on the shared read-only rootfs: the VM's disk state. */
  overlay: string;
  /** Serial console, appended to across restores. */
  consoleLog: string;
  /** QEMU's own stdout/stderr. */
  qemuLog: string;
  pidFile: string;
  snapshotState: string;
  snapshotTemp: string;
  /** The snapshot's RAM, when it is kept apart from the state (see SparseMemoryFile.ts). */
  snapshotMemory: string;
  snapshotMemoryTemp: string;
  /** Where the sockets live: vmDir, or a short directory under the OS temp dir. */
  socketDir: string;
  qmpSocket: string;
  controlSocket: string;
  /** QEMU connects here to stream a snapshot to the driver. */
  migrationSocket: string;
}

const socketNames = { qmp: 'qmp.sock', control: 'control.sock', migration: 'migrate.sock' };

/**
 * The files of the VM in `vmDir`. Sockets go in vmDir unless one of their paths would exceed
 * {@link MAX_UNIX_SOCKET_PATH_BYTES}; then they go in `<tmpDir>/agentvm-<hash of vmDir>`, which is
 * stable, so a restarted broker finds the same sockets again.
 */
export function vmPaths(vmDir: string, tmpDir: string = os.tmpdir()): VmPaths {
  const resolved = path.resolve(vmDir);
  const longestName = Object.values(socketNames).reduce((a, b) => (a.length >= b.length ? a : b));
  const fits = Buffer.byteLength(path.join(resolved, longestName)) <= MAX_UNIX_SOCKET_PATH_BYTES;
  const hash = crypto.createHash('sha256').update(resolved).digest('hex').slice(0, 16);
  const socketDir = fits ? resolved : path.join(tmpDir, `agentvm-${hash}`);

  return {
    vmDir: resolved,
    overlay: path.join(resolved, 'overlay.qcow2'),
    consoleLog: path.join(resolved, 'console.log'),
    qemuLog: path.join(resolved, 'qemu.log'),
    pidFile: path.join(resolved, 'qemu.pid'),
    snapshotState: path.join(resolved, 'snapshot.state'),
    snapshotTemp: path.join(resolved, 'snapshot.state.tmp'),
    snapshotMemory: path.join(resolved, 'snapshot.memory'),
    snapshotMemoryTemp: path.join(resolved, 'snapshot.memory.tmp'),
    socketDir,
    qmpSocket: path.join(socketDir, socketNames.qmp),
    controlSocket: path.join(socketDir, socketNames.control),
    migrationSocket: path.join(socketDir, socketNames.migration),
  };
}

/** Remove what a dead QEMU leaves behind: its sockets, and the socket dir when it is not vmDir. */
export function removeSockets(paths: VmPaths): void {
  for (const socket of [paths.qmpSocket, paths.controlSocket, paths.migrationSocket]) {
    fs.rmSync(socket, { force: true });
  }

  if (paths.socketDir !== paths.vmDir) fs.rmSync(paths.socketDir, { recursive: true, force: true });
}
