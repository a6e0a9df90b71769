import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleRepository } from '../../client/repoBundle';
import type { GuestMessage, GuestRequest, HostMessage } from '../../protocol/control';
import { Broker } from '../../server/Broker';
import { silentLogger } from '../../server/log';
import { ProfileRegistry } from '../../server/profiles/ProfileRegistry';
import type { ControlChannel } from '../../server/vmm/ControlChannel';
import type {
  GuestImage,
  SnapshotInfo,
  Vm,
  VmExit,
  VmmDriver,
  VmSpec,
} from '../../server/vmm/VmmDriver';
import { makeTempRepo } from './repos';

// A driver whose VMs have no process behind them: a test speaks for their guests. For broker tests
// that need VMs which start at once, keep what the broker sends them, and snapshot on demand.

export const fakeImage: GuestImage = {
  key: 'fake-image',
  kernelPath: '/nonexistent/kernel',
  initramfsPath: '/nonexistent/initramfs',
  rootfsPath: '/nonexistent/rootfs.ext4',
};

/** A VM with no process behind it: the test speaks for its guest and decides its snapshot. */
export class FakeVm implements Vm {
  readonly accel = 'tcg' as const;
  readonly sent: HostMessage[] = [];
  stopped = false;
  private listener: ((message: GuestMessage) => void) | undefined;
  private endProcess!: (exit: VmExit) => void;
  readonly exited = new Promise<VmExit>((resolve) => (this.endProcess = resolve));
  readonly channel = {
    onMessage: (listener: (message: GuestMessage) => void) => {
      this.listener = listener;
      return { dispose: () => (this.listener = undefined) };
    },
    send: (message: HostMessage) => void this.sent.push(message),
    request: (request: GuestRequest) =>
      new Promise<unknown>((answer) => this.requests.push({ request, answer })),
    close: () => undefined,
  } as unknown as ControlChannel;
  /** File-API and exec requests the broker made of the guest; the test answers them. */
  readonly requests: Array<{ request: GuestRequest; answer: (result: unknown) => void }> = [];

  constructor(
    readonly id: string,
    readonly pid: number,
    private readonly vmDir: string,
    private readonly onSnapshot: () => Promise<void>,
  ) {}

  /** A message from the guest agent, as the control channel delivers it. */
  fromGuest(message: GuestMessage): void {
    this.listener?.(message);
  }

  pause = () => Promise.resolve();
  resume = () => Promise.resolve();
  detach = () => undefined;

  async snapshot(): Promise<SnapshotInfo> {
    await this.onSnapshot();
    const statePath = path.join(this.vmDir, 'snapshot.state');
    fs.writeFileSync(statePath, 'device state');
    this.endProcess({ code: 0, signal: null, consoleTail: [] });
    return { statePath, sizeBytes: 12, checksum: 'xxh64:0', durationMs: 5 };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.endProcess({ code: null, signal: 'SIGKILL', consoleTail: [] });
  }
}

/** Boots FakeVms at once; `beforeReady` and `onSnapshot` stand for what happens on the host meanwhile. */
export class FakeDriver implements VmmDriver {
  readonly name = 'fake';
  readonly vms: FakeVm[] = [];
  beforeReady: () => void = () => undefined;
  onSnapshot: () => Promise<void> = () => Promise.resolve();
  /** Set by a test that watches the broker end leftover VMs or look for spares. */
  stopLeftover?: (vmDir: string) => Promise<boolean>;
  hasSpare?: (vmDir: string) => boolean;

  async boot(spec: VmSpec): Promise<Vm> {
    fs.mkdirSync(spec.vmDir, { recursive: true });
    // Pids of the test process's own: nothing that recovery or a stop could harm.
    const vm = new FakeVm(spec.id, process.pid, spec.vmDir, () => this.onSnapshot());
    this.vms.push(vm);
    this.beforeReady();
    return vm;
  }

  restore(): Promise<Vm> {
    return Promise.reject(new Error('restore is not expected in this test'));
  }

  attach(): Promise<Vm> {
    return Promise.reject(new Error('attach is not expected in this test'));
  }
}

/** The guest's `agentctl review`, which makes the broker pause the agent and snapshot its VM. */
export function askForReview(vm: FakeVm): void {
  vm.fromGuest({
    type: 'event',
    seq: 1,
    event: { kind: 'review', requestId: 'r1', message: 'please look' },
  });
}

/** A started broker whose VMs are {@link FakeVm}s, with its directories. */
export interface FakeVmBroker {
  broker: Broker;
  driver: FakeDriver;
  dataDir: string;
  profilesDir: string;
  /** The broker's URL and admin token, for a client or the CLI. */
  url: string;
  token: string;
  /** Delegates a task with `profile` from a one-commit repository; resolves with the agent id. */
  delegate(profile: string): Promise<string>;
  /** Stops the broker and removes its directories. */
  stop(): Promise<void>;
}

/**
 * A broker on a {@link FakeDriver}, started, knowing `profiles` (name → profile JSON) from a
 * directory of its own, which also holds `files` (name → content, executable) for their `files`.
 */
export async function startFakeVmBroker(
  prefix: string,
  profiles: Record<string, unknown>,
  files: Record<string, string> = {},
): Promise<FakeVmBroker> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  const profilesDir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-profiles-`));
  for (const [name, profile] of Object.entries(profiles)) {
    fs.writeFileSync(path.join(profilesDir, `${name}.json`), JSON.stringify(profile));
  }
  for (const [name, content] of Object.entries(files)) {
    fs.writeFileSync(path.join(profilesDir, name), content, { mode: 0o755 });
  }
  const repoDir = makeTempRepo();
  const driver = new FakeDriver();
  const broker = new Broker({
    dataDir,
    port: 0,
    logger: silentLogger,
    driver,
    loadImage: () => fakeImage,
    profiles: new ProfileRegistry([profilesDir]),
    version: 'test',
  });
  const { url, token } = await broker.start();
  return {
    broker,
    driver,
    url,
    token,
    dataDir,
    profilesDir,
    delegate: async (profile) => {
      const repo = await bundleRepository(repoDir);
      const agent = await broker.manager.create(os.userInfo().username, {
        text: 'a task',
        profile,
        repo,
      });
      return agent.id;
    },
    stop: async () => {
      await broker.stop();
      for (const dir of [dataDir, profilesDir, repoDir]) {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
