import fs from 'node:fs';
import { baseEnv, runProcess } from './runProcess';

/** QEMU user networking's fixed guest address and gateway; the gateway reaches only the proxy. */
const GUEST_ADDRESS = '10.0.2.15/24';
const GUEST_GATEWAY = '10.0.2.2';
const BUSYBOX = '/opt/agentvm/busybox';

/**
 * Bring up eth0 (the egress proxy is its one reachable address) unless it already has a default
 * route, as agentvm-init leaves it. Run once when the guest agent starts, so it is settled in every
 * template and costs nothing on the way from a restore to the agent command.
 */
export async function ensureGuestNetwork(): Promise<void> {
  if (!fs.existsSync('/sys/class/net/eth0') || hasDefaultRoute()) return;

  const ip = fs.existsSync(BUSYBOX) ? [BUSYBOX, 'ip'] : ['ip'];
  for (const args of [
    ['link', 'set', 'eth0', 'up'],
    ['addr', 'replace', GUEST_ADDRESS, 'dev', 'eth0'],
    ['route', 'replace', 'default', 'via', GUEST_GATEWAY],
  ]) {
    const result = await runProcess(ip[0], [...ip.slice(1), ...args], {
      cwd: '/',
      user: null,
      env: baseEnv(null),
      timeoutMs: 60_000,
    });
    if (result.code !== 0) {
      const output = `${result.stderr}${result.stdout}`.trim() || `exit code ${result.code}`;
      throw new Error(`ip ${args.join(' ')} failed: ${output}`);
    }
  }
}

/** Whether the kernel has a default route (read from /proc, so no process is spawned). */
function hasDefaultRoute(): boolean {
  try {
    return fs
      .readFileSync('/proc/net/route', 'utf8')
      .split('\n')
      .slice(1)
      .some((line) => line.split(/\s+/)[1] === '00000000');
  } catch {
    return false;
  }
}
