import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../../../../server/config/paths';
import { ensureImage } from '../../../../server/vmm/image/ensureImage';
import { defaultImageSources, type ImageSources } from '../../../../server/vmm/image/imageInputs';
import { readImageManifest } from '../../../../server/vmm/image/imageManifest';
import { loadImage } from '../../../../server/vmm/image/loadImage';
import type { GuestImage } from '../../../../server/vmm/VmmDriver';
import { hostTscKhz } from '../../../../server/vmm/qemu/hostTscKhz';

const bootTimeoutMs = 120_000;

function debugfs(image: string, request: string): string {
  return execFileSync('debugfs', ['-R', request, image], {
    stdio: ['ignore', 'pipe', 'ignore'],
  }).toString();
}

/** Boot `image` on a fresh overlay and resolve with the console text once the guest agent says ready. */
async function bootUntilReady(
  image: GuestImage,
  workDir: string,
): Promise<{ console: string; readyLine: string }> {
  const overlay = path.join(workDir, 'overlay.qcow2');
  const socket = path.join(workDir, 'control.sock');
  execFileSync('qemu-img', [
    'create',
    '-q',
    '-f',
    'qcow2',
    '-F',
    'raw',
    '-b',
    image.rootfsPath,
    overlay,
  ]);

  // Without it a loaded host makes the guest's TSC calibration fail and the boot hang (see hostTscKhz).
  const tscKhz = hostTscKhz();
  const tscArgument = tscKhz ? `tsc_early_khz=${tscKhz}` : '';
  let qemu: ChildProcess | undefined;
  let console = '';
  try {
    qemu = spawn(
      'qemu-system-x86_64',
      [
        '-M',
        'microvm',
        '-nodefaults',
        '-no-user-config',
        '-nographic',
        '-accel',
        'tcg',
        '-cpu',
        'max',
        '-m',
        '256',
        '-kernel',
        image.kernelPath,
        '-initrd',
        image.initramfsPath,
        '-append',
        `console=ttyS0 root=/dev/vda panic=-1 quiet ${tscArgument}`,
        '-no-reboot',
        '-serial',
        'stdio',
        '-drive',
        `id=root,file=${overlay},format=qcow2,if=none`,
        '-device',
        'virtio-blk-device,drive=root',
        '-device',
        'virtio-serial-device',
        '-chardev',
        `socket,id=ctl,path=${socket},server=on,wait=off`,
        '-device',
        'virtserialport,chardev=ctl,name=org.agentvm.control',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    qemu.stdout?.on('data', (chunk: Buffer) => (console += chunk.toString()));
    qemu.stderr?.on('data', (chunk: Buffer) => (console += chunk.toString()));
    const exited = new Promise<never>((_, reject) =>
      qemu?.on('exit', (code) => reject(new Error(`QEMU exited (${code}); console:\n${console}`))),
    );

    const readyLine = await Promise.race([exited, waitForReady(socket, () => console)]);
    return { console, readyLine };
  } finally {
    if (qemu?.pid !== undefined && qemu.exitCode === null) process.kill(qemu.pid, 'SIGKILL');
  }
}

async function waitForReady(socket: string, consoleText: () => string): Promise<string> {
  const deadline = Date.now() + bootTimeoutMs;
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    const line = await new Promise<string | undefined>((resolve) => {
      const connection = net.connect(socket);
      let buffered = '';
      const timer = setTimeout(() => finish(undefined), 2_000);
      const finish = (value: string | undefined) => {
        clearTimeout(timer);
        connection.destroy();
        resolve(value);
      };
      connection.on('error', () => finish(undefined));
      connection.on('connect', () =>
        connection.write(JSON.stringify({ type: 'hello', lastSeq: 0 }) + '\n'),
      );
      connection.on('data', (chunk) => {
        buffered += chunk.toString();
        const ready = buffered.split('\n').find((candidate) => candidate.includes('"ready"'));
        if (ready) finish(ready);
      });
    });
    if (line) return line;

    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(
    `no ready from the guest agent within ${bootTimeoutMs} ms; console:\n${consoleText()}`,
  );
}

describe('ensureImage (vm)', function () {
  this.timeout(15 * 60 * 1000);

  let root: string;
  let sources: ImageSources;
  let image: GuestImage;
  const progress: string[] = [];

  before(async function () {
    if (process.getuid?.() !== 0) this.skip();

    const repo = packageRoot();
    if (!fs.existsSync(path.join(repo, 'dist/guest/guest-agent.js'))) {
      execFileSync('node', ['scripts/build.mjs'], {
        cwd: repo,
        env: { ...process.env, AGENTVM_BUILD_STRICT: '0' },
      });
    }
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-image-vm-'));
    // A copy of the guest agent, so the rebuild test can change it without touching dist/.
    const guestAgentPath = path.join(root, 'guest-agent.js');
    fs.copyFileSync(defaultImageSources().guestAgentPath, guestAgentPath);
    sources = { ...defaultImageSources(), guestAgentPath };

    image = await ensureImage({
      dataDir: path.join(root, 'data'),
      sources,
      onProgress: (line) => progress.push(line),
    });
  });

  after(() => {
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('builds with debootstrap into a root filesystem with node, git, tini, the agent user and 1.5 GiB free', () => {
    assert.ok(
      progress.some((line) =>
        /^rootfs: debootstrap --variant=minbase --include=nodejs,git,ca-certificates,tini (--keyring=\S+ )?bookworm \S+ http/.test(
          line,
        ),
      ),
    );
    for (const file of ['/usr/bin/node', '/usr/bin/git', '/usr/bin/tini', '/opt/agentvm/busybox']) {
      assert.match(debugfs(image.rootfsPath, `stat ${file}`), /Type: regular/, file);
    }
    assert.match(debugfs(image.rootfsPath, 'stat /usr/local/bin/agentctl'), /Mode:\s+0755/);
    assert.match(debugfs(image.rootfsPath, 'stat /workspace'), /User:\s+1000\s+Group:\s+1000/);
    assert.match(debugfs(image.rootfsPath, 'cat /etc/passwd'), /^agent:x:1000:1000:/m);

    const header = execFileSync('dumpe2fs', ['-h', image.rootfsPath], {
      stdio: ['ignore', 'pipe', 'ignore'],
    }).toString();
    const freeBlocks = Number(/^Free blocks:\s+(\d+)/m.exec(header)?.[1]);
    const blockSize = Number(/^Block size:\s+(\d+)/m.exec(header)?.[1]);
    assert.ok(freeBlocks * blockSize >= 1.5 * 1024 ** 3, `free bytes ${freeBlocks * blockSize}`);
    assert.equal(spawnSync('e2fsck', ['-fn', image.rootfsPath]).status, 0);
  });

  it('boots to agentvm-init and a guest agent that answers hello with ready', async () => {
    const workDir = fs.mkdtempSync(path.join(root, 'vm-'));

    const { console, readyLine } = await bootUntilReady(image, workDir);

    assert.match(console, /agentvm-init: starting guest agent at uptime [\d.]+s/);
    assert.equal(JSON.parse(readyLine).type, 'ready');
  });

  it('rebuilds only the ext4 image, from the debootstrap cache, when the guest agent changes', async () => {
    fs.appendFileSync(sources.guestAgentPath, '\n// rebuilt\n');
    const lines: string[] = [];

    const rebuilt = await ensureImage({
      dataDir: path.join(root, 'data'),
      sources,
      onProgress: (line) => lines.push(line),
    });

    assert.notEqual(rebuilt.key, image.key);
    assert.ok(lines.some((line) => /reusing debootstrap cache/.test(line)));
    assert.ok(!lines.some((line) => /^rootfs: debootstrap /.test(line)));
    assert.deepEqual(loadImage(path.join(root, 'data'), sources), rebuilt);
    const manifest = readImageManifest(path.dirname(rebuilt.rootfsPath));
    process.stderr.write(`      rebuild timings: ${JSON.stringify(manifest?.timings)}\n`);
  });
});
