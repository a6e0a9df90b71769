import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import {
  guestMessageSchema,
  guestRequestSchema,
  type GuestEvent,
  type GuestMessage,
  type GuestRequestInput,
  type GuestTask,
  type HostMessage,
} from '../../protocol/control';
import { gitSystemConfig } from '../../server/vmm/image/stageRootfs';

const repoRoot = path.resolve(__dirname, '../..');

/** Bundles the guest agent and agentctl the way scripts/build.mjs does (node18 target). */
export async function bundleGuest(outDir: string): Promise<{ agent: string; agentctl: string }> {
  const out = {
    agent: path.join(outDir, 'guest-agent.js'),
    agentctl: path.join(outDir, 'agentctl.js'),
  };
  for (const [source, outfile] of [
    ['guest/agent.ts', out.agent],
    ['guest/agentctl.ts', out.agentctl],
  ]) {
    await build({
      entryPoints: [path.join(repoRoot, source)],
      outfile,
      bundle: true,
      platform: 'node',
      target: 'node18',
      format: 'cjs',
      logLevel: 'warning',
    });
  }

  return out;
}

/**
 * Plays the broker's side of the control channel against a real guest agent process: listens on
 * a unix socket, collects every message, and lets a test send host messages.
 */
export class GuestHarness {
  readonly dir: string;
  readonly workspace: string;
  readonly binDir: string;
  readonly messages: GuestMessage[] = [];
  /** Lines the harness could not parse as guest messages (must stay empty). */
  readonly badLines: string[] = [];
  private server: net.Server | null = null;
  private socket: net.Socket | null = null;
  private child: ChildProcess | null = null;
  private waiters: (() => void)[] = [];
  private stderr = '';

  private constructor(dir: string) {
    this.dir = dir;
    this.workspace = path.join(dir, 'workspace');
    this.binDir = path.join(dir, 'bin');
  }

