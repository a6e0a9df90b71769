import fs from 'node:fs';
import path from 'node:path';
import { AgentvmError } from '../../protocol/errors';
import { isProcessAlive } from '../vmm/pidLock';

/**
 * One broker per data directory: `broker.pid` holds the pid of the broker that owns it, from its
 * start until it stops. A second broker on the same directory would reattach the same VMs and
 * compete with the first for their sockets. A file left by a broker that died is taken over.
 */
export class DataDirLock {
  private constructor(private readonly file: string) {}

  static acquire(dataDir: string): DataDirLock {
    const file = path.join(dataDir, 'broker.pid');
    for (;;) {
      try {
        fs.writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o644 });
        return new DataDirLock(file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }

      const owner = Number(fs.readFileSync(file, 'utf8').trim());
      // This process may own it already (a broker restarted in-process, as tests do).
      const ownerIsOther = Number.isInteger(owner) && owner > 0 && owner !== process.pid;
      if (ownerIsOther && isProcessAlive(owner)) {
        throw new AgentvmError(
          'DATA_DIR_IN_USE',
          `another agentvm broker (pid ${owner}) uses the data directory ${dataDir}`,
        );
      }
      fs.rmSync(file, { force: true });
    }
  }

  release(): void {
    try {
      if (fs.readFileSync(this.file, 'utf8').trim() === String(process.pid)) fs.rmSync(this.file);
    } catch {
      // Already gone.
    }
  }
}
