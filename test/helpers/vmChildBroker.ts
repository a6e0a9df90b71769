import path from 'node:path';
import { killVmsUnder } from '../faults/faultAgents';
import { ChildBroker } from './childBroker';
import { sharedImage } from './vmBroker';

/**
 * Starts `agentvm serve` in its own process, with the shared cached guest image and the profiles
 * in `profilesDir`; if it does not start, removes what it made before throwing.
 */
export async function startVmChildBroker(profilesDir: string): Promise<ChildBroker> {
  const image = await sharedImage();
  const broker = new ChildBroker({
    profilesDir,
    imagesDir: path.dirname(path.dirname(image.rootfsPath)),
  });
  try {
    await broker.start();
  } catch (error) {
    await removeVmChildBroker(broker);
    throw error;
  }

  return broker;
}

/**
 * Removes every agent of `broker` (if it still runs), SIGKILLs it, ends any VM it left, and removes
 * its data directory. Does nothing for a broker that was never made.
 */
export async function removeVmChildBroker(broker: ChildBroker | undefined): Promise<void> {
  if (!broker) return;

  if (broker.alive) {
    for (const agent of await broker.client.listAgents().catch(() => [])) {
      await broker.client.remove(agent.id, { force: true }).catch(() => undefined);
    }
  }
  await broker.kill('SIGKILL');
  // A VM the broker could not stop (it was killed) is ended here, by pid, under its data dir only.
  killVmsUnder(broker.dataDir);
  await broker.cleanup();
}
