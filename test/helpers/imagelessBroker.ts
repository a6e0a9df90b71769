import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BrokerClient } from '../../client/BrokerClient';
import { bundleRepository } from '../../client/repoBundle';
import { AgentvmError } from '../../protocol/errors';
import { Broker } from '../../server/Broker';
import { silentLogger } from '../../server/log';
import { ProfileRegistry } from '../../server/profiles/ProfileRegistry';
import { QemuDriver } from '../../server/vmm/qemu/QemuDriver';
import type { GuestImage, VmmDriver } from '../../server/vmm/VmmDriver';
import { makeTempRepo } from './repos';
import { until } from './until';

/** An image record whose files do not exist; only the (refusing) test driver ever sees it. */
const unbootableImage: GuestImage = {
  key: 'test-image',
  kernelPath: '/nonexistent/kernel',
  initramfsPath: '/nonexistent/initramfs',
  rootfsPath: '/nonexistent/rootfs.ext4',
};

/** A driver for tests that must never reach a VM: every boot fails with VM_FAILED. */
export const unusedDriver: VmmDriver = {
  name: 'unused',
  boot: () => Promise.reject(new AgentvmError('VM_FAILED', 'this test driver boots no VMs')),
  restore: () => Promise.reject(new Error('restore is not expected in this test')),
  attach: () => Promise.reject(new Error('attach is not expected in this test')),
};

/** Boots nothing (as {@link unusedDriver}), but stops leftover VMs as the QEMU driver does. */
export const leftoverStoppingDriver: VmmDriver = {
  ...unusedDriver,
  stopLeftover: (vmDir) => new QemuDriver({ logger: silentLogger }).stopLeftover(vmDir),
};

/**
 * A driver whose VMs never finish booting (until the start is called off), so agents stay
 * `starting`: for what the API and CLI do with an agent that has not ended.
 */
export const hangingDriver: VmmDriver = {
  name: 'hanging',
  boot: (_spec, options) =>
    new Promise((_resolve, reject) => {
      options?.signal?.addEventListener('abort', () => reject(options.signal?.reason));
    }),
  restore: () => Promise.reject(new AgentvmError('VM_FAILED', 'restore is not expected here')),
  attach: () => Promise.reject(new AgentvmError('VM_FAILED', 'attach is not expected here')),
};

export interface ImagelessBroker {
  broker: Broker;
  url: string;
  token: string;
  dataDir: string;
  /** Stops the broker and removes its directories. */
  stop(): Promise<void>;
}

/**
 * A real broker (store, HTTP API, event stream) on a free loopback port that never boots a VM:
 * enough for API, CLI and bad-input tests. It knows one profile, `plain`. With `image: 'missing'`
 * it has no guest image (so it refuses new agents); with `'unbootable'` (the default) it accepts
 * them and each fails at once when its VM will not boot (with `driver: hangingDriver`, each stays
 * `starting` or `queued` instead).
 */
export async function startImagelessBroker(
  options: { image?: 'missing' | 'unbootable'; driver?: VmmDriver } = {},
): Promise<ImagelessBroker> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-broker-'));
  const profilesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-profiles-'));
  fs.writeFileSync(
    path.join(profilesDir, 'plain.json'),
    JSON.stringify({ name: 'plain', command: 'true' }),
  );
  const broker = createImagelessBroker(dataDir, { ...options, profileDirs: [profilesDir] });
  const { url, token } = await broker.start();
  return {
    broker,
    url,
    token,
    dataDir,
    stop: async () => {
      await broker.stop();
      for (const dir of [dataDir, profilesDir]) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface BrokerWithBootSlotTaken extends ImagelessBroker {
  client: BrokerClient;
  /** A repository the agents are delegated from. */
  repo: string;
  /** Delegates a task with the `plain` profile; the agent stays `queued`. */
  newAgent(): Promise<string>;
}

/**
 * An imageless broker with one boot slot (AGENTVM_MAX_BOOTS=1), which a first agent holds for
 * good (its VM never boots, see {@link hangingDriver}): every agent a test makes after it stays
 * `queued`, not ended. `stop` also removes the repository and restores AGENTVM_MAX_BOOTS.
 */
export async function startBrokerWithBootSlotTaken(): Promise<BrokerWithBootSlotTaken> {
  const savedMaxBoots = process.env.AGENTVM_MAX_BOOTS;
  const restoreMaxBoots = () => {
    if (savedMaxBoots === undefined) delete process.env.AGENTVM_MAX_BOOTS;
    else process.env.AGENTVM_MAX_BOOTS = savedMaxBoots;
  };
  process.env.AGENTVM_MAX_BOOTS = '1';
  const repo = makeTempRepo();
  let harness: ImagelessBroker | undefined;
  try {
    harness = await startImagelessBroker({ driver: hangingDriver });
    const client = new BrokerClient({ url: harness.url, token: harness.token });
    const newAgent = async () => {
      const upload = await bundleRepository(repo);
      return (await client.createAgent({ text: 'do it', profile: 'plain', repo: upload })).id;
    };
    const blocker = await newAgent();
    await until(
      async () => (await client.getAgent(blocker)).state === 'starting',
      'the first agent holds the boot slot',
      2_000,
    );
    const started = harness;
    return {
      ...started,
      client,
      repo,
      newAgent,
      stop: async () => {
        await started.stop();
        fs.rmSync(repo, { recursive: true, force: true });
        restoreMaxBoots();
      },
    };
  } catch (error) {
    await harness?.stop();
    fs.rmSync(repo, { recursive: true, force: true });
    restoreMaxBoots();
    throw error;
  }
}

/**
 * A broker on `dataDir`, not started, that boots no VM and loads profiles from `profileDirs` only
 * (none by default). With `image: 'missing'` it has no guest image, so it refuses new agents; with
 * `'unbootable'` (the default) it accepts them and each fails when its VM will not boot (unless
 * `driver` is {@link hangingDriver}: then they stay `starting`).
 */
export function createImagelessBroker(
  dataDir: string,
  options: { image?: 'missing' | 'unbootable'; profileDirs?: string[]; driver?: VmmDriver } = {},
): Broker {
  return new Broker({
    dataDir,
    port: 0,
    logger: silentLogger,
    driver: options.driver ?? unusedDriver,
    loadImage: () => {
      if (options.image === 'missing') {
        throw new AgentvmError('IMAGE_MISSING', 'no guest image in this test');
      }

      return unbootableImage;
    },
    profiles: new ProfileRegistry(options.profileDirs ?? []),
    version: 'test',
  });
}
