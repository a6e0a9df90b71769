import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BrokerClient } from '../../client/BrokerClient';
import type { Agent, AgentState } from '../../protocol/api';
import { Broker } from '../../server/Broker';
import { dataDir, packageRoot } from '../../server/config/paths';
import { createLogger, silentLogger } from '../../server/log';
import { defaultProfileDirectories, ProfileRegistry } from '../../server/profiles/ProfileRegistry';
import { ensureImage } from '../../server/vmm/image/ensureImage';
import { QemuDriver } from '../../server/vmm/qemu/QemuDriver';
import type { GuestImage, VmTemplate } from '../../server/vmm/VmmDriver';

/** Extras for tests of the policy layer; every field is optional. */
export interface VmBrokerOptions {
  /** A directory of test profiles, loaded after the shipped ones. */
  profilesDir?: string;
  /** Environment `{ env }` secret sources are read from (instead of process.env). */
  secretEnv?: NodeJS.ProcessEnv;
}

/**
 * A real broker for VM tests: real QEMU driver, the shared cached guest image (built on first use,
 * in the default data directory so every test run shares it), a private data directory for the
 * store and the agents. `stop()` removes every agent's VM and files.
 */
export class VmBroker {
  readonly dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-vmtest-'));
  broker!: Broker;
  client!: BrokerClient;
  url!: string;
  token!: string;
  private image!: GuestImage;
  /** Changes the image the broker sees (e.g. another key, as after an image rebuild). */
  imageOverride?: (image: GuestImage) => GuestImage;

  constructor(private readonly options: VmBrokerOptions = {}) {}

  async start(): Promise<void> {
    this.image = await sharedImage();
    await this.startBroker();
  }

  /** Starts a new broker process object on the same data directory (a broker restart). */
  async restart(): Promise<void> {
    await this.broker.stop();
    await this.startBroker();
  }

  private async startBroker(): Promise<void> {
    const logger = process.env.AGENTVM_TEST_LOG ? createLogger({ level: 'debug' }) : silentLogger;
    this.broker = new Broker({
      dataDir: this.dataDir,
      port: 0,
      logger,
      driver: new QemuDriver({ logger }),
      loadImage: () => (this.imageOverride ? this.imageOverride(this.image) : this.image),
      version: 'test',
      profiles: this.options.profilesDir
        ? new ProfileRegistry([...defaultProfileDirectories({}), this.options.profilesDir])
        : undefined,
      secretEnv: this.options.secretEnv,
    });
    const started = await this.broker.start();
    this.url = started.url;
    this.token = started.token;
    this.client = new BrokerClient({ url: this.url, token: this.token });
  }

  /**
   * Builds (or finds) the broker's template for one-vCPU VMs of `memoryMiB` with the egress
   * device, the shape the test profiles use: for suites that build it explicitly
   * (AGENTVM_TEMPLATES=manual), never behind an agent's back.
   */
  ensureTemplate(memoryMiB = 256): Promise<VmTemplate> {
    return this.broker.manager.templates!.ensure({
      image: this.image,
      memoryMiB,
      vcpus: 1,
      egress: true,
    });
  }

  /** Polls until the agent is in one of `states`; fails with its timeline and console if it ends elsewhere. */
  async waitFor(id: string, states: AgentState[], timeoutMs = 240_000): Promise<Agent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const agent = await this.client.getAgent(id);
      if (states.includes(agent.state)) return agent;

      const ended = ['done', 'failed', 'cancelled'].includes(agent.state);
      if (ended || Date.now() > deadline) {
        throw new Error(
          `agent ${id} is ${agent.state} (${agent.stateReason}), wanted ${states.join('|')}\n${await this.describe(id)}`,
        );
      }

      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  /** Timeline and console tail of an agent, for failure messages. */
  async describe(id: string): Promise<string> {
    const events = await this.client.events(id).catch(() => []);
    const consoleLog = await this.client.consoleLog(id).catch(() => '');
    const timeline = events.map((event) => `  ${event.kind} ${event.message}`).join('\n');
    return `agent dir: ${path.join(this.dataDir, 'agents', id)}\ntimeline:\n${timeline}\nconsole tail:\n${consoleLog.split('\n').slice(-25).join('\n')}`;
  }

  async stop(): Promise<void> {
    if (this.broker) {
      for (const agent of await this.client.listAgents().catch(() => [])) {
        await this.client.remove(agent.id, { force: true }).catch(() => undefined);
      }
      await this.broker.stop();
    }
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

let imagePromise: Promise<GuestImage> | undefined;

/** The guest image for this checkout; built once per machine and cached under the data dir. */
export function sharedImage(): Promise<GuestImage> {
  if (!fs.existsSync(path.join(packageRoot(), 'dist', 'guest', 'guest-agent.js'))) {
    execFileSync('node', ['scripts/build.mjs'], { cwd: packageRoot(), stdio: 'inherit' });
  }
  imagePromise ??= ensureImage({ dataDir: process.env.AGENTVM_IMAGE_DATA_DIR ?? dataDir() });
  return imagePromise;
}

/** Pids of QEMU processes whose command line mentions `needle` (an agent's directory). */
export function qemuPidsMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;

    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes('qemu-system') && cmdline.includes(needle)) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

/** A fresh copy of the demo repository (test/fixtures/demo-repo as one commit). */
export function makeDemoRepo(): string {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-demo-')), 'demo-repo');
  execFileSync('sh', [path.join(packageRoot(), 'scripts', 'make-demo-repo.sh'), dir], {
    stdio: 'pipe',
  });
  return dir;
}
