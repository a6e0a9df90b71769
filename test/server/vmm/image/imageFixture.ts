import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  defaultDebootstrapRecipe,
  type ImageSources,
} from '../../../../server/vmm/image/imageInputs';

/** A throwaway set of image inputs and a data directory, for tests that must not touch the host's. */
export interface ImageFixture {
  root: string;
  dataDir: string;
  sources: ImageSources;
  /** Write the fake debootstrap output for `cacheKey` so builds skip debootstrap. */
  seedRootfsCache(cacheKey: string): string;
  cleanup(): void;
}

/**
 * Fake inputs: a few bytes for the kernel, modules (one compressed with gzip), the real guest/rootfs
 * scripts copied in, and tiny bundles. The busybox is the host's, since the initramfs embeds it.
 */
export function createImageFixture(): ImageFixture {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-image-'));
  const at = (relative: string) => path.join(root, relative);
  const write = (relative: string, data: string | Buffer) => {
    fs.mkdirSync(path.dirname(at(relative)), { recursive: true });
    fs.writeFileSync(at(relative), data);
    return at(relative);
  };

  write('boot/vmlinuz-6.1.0-1-cloud-amd64', 'fake kernel');
  const moduleLines: string[] = [];
  for (const name of ['virtio_ring', 'virtio', 'virtio_mmio', 'virtio_console', 'virtio_blk']) {
    write(`modules/kernel/${name}.ko`, `module ${name}`);
    moduleLines.push(`kernel/${name}.ko:`);
  }
  write('modules/kernel/net_failover.ko', 'module net_failover');
  write('modules/kernel/virtio_net.ko.gz', require('node:zlib').gzipSync('module virtio_net'));
  // Debian names this file with a dash; modprobe and the builder treat - and _ alike.
  write('modules/kernel/virtio-rng.ko', 'module virtio_rng');
  moduleLines.push(
    'kernel/net_failover.ko: kernel/failover.ko',
    'kernel/virtio_net.ko.gz:',
    'kernel/virtio-rng.ko:',
  );
  write('modules/modules.dep', moduleLines.join('\n') + '\n');
  // failover is compiled in here, which the builder must accept.
  write('modules/modules.builtin', 'kernel/net/core/failover.ko\n');

  const repo = path.resolve(__dirname, '../../../..');
  const sources: ImageSources = {
    kernelPath: at('boot/vmlinuz-6.1.0-1-cloud-amd64'),
    modulesDir: at('modules'),
    busyboxPath: '/bin/busybox',
    initramfsInitPath: write(
      'rootfs/initramfs-init.sh',
      fs.readFileSync(path.join(repo, 'guest/rootfs/initramfs-init.sh')),
    ),
    rootfsInitPath: write(
      'rootfs/agentvm-init.sh',
      fs.readFileSync(path.join(repo, 'guest/rootfs/agentvm-init.sh')),
    ),
    guestAgentPath: write('dist/guest-agent.js', 'process.stdout.write("guest agent\\n");\n'),
    agentctlPath: write('dist/agentctl.js', '#!/usr/bin/env node\nconsole.log("agentctl");\n'),
    debootstrap: defaultDebootstrapRecipe,
  };

  const dataDir = at('data');
  return {
    root,
    dataDir,
    sources,
    seedRootfsCache(cacheKey) {
      const entry = path.join(dataDir, 'images', 'cache', cacheKey);
      const rootfs = path.join(entry, 'rootfs');
      const files: Record<string, string> = {
        'etc/passwd': 'root:x:0:0:root:/root:/bin/bash\n',
        'etc/group': 'root:x:0:\nshadow:x:42:\n',
        'etc/shadow': 'root:*:19000:0:99999:7:::\n',
        'etc/gshadow': 'root:*::\n',
        'etc/hosts': '127.0.0.1 localhost\n',
        'etc/resolv.conf': 'nameserver 192.0.2.1\n',
        'etc/skel/.bashrc': '# skeleton\n',
        'usr/bin/node': 'not really node',
      };
      for (const [relative, text] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(rootfs, relative)), { recursive: true });
        fs.writeFileSync(path.join(rootfs, relative), text);
      }
      for (const dir of ['usr/local/bin', 'usr/sbin', 'home', 'root', 'tmp']) {
        fs.mkdirSync(path.join(rootfs, dir), { recursive: true });
      }
      fs.symlinkSync('usr/sbin', path.join(rootfs, 'sbin'));
      fs.writeFileSync(path.join(entry, 'complete.json'), '{}');
      return rootfs;
    },
    cleanup() {
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
