import assert from 'node:assert/strict';
import { CONTROL_PORT_NAME } from '../../../../protocol/control';
import {
  buildQemuArgs,
  memoryLayout,
  type QemuLaunchPlan,
} from '../../../../server/vmm/qemu/buildQemuArgs';
import { vmPaths } from '../../../../server/vmm/qemu/vmPaths';

const image = {
  key: 'k',
  kernelPath: '/images/k/vmlinuz',
  initramfsPath: '/images/k/initramfs.img',
  rootfsPath: '/images/k/rootfs.ext4',
};

function plan(overrides: Partial<QemuLaunchPlan> = {}): QemuLaunchPlan {
  return {
    id: 'a1',
    paths: vmPaths('/data/agents/a1'),
    image,
    accel: 'tcg',
    memoryMiB: 256,
    vcpus: 1,
    ...overrides,
  };
}

/** The value following `flag`, for flags that appear once. */
function valueOf(args: string[], flag: string): string | undefined {
  const indexes = args.flatMap((arg, index) => (arg === flag ? [index] : []));
  assert.ok(indexes.length <= 1, `${flag} appears ${indexes.length} times`);
  return indexes.length === 1 ? args[indexes[0] + 1] : undefined;
}

/** Every value following `flag`. */
function valuesOf(args: string[], flag: string): string[] {
  return args.flatMap((arg, index) => (arg === flag ? [args[index + 1]] : []));
}

