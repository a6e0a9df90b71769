import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Profile, ProfileProblem } from '../../protocol/api';
import type { GuestTask } from '../../protocol/control';
import { AgentvmError } from '../../protocol/errors';
import { packageRoot } from '../config/paths';
import type { Logger } from '../log';
import { loadProfileFile, type LoadedProfile, type ProfileHost } from './loadProfileFile';
import { scanProfileDirectories, type ProfileScan } from './scanProfileDirectories';

export interface ProfileRegistryOptions {
  /** Total memory of the host in MiB (os.totalmem() by default); a bigger profile is refused. */
  hostMemoryMiB?: number;
}

/** Every profile file as last read: what each name stands for, and every file's problem. */
interface ProfileState {
  /** The last file naming a profile wins, whether it is usable or not. */
  byName: Map<
    string,
    { kind: 'loaded'; loaded: LoadedProfile } | { kind: 'problem'; problem: ProfileProblem }
  >;
  problems: ProfileProblem[];
  /** Host files the profiles copy into VMs: one appearing or disappearing changes a profile's validity. */
  referencedFiles: string[];
  fingerprint: string;
}

/**
 * Profiles come from three places, later ones overriding earlier ones by name: the ones shipped
 * in this package (profiles/<name>/profile.json), the user's (~/.config/agentvm/profiles), and
 * AGENTVM_PROFILES_DIR. A file that cannot be used never stops the broker: its problem is kept
 * (every file's, not only the first), listed by {@link problems} and logged, and asking for its
 * profile fails with PROFILE_INVALID naming the file and what is wrong.
 *
 * Files are read again whenever they change, without a restart. Every lookup lists the directories
 * and stats the profile files (a few system calls) and re-reads everything only when that
 * fingerprint changed. This is chosen over "re-read when older than a second" because an edit
 * followed at once by `agentvm delegate` must not get the old content, and an unchanged directory
 * costs no file reads or JSON parsing. An agent keeps the profile it was created with: the broker
 * stores a copy in the agent's record.
 */
export class ProfileRegistry {
  private readonly host: ProfileHost;
  /** Every name ever loaded → its profile file's directory, for agents whose profile changed since. */
  private readonly baseDirs = new Map<string, string>();
  private state: ProfileState;
  private logger?: Logger;
  private readonly loggedProblems = new Set<string>();

  constructor(
    private readonly directories: string[] = defaultProfileDirectories(),
    options: ProfileRegistryOptions = {},
  ) {
    this.host = { memoryMiB: options.hostMemoryMiB ?? Math.floor(os.totalmem() / 2 ** 20) };
    this.state = this.load(scanProfileDirectories(directories));
  }

