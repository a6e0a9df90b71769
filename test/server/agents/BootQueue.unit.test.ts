import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleRepository } from '../../../client/repoBundle';
import { AgentvmError } from '../../../protocol/errors';
import { REQUEUED_AT_SHUTDOWN } from '../../../server/agents/BootQueue';
import { Broker } from '../../../server/Broker';
import { storePath } from '../../../server/config/paths';
import { silentLogger } from '../../../server/log';
import { ProfileRegistry } from '../../../server/profiles/ProfileRegistry';
import { Store } from '../../../server/store/Store';
import type { ControlChannel } from '../../../server/vmm/ControlChannel';
import type {
  GuestImage,
  Vm,
  VmExit,
  VmmDriver,
  VmSpec,
  VmStartOptions,
} from '../../../server/vmm/VmmDriver';
import { makeTempRepo } from '../../helpers/repos';

const image: GuestImage = {
  key: 'fake-image',
  kernelPath: '/nonexistent/kernel',
  initramfsPath: '/nonexistent/initramfs',
  rootfsPath: '/nonexistent/rootfs.ext4',
};

/** What a cancelled fake start does: end its process and reject, or hand back a live VM anyway. */
type OnAbort = 'honour' | 'finish-anyway';

/**
 * A driver whose boot launches a real process standing in for QEMU (`sleep`) and never reaches
 * `ready`: the start ends only when its signal is aborted. With `honour` it then kills its process
 * and rejects, as QemuDriver does; with `finish-anyway` it resolves a VM, as a start that got its
 * `ready` at the very moment it was called off would.
 */
class HangingDriver implements VmmDriver {
  readonly name = 'hanging';
  readonly processes: ChildProcess[] = [];
  readonly bootedIds: string[] = [];
  readonly stoppedPids: number[] = [];
  private startedWaiters: (() => void)[] = [];

  constructor(private readonly onAbort: OnAbort) {}

  /** Resolves once a boot has launched its process. */
  started(): Promise<void> {
    if (this.processes.length > 0) return Promise.resolve();

    return new Promise((resolve) => this.startedWaiters.push(resolve));
  }

  boot(spec: VmSpec, options: VmStartOptions = {}): Promise<Vm> {
    this.bootedIds.push(spec.id);
    const child = spawn('sleep', ['300'], { stdio: 'ignore' });
    const exited = once(child, 'exit').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as string | null,
      consoleTail: [],
    }));
    this.processes.push(child);
    for (const resolve of this.startedWaiters.splice(0)) resolve();

    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      this.stoppedPids.push(child.pid!);
    };
    return new Promise<Vm>((resolve, reject) => {
      options.signal?.addEventListener('abort', () => {
        if (this.onAbort === 'honour') {
          void stop().then(() => reject(options.signal!.reason));
          return;
        }

        resolve(fakeVm(spec.id, child.pid!, exited, stop));
      });
    });
  }

  restore(): Promise<Vm> {
    return Promise.reject(new Error('restore is not expected in this test'));
  }

  attach(): Promise<Vm> {
    return Promise.reject(new AgentvmError('VM_FAILED', 'nothing to attach in this test'));
  }

  killAll(): void {
    for (const child of this.processes) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }
}