describe('buildQemuArgs (unit)', () => {
  it('uses TCG with the max CPU model when the accelerator is tcg', () => {
    const args = buildQemuArgs(plan({ accel: 'tcg' }));

    assert.equal(valueOf(args, '-accel'), 'tcg');
    assert.equal(valueOf(args, '-cpu'), 'max');
  });

  it('uses KVM with the host CPU model when the accelerator is kvm', () => {
    const args = buildQemuArgs(plan({ accel: 'kvm' }));

    assert.equal(valueOf(args, '-accel'), 'kvm');
    assert.equal(valueOf(args, '-cpu'), 'host');
  });

  it('passes memory in MiB and the vCPU count from the plan', () => {
    const args = buildQemuArgs(plan({ memoryMiB: 1536, vcpus: 3 }));

    assert.equal(valueOf(args, '-m'), '1536M');
    assert.equal(valueOf(args, '-smp'), '3');
  });

  it('runs a bare microvm with the kernel, initramfs and the base command line', () => {
    const args = buildQemuArgs(plan({ kernelArgs: ['tsc_early_khz=2600000'] }));

    assert.equal(valueOf(args, '-M'), 'microvm');
    for (const flag of ['-nodefaults', '-no-user-config', '-nographic', '-no-reboot']) {
      assert.ok(args.includes(flag), flag);
    }
    assert.equal(valueOf(args, '-display'), 'none');
    assert.equal(valueOf(args, '-kernel'), image.kernelPath);
    assert.equal(valueOf(args, '-initrd'), image.initramfsPath);
    assert.equal(
      valueOf(args, '-append'),
      'console=ttyS0 root=/dev/vda rw panic=-1 quiet tsc_early_khz=2600000',
    );
  });

  it('wires the overlay, the control port, QMP, the console file and the pid file under the VM dir', () => {
    const args = buildQemuArgs(plan());
    const chardevs = valuesOf(args, '-chardev');
    const devices = valuesOf(args, '-device');

    assert.ok(
      valueOf(args, '-drive')?.startsWith(
        'id=root,file=/data/agents/a1/overlay.qcow2,format=qcow2',
      ),
    );
    assert.ok(devices.includes('virtio-blk-device,drive=root'));
    assert.ok(
      chardevs.includes('socket,id=control,path=/data/agents/a1/control.sock,server=on,wait=off'),
    );
    assert.ok(
      devices.some((device) => device.includes(`chardev=control,name=${CONTROL_PORT_NAME}`)),
    );
    assert.ok(chardevs.includes('socket,id=qmp,path=/data/agents/a1/qmp.sock,server=on,wait=off'));
    assert.equal(valueOf(args, '-mon'), 'chardev=qmp,mode=control');
    assert.ok(chardevs.includes('file,id=console,path=/data/agents/a1/console.log,append=on'));
    assert.equal(valueOf(args, '-serial'), 'chardev:console');
    assert.equal(valueOf(args, '-pidfile'), '/data/agents/a1/qemu.pid');
    assert.ok(devices.includes('virtio-rng-device,rng=rng0'));
  });

  it('starts paused waiting for a deferred migration only when restoring', () => {
    assert.equal(buildQemuArgs(plan()).includes('-incoming'), false);
    assert.equal(buildQemuArgs(plan()).includes('-S'), false);

    const args = buildQemuArgs(plan({ incoming: true }));
    assert.equal(valueOf(args, '-incoming'), 'defer');
    assert.ok(args.includes('-S'));
  });

  it('keeps the device layout identical between a boot and a restore', () => {
    const devices = (args: string[]) => [
      ...valuesOf(args, '-device'),
      ...valuesOf(args, '-chardev'),
    ];

    assert.deepEqual(
      devices(buildQemuArgs(plan())),
      devices(buildQemuArgs(plan({ incoming: true }))),
    );
  });

  it('takes guest RAM from a file backend when a memory file is given', () => {
    const args = buildQemuArgs(plan({ memoryFile: { path: '/t/mem', share: true } }));

    assert.equal(valueOf(args, '-M'), 'microvm,memory-backend=mem');
    assert.ok(
      valuesOf(args, '-object').includes(
        'memory-backend-file,id=mem,size=256M,mem-path=/t/mem,share=on',
      ),
    );
    const clone = buildQemuArgs(plan({ memoryFile: { path: '/t/mem', share: false } }));
    assert.ok(valuesOf(clone, '-object').some((object) => object.endsWith('share=off')));
  });

  it('reads back from the arguments whose RAM is named and whose RAM a snapshot splits off', () => {
    const layout = (overrides: Partial<QemuLaunchPlan>) =>
      memoryLayout(buildQemuArgs(plan(overrides)));

    assert.deepEqual(layout({}), { named: false, split: false });
    assert.deepEqual(layout({ memoryFile: { path: '/t/mem', share: true } }), {
      named: true,
      split: false,
    });
    assert.deepEqual(layout({ memoryFile: { path: '/t/a,share=off', share: true } }), {
      named: true,
      split: false,
    });
    assert.deepEqual(layout({ memoryFile: { path: '/t/mem', share: false } }), {
      named: true,
      split: true,
      privateFile: '/t/mem',
    });
    // The file a private RAM maps comes back as written, its doubled commas undone.
    assert.deepEqual(layout({ memoryFile: { path: '/t/a,b,share=off', share: false } }), {
      named: true,
      split: true,
      privateFile: '/t/a,b,share=off',
    });
    assert.deepEqual(layout({ namedRam: true }), { named: true, split: true });
  });

  it('doubles commas in paths inside QEMU option strings', () => {
    const args = buildQemuArgs(plan({ paths: vmPaths('/data/a,b') }));

    assert.ok(valueOf(args, '-drive')?.startsWith('id=root,file=/data/a,,b/overlay.qcow2,'));
    assert.equal(valueOf(args, '-pidfile'), '/data/a,b/qemu.pid');
  });

  it('adds the network arguments it is given as flag/value pairs, after the fixed devices', () => {
    const networkArgs = [
      '-netdev',
      'user,id=net0,restrict=on',
      '-device',
      'virtio-net-device,netdev=net0',
    ];
    const args = buildQemuArgs(plan({ networkArgs }));

    assert.equal(valueOf(args, '-netdev'), 'user,id=net0,restrict=on');
    const devices = valuesOf(args, '-device');
    assert.equal(devices.indexOf('virtio-net-device,netdev=net0'), devices.length - 1);
    assert.equal(buildQemuArgs(plan()).includes('-netdev'), false);
  });
});