  /** The usable profiles, by name. */
  list(): Profile[] {
    return [...this.current().byName.values()]
      .flatMap((entry) => (entry.kind === 'loaded' ? [entry.loaded.profile] : []))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Every profile file (or directory) that cannot be used, in load order. */
  problems(): ProfileProblem[] {
    return [...this.current().problems];
  }

  get(name: string): Profile {
    return this.entry(name).profile;
  }

  /**
   * The files a profile copies into the VM, read from the host, as the task's file list. Given a
   * stored profile (an agent's copy), its own `files` are read, relative to the directory its name
   * was last loaded from, even if the profile file changed or broke since.
   */
  taskFiles(profile: string | Profile): GuestTask['files'] {
    const { profile: spec, baseDir } =
      typeof profile === 'string'
        ? this.entry(profile)
        : { profile, baseDir: this.baseDir(profile.name) };

    return Object.entries(spec.files).map(([guestPath, hostPath]) => {
      const source = path.resolve(baseDir, hostPath);
      try {
        const stat = fs.statSync(source);
        return {
          path: guestPath,
          mode: stat.mode & 0o777,
          data: fs.readFileSync(source).toString('base64'),
        };
      } catch (error) {
        throw new AgentvmError(
          'PROFILE_INVALID',
          `profile "${spec.name}" copies ${source} into the VM, which cannot be read: ${(error as Error).message}`,
        );
      }
    });
  }

  /** Directory of the profile's file; relative host paths in the profile resolve against it. */
  baseDir(name: string): string {
    this.current();
    const baseDir = this.baseDirs.get(name);
    if (baseDir === undefined) throw this.notFound(name);

    return baseDir;
  }

  /** Logs every current problem now, and each new one when the files change later. */
  logProblemsTo(logger: Logger): void {
    this.logger = logger;
    this.logNewProblems(this.current().problems);
  }

  private entry(name: string): LoadedProfile {
    const entry = this.current().byName.get(name);
    if (!entry) throw this.notFound(name);

    if (entry.kind === 'problem') {
      const { file, reason, hint } = entry.problem;
      throw new AgentvmError(
        'PROFILE_INVALID',
        `profile "${name}" cannot be used: ${file}: ${reason}`,
        hint,
      );
    }

    return entry.loaded;
  }

  private notFound(name: string): AgentvmError {
    const known = this.list()
      .map((profile) => profile.name)
      .join(', ');
    return new AgentvmError(
      'PROFILE_NOT_FOUND',
      `no profile named "${name}" (known: ${known || 'none'})`,
      `The broker reads profiles from ${this.directories.join(', ')} (NAME.json or NAME/profile.json); AGENTVM_PROFILES_DIR must be set where the broker runs, before \`agentvm serve\`. \`agentvm profiles\` lists them and any it cannot use.`,
    );
  }

  /** The state for the files as they are now, read again if any of them changed. */
  private current(): ProfileState {
    const scan = scanProfileDirectories(this.directories);
    if (fingerprint(scan.fingerprint, this.state.referencedFiles) === this.state.fingerprint) {
      return this.state;
    }

    this.state = this.load(scan);
    return this.state;
  }

  private load(scan: ProfileScan): ProfileState {
    const byName: ProfileState['byName'] = new Map();
    const problems = [...scan.problems];
    const referencedFiles: string[] = [];
    // Which directory and file gave each name: a later directory overrides a name, but two files
    // of one directory giving the same name leave it ambiguous (see sameDirectoryProblem).
    const origins = new Map<string, { directory: string; file: string }>();
    const ambiguous = new Set<string>();
    for (const { file, directory } of scan.files) {
      const result = loadProfileFile(file, this.host);
      referencedFiles.push(...result.referencedFiles);
      const name = result.kind === 'loaded' ? result.loaded.profile.name : result.problem.name;
      const earlier = origins.get(name);
      origins.set(name, { directory, file });
      if (earlier?.directory !== directory) ambiguous.delete(name);
      if (earlier?.directory === directory) {
        const problem = sameDirectoryProblem(name, file, earlier.file);
        byName.set(name, { kind: 'problem', problem });
        this.baseDirs.set(name, path.dirname(file));
        // A third file of the same name adds only its own problem: the others have theirs.
        if (!ambiguous.has(name)) problems.push(sameDirectoryProblem(name, earlier.file, file));
        problems.push(problem);
        ambiguous.add(name);
        continue;
      }

      if (result.kind === 'loaded') {
        byName.set(result.loaded.profile.name, result);
        this.baseDirs.set(result.loaded.profile.name, result.loaded.baseDir);
      } else {
        byName.set(result.problem.name, result);
        this.baseDirs.set(result.problem.name, path.dirname(file));
        problems.push(result.problem);
      }
    }

    this.logNewProblems(problems);
    return {
      byName,
      problems,
      referencedFiles,
      fingerprint: fingerprint(scan.fingerprint, referencedFiles),
    };
  }

  /** One warning per problem, when it first appears; a fixed problem that comes back is new. */
  private logNewProblems(problems: ProfileProblem[]): void {
    if (!this.logger) return;

    const keys = new Set(problems.map((problem) => `${problem.file}\0${problem.reason}`));
    for (const key of this.loggedProblems) if (!keys.has(key)) this.loggedProblems.delete(key);
    for (const problem of problems) {
      const key = `${problem.file}\0${problem.reason}`;
      if (this.loggedProblems.has(key)) continue;

      this.loggedProblems.add(key);
      this.logger.warn('profile.invalid', {
        profile: problem.name,
        file: problem.file,
        reason: problem.reason,
      });
    }
  }
}

function fingerprint(scanFingerprint: string, referencedFiles: string[]): string {
  const present = referencedFiles.map((file) => (fs.existsSync(file) ? '1' : '0')).join('');
  return `${scanFingerprint}\n${present}`;
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

/**
 * Two files in one directory that give the same profile name. Neither is used: a profile carries
 * an agent's allowlist and secrets, so guessing which one was meant could hand an agent the wrong
 * permissions. Each file gets its own problem, naming the other.
 */
function sameDirectoryProblem(name: string, file: string, otherFile: string): ProfileProblem {
  return {
    name,
    file,
    reason: `profile name "${name}" is also given by ${otherFile} in the same directory, so neither is used`,
    hint: 'Give each profile file in one directory its own "name", or remove one of the two files.',
  };
}
