import fs from 'node:fs';
import path from 'node:path';
import { detectAccelerator } from '../vmm/accelerator';
import { busyboxCandidates, findCloudKernel, findStaticBusybox } from '../vmm/image/hostArtifacts';
import type { HostReport, HostRequirement } from './hostReport';

/** Where {@link checkHost} looks; tests substitute fixtures. */
export interface HostCheckOptions {
  /** Search path for programs; PATH plus the sbin directories by default (mke2fs lives there). */
  searchPath?: string[];
  bootDir?: string;
  modulesRoot?: string;
  busyboxCandidates?: string[];
  env?: NodeJS.ProcessEnv;
}

/** Programs agentvm runs, and the Debian package of each. */
export const requiredPrograms: ReadonlyArray<{ program: string; package: string }> = [
  { program: 'qemu-system-x86_64', package: 'qemu-system-x86' },
  { program: 'qemu-img', package: 'qemu-utils' },
  { program: 'debootstrap', package: 'debootstrap' },
  { program: 'mke2fs', package: 'e2fsprogs' },
  { program: 'cpio', package: 'cpio' },
  { program: 'git', package: 'git' },
  // Relays each guest connection to the agent's egress socket (guestEgress.ts).
  { program: 'socat', package: 'socat' },
];

/**
 * Check every host requirement of agentvm: the programs above, a Debian cloud kernel with its
 * modules, and a statically linked busybox; and report which accelerator VMs would use.
 */
export async function checkHost(options: HostCheckOptions = {}): Promise<HostReport> {
  const env = options.env ?? process.env;
  const searchPath = options.searchPath ?? defaultSearchPath(env);
  const requirements: HostRequirement[] = [];

  for (const { program, package: pkg } of requiredPrograms) {
    const found = findProgram(program, searchPath);
    requirements.push({
      name: program,
      ok: found !== undefined,
      package: pkg,
      detail: found ?? `not found in ${searchPath.join(':')}`,
    });
  }

  requirements.push(checkKernel(options.bootDir ?? '/boot', options.modulesRoot ?? '/lib/modules'));

  const busybox = findStaticBusybox(options.busyboxCandidates ?? busyboxCandidates);
  requirements.push({
    name: 'busybox (static)',
    ok: busybox !== undefined,
    package: 'busybox-static',
    detail:
      busybox ??
      `no statically linked busybox at ${(options.busyboxCandidates ?? busyboxCandidates).join(' or ')}`,
  });

  const missingPackages = [
    ...new Set(requirements.filter((requirement) => !requirement.ok).map((r) => r.package)),
  ];
  return {
    ok: missingPackages.length === 0,
    requirements,
    missingPackages,
    accelerator: detectAccelerator(env),
  };
}

function checkKernel(bootDir: string, modulesRoot: string): HostRequirement {
  const requirement = { name: 'cloud kernel', package: 'linux-image-cloud-amd64' };
  const kernel = findCloudKernel(bootDir);
  if (!kernel) {
    return { ...requirement, ok: false, detail: `no ${bootDir}/vmlinuz-*-cloud-amd64` };
  }

  const modulesDir = path.join(modulesRoot, kernel.release);
  if (!fs.existsSync(path.join(modulesDir, 'modules.dep'))) {
    return { ...requirement, ok: false, detail: `${kernel.path} has no modules in ${modulesDir}` };
  }
  return { ...requirement, ok: true, detail: kernel.path };
}

/** The executable `program` in the first directory of `searchPath` that has it. */
export function findProgram(program: string, searchPath: string[]): string | undefined {
  for (const dir of searchPath) {
    const candidate = path.join(dir, program);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

function defaultSearchPath(env: NodeJS.ProcessEnv): string[] {
  const dirs = (env.PATH ?? '').split(':').filter((dir) => dir.length > 0);
  return [...new Set([...dirs, '/usr/local/sbin', '/usr/sbin', '/sbin'])];
}
