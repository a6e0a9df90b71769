import { promises as fs } from 'node:fs';
import * as vscode from 'vscode';
import { BrokerClient } from '../../../client/BrokerClient';
import { AgentvmError } from '../../../protocol/errors';
import { tokenPath } from '../../../server/config/paths';
import type { ComponentLog } from '../log';
import { readSettings } from '../settings';
import { isLocalBrokerUrl } from './isLocalBrokerUrl';
import type { BrokerStarter } from './BrokerStarter';

const SECRET_PREFIX = 'agentvm.token:';

/**
 * Owns the way to the broker: its URL (setting), its token (SecretStorage, or the local broker's
 * token file) and a {@link BrokerClient} built from both. Starts a local broker on demand.
 */
export class BrokerConnection implements vscode.Disposable {
  private client: BrokerClient | undefined;
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly disposables: vscode.Disposable[] = [this.changed];

  /** Fires when the URL or token changed and clients must be rebuilt (streams reopened). */
  readonly onDidChange = this.changed.event;

  constructor(
    private readonly secrets: vscode.SecretStorage,
    private readonly starter: BrokerStarter,
    private readonly log: ComponentLog,
  ) {
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration('agentvm.brokerUrl')) this.reset();
      }),
      secrets.onDidChange((event) => {
        if (event.key.startsWith(SECRET_PREFIX)) this.reset();
      }),
    );
  }

  get url(): string {
    return readSettings().brokerUrl;
  }

  /**
   * A client that has answered a health check. When nothing answers on a local URL and
   * auto-start is on, the broker is started first.
   */
  async getClient(): Promise<BrokerClient> {
    if (this.client) return this.client;

    const url = this.url;
    const client = new BrokerClient({ url, token: await this.token(url) });
    try {
      await client.health();
    } catch (error) {
      const canStart =
        error instanceof AgentvmError &&
        error.code === 'BROKER_UNREACHABLE' &&
        isLocalBrokerUrl(url) &&
        readSettings().autoStartBroker;
      if (!canStart) throw error;

      await this.starter.start(url);
      await client.health();
      // The broker we just started may have written its token file for the first time.
      const started = new BrokerClient({ url, token: await this.token(url) });
      this.client = started;
      return started;
    }

    this.client = client;
    return client;
  }

  /** Stores the token for the current broker URL in SecretStorage. */
  async signIn(token: string): Promise<void> {
    await this.secrets.store(SECRET_PREFIX + this.url, token);
    this.log.info(`token stored for ${this.url}`);
  }

  private async token(url: string): Promise<string> {
    const stored = await this.secrets.get(SECRET_PREFIX + url);
    if (stored) return stored;

    if (!isLocalBrokerUrl(url)) return '';

    try {
      return (await fs.readFile(tokenPath(), 'utf8')).trim();
    } catch {
      return '';
    }
  }

  private reset(): void {
    this.client = undefined;
    this.changed.fire();
  }

  dispose(): void {
    for (const disposable of this.disposables) disposable.dispose();
  }
}
