import type { Command } from 'commander';
import { AgentvmError } from '../../../protocol/errors';
import { Broker } from '../../Broker';
import { dataDir, tokenPath } from '../../config/paths';
import { createLogger } from '../../log';
import { loadImage } from '../../vmm/image/loadImage';
import { QemuDriver } from '../../vmm/qemu/QemuDriver';
import { action, note } from '../context';
import { agentvmVersion } from '../version';

interface ServeOptions {
  host: string;
  port: string;
  stopVmsOnExit?: boolean;
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the broker (HTTP + WebSocket API) on this machine')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'TCP port (0: any free port)', process.env.AGENTVM_PORT ?? '7878')
    .option(
      '--stop-vms-on-exit',
      'end running VMs when the broker stops (default: leave them to be reattached)',
    )
    .action(
      action(async (options: ServeOptions) => {
        const port = Number(options.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) {
          throw new AgentvmError(
            'VALIDATION_FAILED',
            `--port must be 0-65535, not "${options.port}"`,
          );
        }

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
