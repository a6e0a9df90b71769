import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CertificateAuthority } from '../../../../server/policy/egress/CertificateAuthority';
import { EgressProxy } from '../../../../server/policy/egress/EgressProxy';
import {
  egressNetdevArgs,
  GUEST_PROXY_ADDRESS,
  GUEST_PROXY_PORT,
} from '../../../../server/policy/egress/guestEgress';
import { resolveSecrets } from '../../../../server/policy/secrets/SecretBindings';
// Under TCG on a loaded host the guest cannot calibrate its TSC and hangs before init; see hostTscKhz.
import { hostTscKhz } from '../../../../server/vmm/qemu/hostTscKhz';

const kernelRelease = '6.1.0-57-cloud-amd64';
const kernelPath = `/boot/vmlinuz-${kernelRelease}`;
const modules = [
  'drivers/virtio/virtio_ring.ko',
  'drivers/virtio/virtio.ko',
  'drivers/virtio/virtio_mmio.ko',
  'net/core/failover.ko',
  'drivers/net/net_failover.ko',
  'drivers/net/virtio_net.ko',
];

/** A busybox initramfs whose /init runs `script` with networking up, then powers off. */
function buildInitramfs(dir: string, script: string): string {
  const root = path.join(dir, 'root');
  for (const sub of ['bin', 'lib', 'proc', 'sys', 'dev', 'etc'])
    fs.mkdirSync(path.join(root, sub), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(root, 'bin', 'busybox'));
  // Static glibc still reads these for name lookups, and crashes without them.
  fs.writeFileSync(path.join(root, 'etc', 'nsswitch.conf'), 'hosts: files\n');
  fs.writeFileSync(path.join(root, 'etc', 'hosts'), '127.0.0.1 localhost\n');
  fs.writeFileSync(path.join(root, 'etc', 'services'), 'http 80/tcp\n');
  fs.chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
  for (const module of modules) {
    fs.copyFileSync(
      `/lib/modules/${kernelRelease}/kernel/${module}`,
      path.join(root, 'lib', path.basename(module)),
    );
  }

  const init = [
    '#!/bin/busybox sh',
    '/bin/busybox --install -s /bin',
    'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev',
    ...modules.map((module) => `insmod /lib/${path.basename(module)}`),
    'ip link set lo up; ip link set eth0 up',
    'ip addr add 10.0.2.15/24 dev eth0; ip route add default via 10.0.2.2',
    'echo AGENTVM-NET-UP; ip -o addr show eth0',
    script,
    'echo AGENTVM-TEST-END',
    'poweroff -f',
  ].join('\n');
  fs.writeFileSync(path.join(root, 'init'), init + '\n', { mode: 0o755 });

  const image = path.join(dir, 'initramfs.cpio');
  execFileSync('sh', ['-c', `cd "${root}" && find . | cpio -o -H newc --quiet > "${image}"`]);
  return image;
}

/** Boot the guest under TCG, return its serial console once it powers off (bounded by a timeout). */
function bootGuest(initramfs: string, proxySocket: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const qemu = spawn('qemu-system-x86_64', [
      '-M',
      'microvm,accel=tcg',
      '-m',
      '256',
      '-smp',
      '1',
      '-nographic',
      '-no-reboot',
      '-kernel',
      kernelPath,
      '-initrd',
      initramfs,
      '-append',
      `console=ttyS0 panic=-1 loglevel=4 tsc_early_khz=${hostTscKhz() ?? ''}`,
      ...egressNetdevArgs(proxySocket),
    ]);
    let output = '';
    qemu.stdout.on('data', (chunk) => (output += chunk));
    qemu.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => {
      qemu.kill('SIGKILL');
      reject(
        new Error(`guest pid ${qemu.pid} did not finish in ${timeoutMs} ms; console:\n${output}`),
      );
    }, timeoutMs);
    qemu.on('exit', () => {
      clearTimeout(timer);
      resolve(output);
    });
    qemu.on('error', reject);
  });
}

describe('EgressProxy (vm)', function () {
  this.timeout(180_000);
  let dir: string;
  let proxy: EgressProxy;
  let upstream: http.Server;
  const received: Array<{ url: string; authorization?: string }> = [];

  before(function () {
    if (!fs.existsSync(kernelPath)) this.skip();
  });

  afterEach(async () => {
    await proxy?.close();
    upstream?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lets a restricted guest out only through the proxy, with its allowlist and secrets applied', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-egress-vm-'));
    upstream = http.createServer((request, response) => {
      received.push({ url: request.url!, authorization: request.headers.authorization });
      response.end(`upstream-saw-${request.url!.slice(1)}\n`);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as net.AddressInfo).port;

    const ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'ca'));
    proxy = new EgressProxy({ ca });
    const [secret] = resolveSecrets(
      { API: { source: { env: 'K' }, hosts: [`127.0.0.1:${port}`], allowPlainHttp: true } },
      { env: { K: 'vm-real-secret' } },
    );
    const { socketPath } = await proxy.addAgent(
      'vm1',
      { actor: 'alice', allowedHosts: [`127.0.0.1:${port}`], secrets: [secret] },
      path.join(dir, 'listener', 'proxy.sock'),
    );

    // busybox wget crashes in this bare initramfs (static glibc name lookup), so requests are
    // written by hand with nc: the proxy sees exactly what an HTTP client sends.
    const viaProxy = (url: string, header = '') =>
      `printf 'GET ${url} HTTP/1.0\\r\\n${header}\\r\\n' | nc -w 10 ${GUEST_PROXY_ADDRESS} ${GUEST_PROXY_PORT} | tr '\\r\\n' '  '`;
    const script = [
      `echo "ALLOWED: $(${viaProxy(`http://127.0.0.1:${port}/allowed`)})"`,
      `echo "SECRET: $(${viaProxy(`http://127.0.0.1:${port}/secret`, `Authorization: Bearer ${secret.placeholder}\\r\\n`)})"`,
      `echo "DENIED: $(${viaProxy(`http://127.0.0.1:${port + 1}/denied`)})"`,
      `echo "MALFORMED: $(printf 'HELLO\\r\\n\\r\\n' | nc -w 10 ${GUEST_PROXY_ADDRESS} ${GUEST_PROXY_PORT} | tr '\\r\\n' '  ')"`,
      `echo "GATEWAY: $(echo x | nc -w 3 10.0.2.2 ${port} 2>&1 && echo connected || echo failed)"`,
    ].join('\n');

    const console = await bootGuest(buildInitramfs(dir, script), socketPath, 120_000);
    const line = (label: string) => {
      const found = new RegExp(`^${label}: (.*)$`, 'm').exec(console)?.[1];
      return found && found.trim() !== '' ? found : `empty ${label} line; console:\n${console}`;
    };

    assert.match(console, /AGENTVM-TEST-END/);
    assert.match(line('ALLOWED'), /200 OK.*upstream-saw-allowed/);
    assert.match(line('SECRET'), /upstream-saw-secret/);
    assert.match(line('DENIED'), /403/);
    // h14: what is not HTTP gets its refusal back through the relay, not a silent close.
    assert.match(line('MALFORMED'), /400 Bad Request.*not valid HTTP/);
    assert.match(line('GATEWAY'), /can't connect|failed/);
    assert.deepEqual(
      received.map((entry) => entry.url),
      ['/allowed', '/secret'],
    );
    assert.equal(received[1].authorization, 'Bearer vm-real-secret');
  });
});
