import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BrokerClient } from '../../client/BrokerClient';
import { packageRoot, tokenPath } from '../../server/config/paths';

export interface ChildBrokerOptions {
  /** Directory of extra profiles (AGENTVM_PROFILES_DIR). */
  profilesDir?: string;
  /** Link `<dataDir>/images` to this directory, so the broker finds a guest image built elsewhere. */
  imagesDir?: string;
  /** Use this data directory instead of a fresh temporary one (it is still removed by `cleanup`). */
  dataDir?: string;
}

/**
 * The broker as users run it: `node dist/cli.js serve` in its own process, on a fixed loopback port
 * picked free, with its own data directory. Tests can SIGKILL it and start it again on the same
 * data directory; `cleanup` ends it and removes the directory (VMs must be removed first).
 */
export class ChildBroker {
  readonly dataDir: string;
  port = 0;
  url = '';
  token = '';
  client!: BrokerClient;
  process: ChildProcess | undefined;
  /** Everything the broker printed, for failure messages. */
  output = '';

  constructor(private readonly options: ChildBrokerOptions = {}) {
    this.dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-child-'));
    if (options.imagesDir) {
      const link = path.join(this.dataDir, 'images');
      if (!fs.existsSync(link)) fs.symlinkSync(options.imagesDir, link);
    }
  }

  get pid(): number {
    return this.process?.pid ?? 0;
  }

  /** Starts `agentvm serve` and waits until /v1/health answers (at most `timeoutMs`). */
  async start(timeoutMs = 60_000): Promise<void> {
    this.port ||= await freeLoopbackPort();
    this.url = `http://127.0.0.1:${this.port}`;
    const cli = path.join(packageRoot(), 'dist', 'cli.js');
    const env: NodeJS.ProcessEnv = { ...process.env, AGENTVM_DATA_DIR: this.dataDir };
    if (this.options.profilesDir) env.AGENTVM_PROFILES_DIR = this.options.profilesDir;
    delete env.AGENTVM_URL;
    delete env.AGENTVM_TOKEN;

    const child = spawn('node', [cli, 'serve', '--port', String(this.port)], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.process = child;
    child.stdout?.on('data', (chunk: Buffer) => this.keep(chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.keep(chunk));

    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0; attempt < 600; attempt++) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `broker exited during start (${child.exitCode ?? child.signalCode}):\n${this.output}`,
        );
      }

      if (await this.healthy()) break;

      if (Date.now() > deadline)
        throw new Error(`broker did not answer within ${timeoutMs} ms:\n${this.output}`);
      await sleep(100);
    }

    this.token = fs.readFileSync(tokenPath(this.dataDir), 'utf8').trim();
    this.client = new BrokerClient({ url: this.url, token: this.token });
  }

  /** True while the broker process has not exited. */
  get alive(): boolean {
    const child = this.process;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** Sends `signal` to the broker process (only the broker: its VMs are separate processes). */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.process;
    if (!child || !this.alive) return;

    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await Promise.race([exited, sleep(15_000)]);
  }

  /** Resident memory of the broker process in KiB, from /proc. */
  rssKiB(): number {
    const status = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  }

  async cleanup(): Promise<void> {
    await this.kill('SIGTERM');
    await this.kill('SIGKILL');
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }

  private async healthy(): Promise<boolean> {
    try {
      const response = await fetch(`${this.url}/v1/health`, { signal: AbortSignal.timeout(2_000) });
      return response.ok;
    } catch {
      return false;
    }
  }

  private keep(chunk: Buffer): void {
    // The last 64 KiB is enough to explain a failure.
    this.output = (this.output + chunk.toString('utf8')).slice(-65_536);
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
