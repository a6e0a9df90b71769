import net from 'node:net';
import type { Command } from 'commander';
import { AgentvmError } from '../../../protocol/errors';
import { Broker } from '../../Broker';
import { dataDir, tokenPath } from '../../config/paths';
import { createLogger } from '../../log';
import { loadImage } from '../../vmm/image/loadImage';
import { QemuDriver } from '../../vmm/qemu/QemuDriver';
import { action, note, parseWholeNumber } from '../context';
import { agentvmVersion } from '../version';

interface ServeOptions {
  host: string;
  port?: string;
  stopVmsOnExit?: boolean;
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description(
      'run the broker (HTTP + WebSocket API) on this machine; its state (database, token, images, agents) lives in --data-dir or $AGENTVM_DATA_DIR (default ~/.local/share/agentvm)',
    )
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'TCP port (0: any free port; default $AGENTVM_PORT, else 7878)')
    .option(
      '--stop-vms-on-exit',
      'end running VMs when the broker stops (default: leave them to be reattached)',
    )
    .action(
      action(async (options: ServeOptions) => {
        const port = listenPort(options.port);
        // Before anything is opened or written: a broker that cannot listen must leave its data
        // directory as it found it (or not make one).
        await checkListenAddress(options.host, port);

        const logger = createLogger();
        const driver = new QemuDriver({ logger });
        const broker = new Broker({
          dataDir: dataDir(),
          host: options.host,
          port,
          logger,
          driver,
          loadImage: (root) => loadImage(root),
          version: agentvmVersion(),
          stopVmsOnShutdown: options.stopVmsOnExit,
        });
        const { url } = await broker.start();
        note(`agentvm broker listening on ${url}`);
        note(`token file: ${tokenPath(broker.dataDir)}`);
        const imageWarning = guestImageWarning(() => loadImage(broker.dataDir));
        if (imageWarning) note(imageWarning);

        await new Promise<void>((resolve) => {
          const stop = () => {
            note('stopping broker...');
            void broker.stop().then(resolve);
          };
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
        // Stopped: starts in flight were called off, VMs detached (or stopped), the store closed.
        // Nothing is left to hold the event loop, so the process ends by itself; no forced exit,
        // which would hide a socket or timer that outlived the broker.
      }),
    );
}

/**
 * Refuses a --host this machine cannot listen on (a name that does not resolve, an address that is
 * not one of its own), as bad input, and a port another process listens on (PORT_IN_USE), before
 * anything is opened: it listens there once and lets go. (Another process could still take the
 * port before the broker listens; the broker then fails with PORT_IN_USE too.)
 */
export async function checkListenAddress(host: string, port = 0): Promise<void> {
  const refuse = (why: string) =>
    new AgentvmError(
      'VALIDATION_FAILED',
      `--host ${JSON.stringify(host)}: ${why}`,
      'Pass an address of this machine: 127.0.0.1 (the default, this machine only), 0.0.0.0 (every interface), ::1, or a name that resolves to one of them.',
    );
  // 999.1.1.1 is not an address; the resolver would look it up as a name.
  if (/^[\d.]+$/.test(host) && !net.isIPv4(host)) throw refuse('not a valid IPv4 address');

  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE')
        return reject(new AgentvmError('PORT_IN_USE', `${host}:${port} is already in use`));

      if (error.code === 'EACCES' && port > 0 && port < 1024) {
        return reject(
          new AgentvmError(
            'VALIDATION_FAILED',
            `--port ${port}: this user may not listen on ports below 1024`,
            'Pass a port from 1024 up, e.g. --port 7878 (the default).',
          ),
        );
      }

      const why =
        error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN'
          ? 'no such host name'
          : error.code === 'EADDRNOTAVAIL'
            ? 'not an address of this machine'
            : error.message;
      reject(refuse(why));
    });
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

/**
 * One warning line when the broker has no usable guest image: it still starts (for `agentvm
 * image build` to fill in later), but every delegation fails until then. Undefined when it has one.
 */
export function guestImageWarning(load: () => unknown): string | undefined {
  try {
    load();
    return undefined;
  } catch (error) {
    const code = error instanceof AgentvmError ? error.code : 'IMAGE_MISSING';
    const message = (error as Error).message.replace(/\.$/, '');
    return `warning: ${message}: delegations will fail with ${code} until \`${imageFix[code] ?? imageFix.IMAGE_MISSING}\` runs`;
  }
}

const imageFix: Partial<Record<string, string>> = {
  IMAGE_MISSING: 'agentvm image build',
  IMAGE_CORRUPT: 'agentvm image build --force',
  HOST_REQUIREMENT_MISSING: 'agentvm doctor --fix && agentvm image build',
};

/**
 * The port from --port, else AGENTVM_PORT (empty counts as unset, as for the other commands), else
 * 7878; a bad one is named by where it came from.
 */
function listenPort(option: string | undefined): number {
  const range = { min: 0, max: 65535, example: 7878 };
  if (option !== undefined) return parseWholeNumber(option, '--port', range);

  const fromEnv = process.env.AGENTVM_PORT;
  if (!fromEnv) return 7878;

  try {
    return parseWholeNumber(fromEnv, 'AGENTVM_PORT', range);
  } catch (error) {
    if (!(error instanceof AgentvmError)) throw error;

    throw new AgentvmError(
      error.code,
      error.message,
      'Set AGENTVM_PORT to a port number (e.g. AGENTVM_PORT=7878), unset it to use 7878, or pass --port N.',
    );
  }
}
