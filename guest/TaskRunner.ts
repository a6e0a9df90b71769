import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import path from 'node:path';
import type { GuestEvent, GuestTask } from '../protocol/control';
import type { CommandLauncher } from './CommandLauncher';
import { execSimpleCommand } from './execSimpleCommand';
import { exportResult } from './exportResult';
import type { AgentUser, GuestConfig } from './guestConfig';
import type { GuestLog } from './guestLog';
import { OutputCoalescer } from './OutputCoalescer';
import { PausableDeadline } from './PausableDeadline';
import { baseEnv, killGroup, runProcess } from './runProcess';
import { writeWorkspace } from './writeWorkspace';

/** Grace between SIGTERM and SIGKILL when the time limit stops the command, in milliseconds. */
const LIMIT_KILL_GRACE_MS = 3000;
/** How long to wait for the output pipes to drain after the command exited, in milliseconds. */
const PIPE_DRAIN_MS = 2000;
/** Debian's place for local CA certificates, and the bundle TLS clients read (SSL_CERT_FILE). */
const LOCAL_CA_DIR = '/usr/local/share/ca-certificates/';
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** What the runner needs from the guest agent. */
export interface TaskHost {
  emit(event: GuestEvent): void;
  /** Whether `chars` more characters of output may be queued for the host now. */
  acceptOutput(chars: number): boolean;
  log: GuestLog;
}

/**
 * Runs one task: writes the profile's files, checks the repository out as the agent user, runs
 * the agent command in its own process group with output streaming and the time limit, then
 * exports the agent's commits.
 */
export class TaskRunner {
  private child: ChildProcess | null = null;
  private deadline: PausableDeadline | null = null;
  private killTimer: NodeJS.Timeout | null = null;
  private cancelRequested = false;
  private readonly scratchDir: string;

  constructor(
    private readonly config: GuestConfig,
    readonly task: GuestTask,
    private readonly host: TaskHost,
    /** Becomes the agent command without a fork of this process; spawned directly without it. */
    private readonly launcher?: CommandLauncher,
  ) {
    this.scratchDir = path.join(config.runDir, 'scratch');
  }

  get user(): AgentUser | null {
    return this.config.agentUser;
  }

  get taskFile(): string {
    return path.join(this.config.runDir, 'task.md');
  }

  /** Environment of the agent command (and of review-time `exec` requests). */
  commandEnv(): Record<string, string> {
    return {
      ...baseEnv(this.user),
      AGENTVM_TASK_FILE: this.taskFile,
      AGENTVM_TASK: this.task.text,
      AGENTVM_TASK_TITLE: this.task.title,
      AGENTVM_AGENT_ID: this.task.agentId,
      AGENTVM_AGENTCTL_SOCKET: this.config.agentctlSocketPath,
      ...this.task.env,
    };
  }

  /** The whole life of the task; failures become `error` events, never rejections. */
  async run(): Promise<void> {
    try {
      this.host.emit({ kind: 'phase', phase: 'checkout' });
      this.writeFiles();
      this.trustTaskCertificates();
      await this.checkout();
      if (this.cancelRequested) throw new Error('cancelled before the agent command started');

      this.host.emit({ kind: 'phase', phase: 'running' });
      await this.runCommand();

      this.host.emit({ kind: 'phase', phase: 'exporting' });
      const result = await exportResult(
        this.config.workspaceDir,
        this.task.baseCommit,
        this.user,
        this.scratchDir,
      );
      this.host.emit(result);
    } catch (error) {
      // No result follows a failure here, so the broker must end the agent (fatal); a task the
      // broker cancelled is ended by the broker itself.
      const fatal = !this.cancelRequested;
      this.host.emit({ kind: 'error', message: (error as Error).message, ...(fatal && { fatal }) });
    }
  }

  /** SIGTERM the command's process group, SIGKILL after `graceMs`; false when nothing runs yet. */
  cancel(graceMs: number): boolean {
    this.cancelRequested = true;
    const pid = this.child?.pid;
    if (pid === undefined || this.child?.exitCode !== null || this.child.signalCode !== null) {
      return false;
    }

    killGroup(pid, 'SIGTERM');
    if (!this.killTimer) this.killTimer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
    return true;
  }

  /** Stops the time limit clock while the agent waits for a review answer. */
  setReviewWaiting(waiting: boolean): void {
    if (waiting) this.deadline?.pause();
    else this.deadline?.start();
  }

  private writeFiles(): void {
    for (const file of this.task.files) {
      fs.mkdirSync(path.dirname(file.path), { recursive: true });
      fs.writeFileSync(file.path, Buffer.from(file.data, 'base64'));
      fs.chmodSync(file.path, file.mode);
    }

    fs.mkdirSync(this.config.runDir, { recursive: true });
    fs.writeFileSync(this.taskFile, this.task.text, { mode: 0o644 });
  }

