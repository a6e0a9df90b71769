import fs from 'node:fs';
import path from 'node:path';
import type { ProfileProblem } from '../../protocol/api';

/** The profile files found in a list of directories, in load order. */
export interface ProfileScan {
  /** `DIR/x.json` and `DIR/x/profile.json`, directory by directory, names sorted. */
  files: Array<{ file: string; directory: string }>;
  /** Directories that exist but cannot be listed. */
  problems: ProfileProblem[];
  /** Changes whenever a profile file is added, removed, replaced or written. */
  fingerprint: string;
}

/**
 * Lists the profile files in `directories` without reading them: one readdir per directory and
 * one stat per file, cheap enough to run on every profile lookup. A missing directory is no
 * problem (most users have no ~/.config/agentvm/profiles); one that cannot be listed is.
 */
export function scanProfileDirectories(directories: string[]): ProfileScan {
  const files: ProfileScan['files'] = [];
  const problems: ProfileProblem[] = [];
  const versions: string[] = [];

  for (const directory of directories) {
    let names: string[];
    try {
      names = fs.readdirSync(directory).sort();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue;

      problems.push({
        name: path.basename(directory),
        file: directory,
        reason: `the profile directory cannot be listed: ${(error as Error).message}`,
        hint: 'Make the directory readable by the broker, or remove it.',
      });
      versions.push(`${directory}\0${code}`);
      continue;
    }

    for (const name of names) {
      const file = profileFileOf(path.join(directory, name));
      if (!file) continue;

      files.push({ file, directory });
      versions.push(`${file}\0${version(file)}`);
    }
  }

  return { files, problems, fingerprint: versions.join('\n') };
}

/** The profile file a directory entry stands for, if any. */
function profileFileOf(candidate: string): string | undefined {
  const stat = statOrUndefined(candidate);
  if (stat?.isDirectory()) {
    const file = path.join(candidate, 'profile.json');
    return statOrUndefined(file) ? file : undefined;
  }

  // A dangling symlink named x.json is kept: loading it reports that it cannot be read.
  return candidate.endsWith('.json') ? candidate : undefined;
}

/**
 * What identifies a file's content without reading it. The inode catches editors that save by
 * renaming a new file into place; size and mtime catch writes in place; ctime catches a write that
 * restores the old mtime. Timestamps have nanosecond resolution on the file systems used here.
 */
function version(file: string): string {
  try {
    const stat = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
    if (!stat) return 'absent';

    return `${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
  } catch (error) {
    return `error:${(error as NodeJS.ErrnoException).code}`;
  }
}

function statOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.statSync(file, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}
