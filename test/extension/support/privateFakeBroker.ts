// A fake broker (fakeBroker.ts) of a suite's own, started from inside the extension host, for the
// suites that take the broker away: the run's broker (real or fake) stays up for the others.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as vscode from 'vscode';
import { BrokerClient } from '../../../client/BrokerClient';
import { bundleRepository } from '../../../client/repoBundle';
import type { Agent } from '../../../protocol/api';
import type { BrokerConnection } from '../../../extension/src/broker/BrokerConnection';
import type { ComponentLog } from '../../../extension/src/log';

const startTimeoutMs = 30_000;

/** A logger that keeps lines in memory, printed when a test fails. */
export function memoryLog(lines: string[]): ComponentLog {
  const write = (level: string) => (message: string) => lines.push(`${level} ${message}`);
  return {
    trace: write('trace'),
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
  };
}

export class PrivateFakeBroker {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dataDir: string,
    readonly url: string,
    readonly client: BrokerClient,
  ) {}

  /** Starts `fakeBroker.ts` with node and tsx from the repository the harness names. */
  static async start(): Promise<PrivateFakeBroker> {
    const root = process.env.AGENTVM_TEST_ROOT;
    if (!root) throw new Error('AGENTVM_TEST_ROOT must be set by scripts/vscode/run.mjs');

    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-private-broker-'));
    const child = spawn(
      'node',
      ['--import', 'tsx', 'test/extension/support/fakeBroker.ts', '--port', '0', '--data', dataDir],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const port = await new Promise<number>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(
        () => reject(new Error(`the private fake broker did not start: ${output}`)),
        startTimeoutMs,
      );
      const collect = (chunk: Buffer) => {
        output += chunk.toString();
        const match = /listening (\d+)/.exec(output);
        if (!match) return;

        clearTimeout(timer);
        resolve(Number(match[1]));
      };
      child.stdout?.on('data', collect);
      child.stderr?.on('data', collect);
      child.on('exit', (code) =>
        reject(new Error(`the private fake broker exited ${code}: ${output}`)),
      );
    });
    const url = `http://127.0.0.1:${port}`;
    const token = fs.readFileSync(path.join(dataDir, 'token'), 'utf8').trim();
    return new PrivateFakeBroker(child, dataDir, url, new BrokerClient({ url, token }));
  }

  /** A stand-in for the extension's BrokerConnection that always hands out this broker's client. */
  connection(): BrokerConnection {
    const connection: Pick<BrokerConnection, 'url' | 'getClient' | 'onDidChange'> = {
      url: this.url,
      getClient: async () => this.client,
      onDidChange: () => ({ dispose: () => undefined }) as vscode.Disposable,
    };
    return connection as BrokerConnection;
  }

  /** Delegates `text` from `repoDir` with the fake's scripted agent. */
  async delegate(repoDir: string, text: string): Promise<Agent> {
    const repo = await bundleRepository(repoDir, { allowDirty: true });
    return this.client.createAgent({ text, title: text, profile: 'demo', repo });
  }

  /** Calls one of the fake's test hooks (see fakeBroker.ts). */
  async hook(name: 'outage' | 'after-list' | 'emit', params: Record<string, string>) {
    const query = new URLSearchParams(params).toString();
    const response = await fetch(`${this.url}/v1/test/${name}?${query}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.clientToken()}` },
    });
    if (!response.ok) throw new Error(`hook ${name}: HTTP ${response.status}`);
  }

  /** Resolves once the broker answers again (after an outage). */
  async waitUp(timeoutMs = 20_000): Promise<void> {
    for (const started = Date.now(); ;) {
      try {
        await this.client.health();
        return;
      } catch (error) {
        if (Date.now() - started > timeoutMs) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  stop(): void {
    this.child.kill();
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }

  private clientToken(): string {
    return fs.readFileSync(path.join(this.dataDir, 'token'), 'utf8').trim();
  }
}

/** Polls `probe` every 50 ms until it is true; throws after `timeoutMs`. */
export async function until(what: string, probe: () => boolean, timeoutMs = 20_000): Promise<void> {
  for (const started = Date.now(); !probe();) {
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
