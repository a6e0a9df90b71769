import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { profileSchema, type Profile } from '../../protocol/api';
import type { GuestTask } from '../../protocol/control';
import { AgentvmError } from '../../protocol/errors';
import { packageRoot } from '../config/paths';

interface LoadedProfile {
  profile: Profile;
  /** Directory of the profile file; `files` host paths are relative to it. */
  baseDir: string;
}

/**
 * Profiles come from three places, later ones overriding earlier ones by name: the ones shipped
 * in this package (profiles/<name>/profile.json), the user's (~/.config/agentvm/profiles), and
 * AGENTVM_PROFILES_DIR. A profile file that fails validation is reported, not skipped silently.
 */
export class ProfileRegistry {
  private readonly profiles = new Map<string, LoadedProfile>();

  constructor(directories: string[] = defaultProfileDirectories()) {
    for (const directory of directories) this.loadDirectory(directory);
  }

  list(): Profile[] {
    return [...this.profiles.values()]
      .map((entry) => entry.profile)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name: string): Profile {
    return this.entry(name).profile;
  }

  /** The profile's `files`, read from the host, as the task's file list. */
  taskFiles(name: string): GuestTask['files'] {
    const { profile, baseDir } = this.entry(name);
    return Object.entries(profile.files).map(([guestPath, hostPath]) => {
      const source = path.resolve(baseDir, hostPath);
      const stat = fs.statSync(source);
      return {
        path: guestPath,
        mode: stat.mode & 0o777,
        data: fs.readFileSync(source).toString('base64'),
      };
    });
  }

  /** Directory of the profile's file; relative host paths in the profile resolve against it. */
  baseDir(name: string): string {
    return this.entry(name).baseDir;
  }

  private entry(name: string): LoadedProfile {
    const entry = this.profiles.get(name);
    if (!entry) {
      const known = [...this.profiles.keys()].join(', ') || 'none';
      throw new AgentvmError('PROFILE_NOT_FOUND', `no profile named "${name}" (known: ${known})`);
    }

    return entry;
  }

  private loadDirectory(directory: string): void {
    if (!fs.existsSync(directory)) return;

    for (const name of fs.readdirSync(directory).sort()) {
      const candidate = path.join(directory, name);
      const file = fs.statSync(candidate).isDirectory()
        ? path.join(candidate, 'profile.json')
        : candidate;
      if (!file.endsWith('.json') || !fs.existsSync(file)) continue;

      this.loadFile(file);
    }
  }

  private loadFile(file: string): void {
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (error) {
      throw new AgentvmError(
        'VALIDATION_FAILED',
        `profile ${file} is not valid JSON: ${(error as Error).message}`,
      );
    }

    const parsed = profileSchema.safeParse(raw);
    if (!parsed.success) {
      const issues = parsed.error.issues.map(
        (issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`,
      );
      throw new AgentvmError(
        'VALIDATION_FAILED',
        `profile ${file} is invalid: ${issues.join('; ')}`,
      );
    }

    const baseDir = path.dirname(file);
    for (const hostPath of Object.values(parsed.data.files)) {
      if (!fs.existsSync(path.resolve(baseDir, hostPath))) {
        throw new AgentvmError(
          'VALIDATION_FAILED',
          `profile ${file} names a file that does not exist: ${hostPath}`,
        );
      }
    }

    this.profiles.set(parsed.data.name, { profile: parsed.data, baseDir });
  }
}

export function defaultProfileDirectories(env: NodeJS.ProcessEnv = process.env): string[] {
  const configHome = env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  const directories = [
    path.join(packageRoot(), 'profiles'),
    path.join(configHome, 'agentvm', 'profiles'),
  ];
  if (env.AGENTVM_PROFILES_DIR) directories.push(path.resolve(env.AGENTVM_PROFILES_DIR));
  return directories;
}
