import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../log';
import type { VmmDriver } from '../VmmDriver';
import { isAlive } from './templateLock';

/**
 * Removes the directories of template builds whose process is gone (`.build-PID-SUFFIX` under
 * `templatesRoot`, PID ended, or this process when `buildingHere` is false: a pid reused after a
 * restart), stopping the QEMU each one's build left running first: nothing could find it once its
 * pid file is gone. Builds of live processes (another broker, a CLI build) are left alone.
 * Returns the removed directories. Run by {@link TemplateManager.removeStale} before a build, and
 * at broker start, so an interrupted build does not keep its QEMU until the next build.
 */
export async function removeInterruptedBuilds(
  templatesRoot: string,
  driver: VmmDriver,
  logger: Logger,
  buildingHere = false,
): Promise<string[]> {
  let names: string[];
  try {
    names = fs.readdirSync(templatesRoot);
  } catch {
    return [];
  }

  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith('.build-')) continue;

    const ownerPid = Number(name.split('-')[1]); // .build-PID-SUFFIX
    if (ownerPid === process.pid ? buildingHere : isAlive(ownerPid)) continue;

    const dir = path.join(templatesRoot, name);
    const stopped = await driver.stopLeftover?.(dir).catch(() => false);
    if (stopped) logger.warn('template.build_vm_stopped', { dir });
    fs.rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
    logger.info('template.removed', { dir });
  }
  return removed;
}
