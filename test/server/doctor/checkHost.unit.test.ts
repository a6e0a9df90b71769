import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkHost, requiredPrograms } from '../../../server/doctor/checkHost';
import { fixHost, installCommand } from '../../../server/doctor/fixHost';
import { hostReportSchema } from '../../../server/doctor/hostReport';

describe('checkHost (unit)', () => {
  let root: string;
  const at = (relative: string) => path.join(root, relative);

  const makeExecutable = (relative: string) => {
    fs.mkdirSync(path.dirname(at(relative)), { recursive: true });
    fs.writeFileSync(at(relative), '#!/bin/sh\n', { mode: 0o755 });
  };

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-doctor-'));
    fs.mkdirSync(at('bin'));
    fs.mkdirSync(at('boot'));
  });

  afterEach(() => {
    fs.rmSync(root, { recursive: true, force: true });
  });

  const check = () =>
    checkHost({
      searchPath: [at('bin')],
      bootDir: at('boot'),
      modulesRoot: at('modules'),
      busyboxCandidates: [at('bin/busybox')],
      env: { AGENTVM_ACCEL: 'tcg' },
    });

  it('reports every requirement missing on an empty host, each with its Debian package', async () => {
    const report = await check();

    assert.equal(report.ok, false);
    const missing = report.requirements
      .filter((requirement) => !requirement.ok)
      .map((r) => r.package);
    assert.deepEqual(missing, [
      'qemu-system-x86',
      'qemu-utils',
      'debootstrap',
      'e2fsprogs',
      'cpio',
      'git',
      'socat',
      'linux-image-cloud-amd64',
      'busybox-static',
    ]);
    assert.deepEqual(report.accelerator, { accel: 'tcg', reason: 'forced by AGENTVM_ACCEL=tcg' });
    hostReportSchema.parse(report);
  });

  it('is satisfied when the programs, a cloud kernel with modules and a static busybox exist', async () => {
    for (const { program } of requiredPrograms) makeExecutable(`bin/${program}`);
    // The host's busybox-static, which the real build needs too.
    fs.copyFileSync('/bin/busybox', at('bin/busybox'));
    fs.writeFileSync(at('boot/vmlinuz-6.1.0-9-cloud-amd64'), 'old');
    fs.writeFileSync(at('boot/vmlinuz-6.1.0-57-cloud-amd64'), 'new');
    fs.mkdirSync(at('modules/6.1.0-57-cloud-amd64'), { recursive: true });
    fs.writeFileSync(at('modules/6.1.0-57-cloud-amd64/modules.dep'), '');

    const report = await check();

    assert.deepEqual(report.missingPackages, []);
    assert.equal(report.ok, true);
    const kernel = report.requirements.find((requirement) => requirement.name === 'cloud kernel');
    assert.equal(kernel?.detail, at('boot/vmlinuz-6.1.0-57-cloud-amd64'));
  });

  it('counts a dynamically linked busybox as missing busybox-static', async () => {
    fs.copyFileSync('/bin/sh', at('bin/busybox'));

    const report = await checkHost({
      searchPath: [at('bin')],
      busyboxCandidates: [at('bin/busybox')],
    });

    assert.ok(report.missingPackages.includes('busybox-static'));
  });

  it('counts a kernel without its modules directory as missing', async () => {
    fs.writeFileSync(at('boot/vmlinuz-6.1.0-57-cloud-amd64'), 'kernel');

    const report = await check();

    const kernel = report.requirements.find((requirement) => requirement.name === 'cloud kernel');
    assert.equal(kernel?.ok, false);
    assert.match(kernel!.detail, /has no modules/);
  });

  it('prints the sudo command instead of running apt-get when not root', async () => {
    const report = await check();

    const fix = await fixHost(report, { isRoot: false });

    assert.equal(fix.installed, false);
    assert.equal(
      fix.command,
      'sudo apt-get update && sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ' +
        'qemu-system-x86 qemu-utils debootstrap e2fsprogs cpio git socat linux-image-cloud-amd64 busybox-static',
    );
  });

  it('has nothing to fix on a complete host', async () => {
    const fix = await fixHost({ ...(await check()), missingPackages: [] }, { isRoot: true });

    assert.deepEqual(fix, { installed: false, command: '' });
    assert.equal(
      installCommand(['cpio'], true),
      'apt-get update && env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cpio',
    );
  });
});