  /**
   * Trust the broker's CA (root-only, so the agent command cannot do it). update-ca-certificates
   * would re-hash every certificate, over a minute under TCG; appending to the bundle that clients
   * are pointed at (SSL_CERT_FILE) is all they need. One task per VM, so this runs once. Only
   * inside a VM: host tests use the host's trust store.
   */
  private trustTaskCertificates(): void {
    if (this.config.controlPath !== null) return;

    for (const file of this.task.files.filter((entry) => entry.path.startsWith(LOCAL_CA_DIR))) {
      const pem = Buffer.from(file.data, 'base64').toString('utf8').trim();
      fs.appendFileSync(CA_BUNDLE, `\n${pem}\n`);
    }
  }

  private async checkout(): Promise<void> {
    const { workspaceDir } = this.config;
    const user = this.user;
    fs.mkdirSync(this.scratchDir, { recursive: true, mode: 0o700 });
    fs.mkdirSync(workspaceDir, { recursive: true });
    if (user) {
      // git and the agent want a writable HOME even if the image did not create one.
      if (!fs.existsSync(user.home)) {
        fs.mkdirSync(user.home, { recursive: true, mode: 0o755 });
        fs.chownSync(user.home, user.uid, user.gid);
      }
      fs.chownSync(this.scratchDir, user.uid, user.gid);
      fs.chownSync(workspaceDir, user.uid, user.gid);
    }

    const { repo } = this.task;
    if (repo.kind === 'tree') {
      writeWorkspace(repo.entries, workspaceDir, user);
      return;
    }

    const bundlePath = path.join(this.scratchDir, 'task.bundle');
    fs.writeFileSync(bundlePath, Buffer.from(repo.data, 'base64'), { mode: 0o600 });
    if (user) fs.chownSync(bundlePath, user.uid, user.gid);
    try {
      // One shell for the three git steps: each process spawned from node costs a few hundred
      // milliseconds under emulation. The clone's origin is a file about to be deleted; the
      // agent's history stands alone.
      const script =
        'set -e; git clone -q --no-checkout "$1" .; git remote remove origin; git checkout -q -B "$2" "$3"';
      const result = await runProcess(
        'sh',
        ['-c', script, 'checkout', bundlePath, this.task.branch, this.task.baseCommit],
        { cwd: workspaceDir, user, env: baseEnv(user) },
      );
      if (result.code !== 0) {
        throw new Error(
          `git checkout of the task's bundle failed: ${result.stderr.toString('utf8').trim()}`,
        );
      }
    } finally {
      fs.rmSync(bundlePath, { force: true });
    }
  }

  private runCommand(): Promise<void> {
    const user = this.user;
    const { workspaceDir } = this.config;
    const env = this.commandEnv();
    // Where it can, the shell becomes the command: a signal that kills it is the `exit` event's.
    const script = execSimpleCommand(this.task.command);
    const child =
      this.launcher?.launch(script, workspaceDir, env) ??
      spawn('sh', ['-c', script], {
        cwd: workspaceDir,
        env,
        uid: user?.uid,
        gid: user?.gid,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    this.child = child;

    // One coalescer for both streams, so the timeline keeps the order the output arrived in.
    const coalescer = new OutputCoalescer(
      (stream, text) => this.host.emit({ kind: 'output', stream, text }),
      undefined,
      (chars) => this.host.acceptOutput(chars),
    );
    const pipes = (['stdout', 'stderr'] as const).map((stream) => {
      // Both ways of starting the command give it piped stdout and stderr.
      const pipe = child[stream] as Readable;
      pipe.on('data', (chunk: Buffer) => coalescer.write(stream, chunk));
      const ended = new Promise<void>((resolve) => pipe.once('close', () => resolve()));
      return { pipe, ended };
    });

    if (this.task.timeLimitMs > 0) {
      this.deadline = new PausableDeadline(this.task.timeLimitMs, () => {
        this.host.emit({
          kind: 'error',
          message: `time limit of ${this.task.timeLimitMs} ms (timeLimitMs) reached; the agent command was stopped`,
        });
        this.cancel(LIMIT_KILL_GRACE_MS);
      });
      this.deadline.start();
    }

    return new Promise((resolve, reject) => {
      child.once('error', (error) => {
        this.finish();
        reject(new Error(`cannot start the agent command: ${error.message}`));
      });
      child.once('exit', (code, signal) => {
        // Whatever the command left running in its group must not change the tree during export.
        killGroup(child.pid as number, 'SIGKILL');
        this.finish();

        const drained = Promise.all(pipes.map((output) => output.ended));
        const bounded = new Promise<void>((done) => setTimeout(done, PIPE_DRAIN_MS).unref());
        void Promise.race([drained, bounded]).then(() => {
          for (const output of pipes) output.pipe.destroy();
          coalescer.end();
          this.host.emit({ kind: 'exit', code, signal });
          resolve();
        });
      });
    });
  }

  private finish(): void {
    this.deadline?.dispose();
    if (this.killTimer) clearTimeout(this.killTimer);
    this.killTimer = null;
  }
}
