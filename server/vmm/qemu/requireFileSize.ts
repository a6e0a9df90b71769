import fs from 'node:fs';
import { AgentvmError } from '../../../protocol/errors';

/** Throw SNAPSHOT_CORRUPT unless `filePath` exists with `expectedBytes`; `what` names it. */
export function requireFileSize(filePath: string, expectedBytes: number, what: string): void {
  let sizeBytes: number;
  try {
    sizeBytes = fs.statSync(filePath).size;
  } catch {
    throw new AgentvmError('SNAPSHOT_CORRUPT', `${what} ${filePath} is missing`);
  }

  if (sizeBytes !== expectedBytes) {
    throw new AgentvmError(
      'SNAPSHOT_CORRUPT',
      `${what} ${filePath} has ${sizeBytes} bytes, expected ${expectedBytes}`,
    );
  }
}
