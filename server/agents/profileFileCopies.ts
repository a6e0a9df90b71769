import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { GuestTask } from '../../protocol/control';
import { AgentvmError } from '../../protocol/errors';
import { readTextIfPresent } from '../readTextIfPresent';

/** Where an agent keeps the copies of its profile's files, in its directory (mode 0600). */
const COPIES_FILE = 'profile-files.json';

const copiesSchema = z.array(
  z.object({ path: z.string(), mode: z.number().int(), data: z.string() }),
);

/**
 * Keeps the files an agent's profile copies into its VM as they are at delegation, so that the
 * agent gets those even if it starts later (queued, or started again after a broker restart) and
 * the profile's files changed or went meanwhile: an agent keeps the profile it was delegated with.
 */
export function saveProfileFiles(agentDirectory: string, files: GuestTask['files']): void {
  fs.writeFileSync(path.join(agentDirectory, COPIES_FILE), JSON.stringify(files), {
    mode: 0o600,
  });
}

/** The copies {@link saveProfileFiles} kept; undefined for an agent delegated before there were any. */
export function loadProfileFiles(agentDirectory: string): GuestTask['files'] | undefined {
  const file = path.join(agentDirectory, COPIES_FILE);
  const text = readTextIfPresent(file);
  if (text === undefined) return undefined;

  const parsed = copiesSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new AgentvmError('VM_FAILED', `the agent's copy of its profile files ${file} is damaged`);
  }
  return parsed.data;
}
