import fs from 'node:fs';
import path from 'node:path';
import { profileSchema, type Profile, type ProfileProblem } from '../../protocol/api';
import { errorCatalog } from '../../protocol/errors';
import { unknownProfileFields } from './unknownProfileFields';

/** A profile file that passed every check. */
export interface LoadedProfile {
  profile: Profile;
  /** The profile file. */
  file: string;
  /** Directory of the profile file; `files` host paths are relative to it. */
  baseDir: string;
}

/** What one profile file turned out to be: a usable profile or a problem, never both. */
export type ProfileFileResult =
  | { kind: 'loaded'; loaded: LoadedProfile; referencedFiles: string[] }
  | { kind: 'problem'; problem: ProfileProblem; referencedFiles: string[] };

export interface ProfileHost {
  /** Total memory of this host in MiB: a VM asking for more cannot start. */
  memoryMiB: number;
}

/**
 * Reads and checks one profile file: JSON, the profile schema, the `files` it copies into the VM,
 * and the VM's memory against the host's. Never throws; every failure is a {@link ProfileProblem}
 * naming the file and saying everything that is wrong with it.
 */
export function loadProfileFile(file: string, host: ProfileHost): ProfileFileResult {
  const baseDir = path.dirname(file);
  const problem = (name: string, reason: string, hint?: string): ProfileFileResult => ({
    kind: 'problem',
    problem: { name, file, reason, hint: hint ?? errorCatalog.PROFILE_INVALID.hint },
    referencedFiles: [],
  });

  let raw: unknown;
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
    raw = JSON.parse(text);
  } catch (error) {
    const reason =
      error instanceof SyntaxError
        ? `not valid JSON: ${withLineAndColumn(error.message, text)}`
        : `cannot be read: ${(error as Error).message}`;
    return problem(impliedName(file), reason);
  }

  const name = declaredName(raw) ?? impliedName(file);
  const parsed = profileSchema.safeParse(raw);
  const issues = [
    ...(parsed.success
      ? []
      : parsed.error.issues.map(
          (issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`,
        )),
    ...unknownProfileFields(raw),
  ];
  if (!parsed.success || issues.length > 0) return problem(name, issues.join('; '));

  const profile = parsed.data;
  const referencedFiles = Object.values(profile.files).map((hostPath) =>
    path.resolve(baseDir, hostPath),
  );
  const missing = Object.values(profile.files).filter(
    (_hostPath, index) => !fs.existsSync(referencedFiles[index]),
  );
  if (missing.length > 0) {
    return {
      ...problem(name, `files: no such file ${missing.join(', ')} (relative to ${baseDir})`),
      referencedFiles,
    };
  }

  // QEMU cannot allocate guest RAM beyond the host's memory and fails with a multi-line error
  // much later. More vcpus than host CPUs are allowed: they are threads, slower but working.
  if (profile.memoryMiB > host.memoryMiB) {
    return {
      ...problem(
        name,
        `memoryMiB ${profile.memoryMiB} is more than this host's ${host.memoryMiB} MiB of memory, so its VM cannot start`,
        `Lower memoryMiB in ${file} to at most ${host.memoryMiB} (leave room for the host); it is read again when it changes.`,
      ),
      referencedFiles,
    };
  }

  return { kind: 'loaded', loaded: { profile, file, baseDir }, referencedFiles };
}

function declaredName(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;

  const name = (raw as { name?: unknown }).name;
  return typeof name === 'string' && name.length > 0 ? name : undefined;
}

/** `x.json` → x; `x/profile.json` → x. */
function impliedName(file: string): string {
  return path.basename(file) === 'profile.json'
    ? path.basename(path.dirname(file))
    : path.basename(file, '.json');
}

/**
 * V8's JSON error names a character offset ("at position 40"); an editor wants a line and a
 * column, so they are added: "at position 40 (line 3, column 12)".
 */
export function withLineAndColumn(message: string, text: string): string {
  return message.replace(/at position (\d+)/, (found, offset: string) => {
    const before = text.slice(0, Number(offset));
    const line = before.split('\n').length;
    const column = before.length - before.lastIndexOf('\n');
    return `${found} (line ${line}, column ${column})`;
  });
}
