import fs from 'node:fs';
import os from 'node:os';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { AgentvmError } from '../protocol/errors';
import { AgentManager } from './agents/AgentManager';
import { AgentPolicy, type AgentPolicyOptions } from './agents/AgentPolicy';
import { DataDirLock } from './config/dataDirLock';
import { dataDir as defaultDataDir, secureDataDir, storePath, tokenPath } from './config/paths';
import { answerClientError } from './http/answerClientError';
import { createApp } from './http/createApp';
import { EventStreamServer } from './http/eventStream';
import { registerSecret, type Logger } from './log';
import { ProfileRegistry } from './profiles/ProfileRegistry';
import { Store } from './store/Store';
import type { GuestImage, VmmDriver } from './vmm/VmmDriver';

export interface BrokerOptions {
  dataDir?: string;
  host?: string;
  /** TCP port; 0 picks a free one. */
  port?: number;
  logger: Logger;
  driver: VmmDriver;
  loadImage: (dataDir: string) => GuestImage;
  profiles?: ProfileRegistry;
  version: string;
  /** End VMs on shutdown instead of leaving them running for the next broker to reattach. */
  stopVmsOnShutdown?: boolean;
  /** Egress proxy options (tests trust an extra upstream CA); defaults suit production. */
  egress?: AgentPolicyOptions['proxy'];
  /** Where `{ env }` secret sources are read; process.env by default. */
  secretEnv?: NodeJS.ProcessEnv;
}

/**
 * One broker process: the store, the agent manager, the HTTP API and the event stream. Starts in
 * order (store, recovery, listener) and stops in reverse (stop accepting, detach or stop VMs,
 * close the store); stopping twice is harmless.
 */
export class Broker {
  readonly dataDir: string;
  readonly store: Store;
  readonly manager: AgentManager;
  readonly profiles: ProfileRegistry;
  readonly policy: AgentPolicy;
  private server?: Server;
  private lock?: DataDirLock;
  private stream?: EventStreamServer;
  private stopping?: Promise<void>;

  constructor(private readonly options: BrokerOptions) {
    this.dataDir = options.dataDir ?? defaultDataDir();
    const looserMode = secureDataDir(this.dataDir);
    if (looserMode !== null)
      options.logger.warn('store.data_dir_tightened', {
        dataDir: this.dataDir,
        from: looserMode.toString(8),
        to: '700',
      });
    this.store = new Store(storePath(this.dataDir));
    this.profiles = options.profiles ?? new ProfileRegistry();
    this.profiles.logProblemsTo(options.logger);
    this.policy = new AgentPolicy({
      db: this.store.db,
      dataDir: this.dataDir,
      logger: options.logger,
      profileBaseDir: (name) => this.profileBaseDir(name),
      env: options.secretEnv,
      proxy: options.egress,
    });
    this.manager = new AgentManager({
      store: this.store,
      driver: options.driver,
      profiles: this.profiles,
      loadImage: () => options.loadImage(this.dataDir),
      dataDir: this.dataDir,
      logger: options.logger,
      policy: this.policy,
    });
  }

  /** The local admin token, created on first start and kept in the data directory (mode 0600). */
  ensureLocalToken(): string {
    const file = tokenPath(this.dataDir);
    if (fs.existsSync(file)) {
      const token = fs.readFileSync(file, 'utf8').trim();
      if (this.store.userForToken(token)) {
        registerSecret(token);
        return token;
      }
    }

    const token = this.store.createToken(os.userInfo().username, true);
    fs.writeFileSync(file, token + '\n', { mode: 0o600 });
    registerSecret(token);
    return token;
  }

  async start(): Promise<{ url: string; token: string }> {
    this.lock = DataDirLock.acquire(this.dataDir);
    const token = this.ensureLocalToken();
    await this.policy.start();
    await this.manager.recover();

    const app = createApp({
      store: this.store,
      manager: this.manager,
      profiles: this.profiles,
      policy: this.policy,
      logger: this.options.logger,
      version: this.options.version,
      liveVmMs: (id) => this.manager.liveVmMs(id),
    });
    const host = this.options.host ?? '127.0.0.1';
    const port = this.options.port ?? 7878;
    this.server = await new Promise<Server>((resolve, reject) => {
      const server = serve({ fetch: app.fetch, hostname: host, port }, () =>
        resolve(server as Server),
      );
      (server as Server).once('error', (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EADDRINUSE') return reject(error);
        reject(new AgentvmError('PORT_IN_USE', `${host}:${port} is already in use`));
      });
    });
    this.server.on('clientError', answerClientError);
    this.stream = new EventStreamServer(
      {
        store: this.store,
        manager: this.manager,
        logger: this.options.logger,
        liveVmMs: (id) => this.manager.liveVmMs(id),
      },
      this.server,
    );

    const url = `http://${host}:${(this.server.address() as AddressInfo).port}`;
    this.options.logger.info('broker.started', { url, dataDir: this.dataDir });
    return { url, token };
  }

  private profileBaseDir(name: string): string | undefined {
    try {
      return this.profiles.baseDir(name);
    } catch {
      return undefined;
    }
  }

  stop(): Promise<void> {
    this.stopping ??= this.stopInOrder();
    return this.stopping;
  }

  private async stopInOrder(): Promise<void> {
    this.stream?.close();
    if (this.server) {
      const server = this.server;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      });
    }

    await this.manager.shutdown({ stopVms: this.options.stopVmsOnShutdown });
    // Logs the audit head a last time (see AuditHeadRecorder), after the last rows were written.
    await this.policy.close();
    this.store.close();
    this.lock?.release();
    this.options.logger.info('broker.stopped', {});
  }
}
