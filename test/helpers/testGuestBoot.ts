/**
 * Stands in for a broker that dies while its VM runs: boots the VM described by the JSON spec in
 * argv[2] with a fresh QemuDriver, prints `{"pid": N}` and exits without stopping the VM.
 */
import { QemuDriver } from '../../server/vmm/qemu/QemuDriver';
import type { VmSpec } from '../../server/vmm/VmmDriver';

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as VmSpec;
  const driver = new QemuDriver({ env: { ...process.env, AGENTVM_ACCEL: 'tcg' } });
  const vm = await driver.boot(spec);
  process.stdout.write(JSON.stringify({ pid: vm.pid }) + '\n', () => process.exit(0));
}

main().catch((error: Error) => {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
});
