import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { GuestEvent } from '../../protocol/control';
import { checkoutForGuest, MAX_GUEST_TREE_BYTES } from '../../server/agents/checkoutForGuest';
import { silentLogger } from '../../server/log';
import { QemuDriver } from '../../server/vmm/qemu/QemuDriver';
import type { Vm } from '../../server/vmm/VmmDriver';
import { sharedImage } from '../helpers/vmBroker';

/**
 * A repository too large for the broker's checkout travels as its bundle in one control-channel
 * line of tens of MiB; the guest must read it, clone it and run the command on it. (A line reader
 * that rescanned its whole buffer per chunk once made this take many minutes under TCG.)
 */
describe('a repository over the checkout limit, in a real microVM (vm)', function () {
  this.timeout(10 * 60_000);
  let dir: string;
  let vm: Vm | undefined;

  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-large-'))));

  after(async () => {
    await vm?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('clones the bundle in the guest and runs the command on an exact checkout', async () => {
    const repo = path.join(dir, 'repo');
    fs.mkdirSync(repo);
    const git = (...args: string[]) =>
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@invalid', ...args], {
        cwd: repo,
        encoding: 'utf8',
      }).trim();
    git('init', '-q', '-b', 'main');
    const content = randomBytes(MAX_GUEST_TREE_BYTES + 2 * 2 ** 20);
    fs.writeFileSync(path.join(repo, 'large.bin'), content);
    git('add', '-A');
    git('commit', '-q', '-m', 'large');
    const bundlePath = path.join(dir, 'repo.bundle');
    git('bundle', 'create', '-q', bundlePath, 'main');
    const baseCommit = git('rev-parse', 'HEAD');
    const checkout = await checkoutForGuest(bundlePath, baseCommit, 'main', dir);
    assert.equal(checkout.kind, 'too-large');

    vm = await new QemuDriver({ logger: silentLogger }).boot({
      id: 'large-repo',
      vmDir: path.join(dir, 'vm'),
      image: await sharedImage(),
      memoryMiB: 512,
      vcpus: 1,
      bootTimeoutMs: 180_000,
    });
    const events: GuestEvent[] = [];
    const exited = new Promise<void>((resolve) =>
      vm?.channel.onMessage((message) => {
        if (message.type !== 'event') return;
        vm?.channel.send({ type: 'ack', seq: message.seq });
        events.push(message.event);
        if (['exit', 'error'].includes(message.event.kind)) resolve();
      }),
    );
    vm.channel.send({
      type: 'task',
      task: {
        agentId: 'large-repo',
        text: 'hash it',
        title: 'hash it',
        command: 'sha256sum large.bin && git status --porcelain && git rev-parse HEAD',
        env: {},
        repo: { kind: 'bundle', data: fs.readFileSync(bundlePath).toString('base64') },
        baseCommit,
        branch: 'main',
        timeLimitMs: 0,
        files: [],
      },
    });
    await exited;

    const errors = events.flatMap((event) => (event.kind === 'error' ? [event.message] : []));
    assert.deepEqual(errors, []);
    const output = events
      .flatMap((event) => (event.kind === 'output' ? [event.text] : []))
      .join('');
    const sha = createHash('sha256').update(content).digest('hex');
    assert.equal(output, `${sha}  large.bin\n${baseCommit}\n`);
  });
});