function fakeVm(id: string, pid: number, exited: Promise<VmExit>, stop: () => Promise<void>): Vm {
  const channel = {
    onMessage: () => ({ dispose: () => undefined }),
    send: () => undefined,
    close: () => undefined,
  } as unknown as ControlChannel;
  return {
    id,
    pid,
    accel: 'tcg',
    channel,
    exited,
    pause: () => Promise.resolve(),
    resume: () => Promise.resolve(),
    snapshot: () => Promise.reject(new Error('no snapshots in this test')),
    detach: () => channel.close(),
    stop,
  };
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

describe('BootQueue: a broker stopping while a VM starts (unit)', function () {
  this.timeout(30_000);
  let dataDir: string;
  let profilesDir: string;
  let repoDir: string;
  const drivers: HangingDriver[] = [];

  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-bootqueue-'));
    profilesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-bootqueue-profiles-'));
    fs.writeFileSync(
      path.join(profilesDir, 'plain.json'),
      JSON.stringify({ name: 'plain', command: 'true' }),
    );
    repoDir = makeTempRepo();
  });

  afterEach(() => {
    for (const driver of drivers.splice(0)) driver.killAll();
    for (const dir of [dataDir, profilesDir, repoDir]) {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  function newBroker(driver: VmmDriver): Broker {
    return new Broker({
      dataDir,
      port: 0,
      logger: silentLogger,
      driver,
      loadImage: () => image,
      profiles: new ProfileRegistry([profilesDir]),
      version: 'test',
    });
  }

  /** Starts a broker on a hanging driver, delegates one task and waits until its VM starts. */
  async function brokerWithStartInFlight(onAbort: OnAbort) {
    const driver = new HangingDriver(onAbort);
    drivers.push(driver);
    const broker = newBroker(driver);
    await broker.start();
    const repo = await bundleRepository(repoDir);
    const agent = await broker.manager.create(os.userInfo().username, {
      text: 'never gets to run',
      profile: 'plain',
      repo,
    });
    await driver.started();
    assert.equal(broker.manager.get(agent.id, '', true).state, 'starting');
    return { driver, broker, id: agent.id };
  }

  function storedAgent(id: string) {
    const store = new Store(storePath(path.resolve(dataDir)));
    try {
      return { record: store.getAgent(id)!, events: store.events(id) };
    } finally {
      store.close();
    }
  }

  it('calls off a start that waits for ready, ends its process and queues the agent again', async () => {
    const { driver, broker, id } = await brokerWithStartInFlight('honour');

    await broker.stop();

    assert.equal(driver.processes.length, 1);
    assert.equal(alive(driver.processes[0]), false, 'the VM process was ended');
    const { record, events } = storedAgent(id);
    assert.equal(record.state, 'queued');
    assert.equal(record.stateReason, REQUEUED_AT_SHUTDOWN);
    assert.equal(record.vmPid, null);
    assert.ok(
      events.some((event) =>
        /broker stopped while this agent's VM was starting/.test(event.message),
      ),
      'the timeline says why the agent is queued again',
    );
  });

  it('stops a VM whose start completed just as it was called off, instead of keeping it', async () => {
    const { driver, broker, id } = await brokerWithStartInFlight('finish-anyway');

    await broker.stop();

    assert.deepEqual(driver.stoppedPids, [driver.processes[0].pid]);
    assert.equal(alive(driver.processes[0]), false);
    const { record, events } = storedAgent(id);
    assert.equal(record.state, 'queued');
    assert.equal(record.vmPid, null);
    assert.ok(
      events.some((event) => event.message.includes(`its VM (pid ${driver.processes[0].pid})`)),
      'the timeline names the VM that was stopped',
    );
  });

  /** `promise`, or a failure naming `what` after 10 s (the old code waited for a ready never sent). */
  function within10s<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} still waits for the VM start`)), 10_000);
    });
    return Promise.race([promise, late]).finally(() => clearTimeout(timer));
  }

  for (const onAbort of ['honour', 'finish-anyway'] as const) {
    it(`cancels an agent whose VM is still starting at once, ending that VM (${onAbort})`, async () => {
      const { driver, broker, id } = await brokerWithStartInFlight(onAbort);
      try {
        const agent = await within10s(broker.manager.cancel(id), 'cancel');

        assert.equal(agent.state, 'cancelled');
        assert.equal(alive(driver.processes[0]), false, 'the VM process was ended');
        const timeline = broker.manager.timeline(id).map((event) => event.message);
        assert.ok(
          timeline.some((message) =>
            /start was called off \(the agent was cancelled\)/.test(message),
          ),
        );
      } finally {
        await broker.stop();
      }
      assert.equal(storedAgent(id).record.state, 'cancelled', 'not requeued by the shutdown');
    });
  }

  it('removes (with force) an agent whose VM is still starting, at once', async () => {
    const { driver, broker, id } = await brokerWithStartInFlight('honour');
    try {
      await within10s(broker.manager.remove(id, { force: true }), 'remove');

      assert.equal(alive(driver.processes[0]), false);
      assert.throws(() => broker.manager.get(id, '', true), /no agent/);
    } finally {
      await broker.stop();
    }
  });

  it('has the next broker start the requeued agent again', async () => {
    const { broker, id } = await brokerWithStartInFlight('honour');
    await broker.stop();

    const next = new HangingDriver('honour');
    drivers.push(next);
    const again = newBroker(next);
    await again.start();
    try {
      await next.started();
      assert.deepEqual(next.bootedIds, [id]);
      assert.equal(again.manager.get(id, '', true).state, 'starting');
    } finally {
      await again.stop();
    }

    assert.equal(storedAgent(id).record.state, 'queued');
  });
});