  /** Starts a guest agent from `bundle` with its sockets and workspace in a fresh temp dir. */
  static async start(
    bundle: { agent: string; agentctl: string },
    options: { agentUser?: string } = {},
  ): Promise<GuestHarness> {
    const harness = new GuestHarness(fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-guest-')));
    // An agent user other than ourselves must be able to reach the workspace and the wrapper.
    fs.chmodSync(harness.dir, 0o755);
    await harness.listen();
    fs.mkdirSync(harness.binDir);
    fs.writeFileSync(harness.gitSystemConfig, gitSystemConfig, { mode: 0o644 });
    fs.writeFileSync(
      path.join(harness.binDir, 'agentctl'),
      `#!/bin/sh\nexec "${process.execPath}" "${bundle.agentctl}" "$@"\n`,
      { mode: 0o755 },
    );

    harness.child = spawn(process.execPath, [bundle.agent], {
      env: {
        PATH: process.env.PATH,
        HOME: harness.dir,
        AGENTVM_CONTROL_PATH: path.join(harness.dir, 'control.sock'),
        AGENTVM_WORKSPACE: harness.workspace,
        AGENTVM_RUN_DIR: path.join(harness.dir, 'run'),
        AGENTVM_AGENTCTL_SOCKET: path.join(harness.dir, 'run', 'agentctl.sock'),
        AGENTVM_AGENT_USER: options.agentUser ?? '',
        GIT_CONFIG_SYSTEM: harness.gitSystemConfig,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    harness.child.stderr?.on('data', (chunk: Buffer) => (harness.stderr += chunk.toString()));
    return harness;
  }

  /** The task environment: agentctl (the wrapper) and node on PATH. */
  get taskEnv(): Record<string, string> {
    return { PATH: `${this.binDir}:${process.env.PATH}` };
  }

  /** Stands in for the image's /etc/gitconfig (its fallback commit identity). */
  get gitSystemConfig(): string {
    return path.join(this.dir, 'gitconfig');
  }

  events(): { seq: number; event: GuestEvent }[] {
    return this.messages.flatMap((m) =>
      m.type === 'event' ? [{ seq: m.seq, event: m.event }] : [],
    );
  }

  send(message: HostMessage | string): void {
    if (!this.socket) throw new Error('the guest agent is not connected');

    this.socket.write((typeof message === 'string' ? message : JSON.stringify(message)) + '\n');
  }

  /** Resolves with the first message (from index `from`) that matches; fails after timeoutMs. */
  async waitFor<T extends GuestMessage>(
    match: (message: GuestMessage) => message is T,
    options?: { from?: number; timeoutMs?: number },
  ): Promise<T>;
  async waitFor(
    match: (message: GuestMessage) => boolean,
    options?: { from?: number; timeoutMs?: number },
  ): Promise<GuestMessage>;
  async waitFor(
    match: (message: GuestMessage) => boolean,
    options: { from?: number; timeoutMs?: number } = {},
  ): Promise<GuestMessage> {
    const deadline = Date.now() + (options.timeoutMs ?? 15_000);
    for (;;) {
      const found = this.messages.slice(options.from ?? 0).find(match);
      if (found) return found;

      const leftMs = deadline - Date.now();
      if (leftMs <= 0) {
        throw new Error(
          `no matching guest message; got ${JSON.stringify(this.messages.map(summary))}\nguest stderr:\n${this.stderr}`,
        );
      }

      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, leftMs);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits for a guest event of `kind`. */
  async waitForEvent<K extends GuestEvent['kind']>(
    kind: K,
    options: { from?: number; timeoutMs?: number } = {},
  ): Promise<Extract<GuestEvent, { kind: K }>> {
    const message = await this.waitFor((m) => m.type === 'event' && m.event.kind === kind, options);
    return (message as Extract<GuestMessage, { type: 'event' }>).event as Extract<
      GuestEvent,
      { kind: K }
    >;
  }

  /** Sends a request and resolves with its response. */
  async request(id: number, request: GuestRequestInput) {
    const from = this.messages.length;
    // Parsed as the broker does before it forwards a request: defaults filled in.
    this.send({ type: 'request', id, request: guestRequestSchema.parse(request) });
    return (await this.waitFor((m) => m.type === 'response' && m.id === id, { from })) as Extract<
      GuestMessage,
      { type: 'response' }
    >;
  }

  /** Closes the current connection as a restarting broker would; the guest reconnects. */
  async reconnect(): Promise<void> {
    const old = this.socket;
    const connected = this.messages.length;
    old?.destroy();
    await this.waitFor((m) => m.type === 'ready', { from: connected });
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }

    this.socket?.destroy();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private listen(): Promise<void> {
    const server = net.createServer((socket) => {
      this.socket?.destroy();
      this.socket = socket;
      let pending = '';
      socket.on('data', (chunk: Buffer) => {
        pending += chunk.toString('utf8');
        let newline = pending.indexOf('\n');
        while (newline !== -1) {
          this.take(pending.slice(0, newline));
          pending = pending.slice(newline + 1);
          newline = pending.indexOf('\n');
        }
      });
      socket.on('error', () => socket.destroy());
    });
    this.server = server;
    return new Promise((resolve) => server.listen(path.join(this.dir, 'control.sock'), resolve));
  }

  private take(line: string): void {
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      json = undefined;
    }
    const parsed = guestMessageSchema.safeParse(json);
    if (!parsed.success) {
      this.badLines.push(line);
      return;
    }

    this.messages.push(parsed.data);
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((wake) => wake());
  }
}

function summary(message: GuestMessage): string {
  if (message.type === 'event') return `event#${message.seq}:${message.event.kind}`;
  if (message.type === 'log') return `log:${message.message}`;
  return message.type;
}

/** Makes a temp git repository with one commit and returns the task fields describing it. */
export function makeRepo(dir: string): { repo: string; baseCommit: string; bundle: string } {
  const repo = path.join(dir, 'origin');
  fs.mkdirSync(repo);
  const run = (...args: string[]) =>
    execFileSync('git', args, { cwd: repo, env: gitEnv() }).toString().trim();
  run('init', '-q', '-b', 'main');
  fs.writeFileSync(path.join(repo, 'hello.txt'), 'hello\n');
  run('add', '-A');
  run('commit', '-q', '-m', 'first');
  return { repo, baseCommit: run('rev-parse', 'HEAD'), bundle: bundleOf(repo, 'main') };
}

/** `git bundle create` of `branch`, base64, as the broker sends it. */
export function bundleOf(repo: string, branch: string): string {
  const file = path.join(repo, '..', `send-${Date.now()}.bundle`);
  execFileSync('git', ['bundle', 'create', '-q', file, branch], { cwd: repo, env: gitEnv() });
  const data = fs.readFileSync(file).toString('base64');
  fs.rmSync(file);
  return data;
}

export function gitEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GIT_AUTHOR_NAME: 'test',
    GIT_AUTHOR_EMAIL: 'test@example.invalid',
    GIT_COMMITTER_NAME: 'test',
    GIT_COMMITTER_EMAIL: 'test@example.invalid',
  };
}

/** A task for the harness's repository with sensible defaults. */
export function makeTask(
  harness: GuestHarness,
  repo: { baseCommit: string; bundle: string },
  overrides: Partial<GuestTask>,
): GuestTask {
  return {
    agentId: 'a-test',
    text: 'Do the thing.\nSecond line.',
    title: 'The thing',
    command: 'true',
    env: harness.taskEnv,
    repo: { kind: 'bundle', data: repo.bundle },
    baseCommit: repo.baseCommit,
    branch: 'main',
    timeLimitMs: 0,
    files: [],
    ...overrides,
  };
}
