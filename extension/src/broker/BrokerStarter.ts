import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { BrokerClient } from '../../../client/BrokerClient';
import { AgentvmError } from '../../../protocol/errors';
import type { ComponentLog } from '../log';

const startPollIntervalMs = 250;
const startTimeoutMs = 20_000;

/**
 * Starts `node <extension>/dist/cli.js serve --port P` when the configured local broker does not
 * answer. The broker outlives the window on purpose: agents keep running when VS Code closes.
 */
export class BrokerStarter {
  private starting: Promise<void> | undefined;
  private child: ChildProcess | undefined;

  constructor(
    private readonly extensionPath: string,
    private readonly logDir: string,
    private readonly log: ComponentLog,
  ) {}

  start(url: string): Promise<void> {
    this.starting ??= this.spawnAndWait(url).finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async spawnAndWait(url: string): Promise<void> {
    const cli = path.join(this.extensionPath, 'dist', 'cli.js');
    if (!existsSync(cli)) {
      throw new AgentvmError(
        'BROKER_UNREACHABLE',
        `no broker answers at ${url} and this installation has no broker to start (${cli} is missing)`,
      );
    }

    const port = new URL(url).port || '7878';
    mkdirSync(this.logDir, { recursive: true });
    const logFile = path.join(this.logDir, 'broker.log');
    const out = openSync(logFile, 'a');
    try {
      this.child = spawn('node', [cli, 'serve', '--port', port], {
        detached: true,
        stdio: ['ignore', out, out],
        env: process.env,
      });
    } finally {
      closeSync(out);
    }
    this.child.unref();
    this.log.info(`started broker pid ${this.child.pid} on port ${port}; its log: ${logFile}`);

    const probe = new BrokerClient({ url, token: '', requestTimeoutMs: 2_000 });
    const deadline = Date.now() + startTimeoutMs;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) break;

      try {
        await probe.health();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, startPollIntervalMs));
      }
    }

    throw new AgentvmError(
      'BROKER_UNREACHABLE',
      `the broker started by the extension did not answer at ${url} within ${startTimeoutMs / 1000} s`,
      `See ${logFile}, or start it yourself with \`agentvm serve\` and turn off agentvm.autoStartBroker.`,
    );
  }

  /** The log file of brokers this extension started. */
  get logUri(): vscode.Uri {
    return vscode.Uri.file(path.join(this.logDir, 'broker.log'));
  }
}
