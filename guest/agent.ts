import type { ControlTransport } from './ControlTransport';
import { GuestAgent } from './GuestAgent';
import { loadGuestConfig } from './guestConfig';
import { stderrLog } from './guestLog';
import { UnixSocketTransport } from './UnixSocketTransport';
import { VirtioPortTransport } from './VirtioPortTransport';

/**
 * Entry point of the guest agent (dist/guest/guest-agent.js), started as root under tini in the
 * VM. Outside a VM, AGENTVM_CONTROL_PATH points it at a unix socket instead of the virtio port.
 */
async function main(): Promise<void> {
  const config = loadGuestConfig();
  const transport: ControlTransport = config.controlPath
    ? new UnixSocketTransport(config.controlPath, stderrLog)
    : new VirtioPortTransport(stderrLog);
  const agent = new GuestAgent(config, transport);

  let stopping = false;
  const stop = () => {
    if (stopping) return;

    stopping = true;
    void agent.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  await agent.start();
}

main().catch((error: Error) => {
  stderrLog('error', `guest agent failed to start: ${error.stack ?? error.message}`);
  process.exit(1);
});
