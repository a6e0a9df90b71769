import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/** File in the data directory that holds the audit chain's key (mode 0600, like the token). */
export const AUDIT_KEY_FILE = 'audit.key';

const auditKeyFileSchema = z.object({
  /** 32 random bytes, hex. */
  key: z.string().regex(/^[0-9a-f]{64}$/),
  /** The first row id chained with the key; rows before it predate the key (plain sha256). */
  keyedFromId: z.number().int().positive(),
});

/** The audit chain's secret and where keyed rows begin. */
export interface AuditKey {
  key: Buffer;
  keyedFromId: number;
}

/**
 * Reads the data directory's audit key, creating it on first use. `firstKeyedId` says which row
 * the new key starts at (the next row to be written); it is only consulted when creating.
 */
export function loadOrCreateAuditKey(dataDir: string, firstKeyedId: () => number): AuditKey {
  const file = path.join(dataDir, AUDIT_KEY_FILE);
  if (!fs.existsSync(file)) {
    const created = { key: crypto.randomBytes(32).toString('hex'), keyedFromId: firstKeyedId() };
    try {
      // 'wx': two brokers racing on one data directory must not each write their own key.
      fs.writeFileSync(file, JSON.stringify(created) + '\n', { mode: 0o600, flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }

  const parsed = auditKeyFileSchema.parse(JSON.parse(fs.readFileSync(file, 'utf8')));
  return { key: Buffer.from(parsed.key, 'hex'), keyedFromId: parsed.keyedFromId };
}
