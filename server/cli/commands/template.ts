import type { Command } from 'commander';
import { z } from 'zod';
import { AgentvmError } from '../../../protocol/errors';
import { dataDir } from '../../config/paths';
import { silentLogger } from '../../log';
import { defaultProfileDirectories, ProfileRegistry } from '../../profiles/ProfileRegistry';
import { loadImage } from '../../vmm/image/loadImage';
import { QemuDriver } from '../../vmm/qemu/QemuDriver';
import { TemplateManager } from '../../vmm/templates/TemplateManager';
import { action, note, out, printJson } from '../context';

/** `agentvm template build --json` output. */
export const templateBuildOutputSchema = z.object({
  key: z.string(),
  profile: z.string(),
  memoryMiB: z.number(),
  vcpus: z.number(),
  memoryPath: z.string(),
  diskPath: z.string(),
  statePath: z.string(),
  stateSizeBytes: z.number(),
  removedStale: z.array(z.string()),
});

/**
 * `agentvm template build [--profile NAME]`: build (or find) the template agents of that profile
 * are cloned from, in the data directory, without a broker; removes stale templates.
 */
export function registerTemplateCommand(program: Command): void {
  const template = program
    .command('template')
    .description('build the VM templates agents start from');

  template
    .command('build')
    .description('boot a VM once to "guest agent ready" and save it for fast agent starts')
    .option('--profile <name>', 'profile whose memory and vCPUs the template has', 'demo')
    .option('--json', 'print the template as JSON')
    .action(
      action(async (options: { profile: string; json?: boolean }) => {
        const profile = localProfile(options.profile);
        const image = loadImage(dataDir());
        const templates = new TemplateManager({
          dataDir: dataDir(),
          driver: new QemuDriver(),
          logger: silentLogger,
        });
        const removedStale = await templates.removeStale(image.key);
        // The broker gives every VM the egress network device, whatever its allowlist.
        const shape = { image, memoryMiB: profile.memoryMiB, vcpus: profile.vcpus, egress: true };
        if (!templates.find(shape).template) note('booting the template VM (this takes a while)');

        const built = await templates.ensure(shape);
        const result = templateBuildOutputSchema.parse({
          key: built.key,
          profile: profile.name,
          memoryMiB: built.memoryMiB,
          vcpus: built.vcpus,
          memoryPath: built.memoryPath,
          diskPath: built.diskPath,
          statePath: built.snapshot.statePath,
          stateSizeBytes: built.snapshot.sizeBytes,
          removedStale,
        });
        if (options.json) {
          printJson(result);
          return;
        }

        out(`template   ${result.key} (${result.memoryMiB} MiB, ${result.vcpus} vCPU)`);
        out(`memory     ${result.memoryPath}`);
        out(`disk       ${result.diskPath}`);
        out(`state      ${result.statePath} (${result.stateSizeBytes} bytes)`);
        for (const dir of removedStale) out(`removed    ${dir} (stale)`);
      }),
    );
}

/**
 * The profile read by this process, not by the broker: `template build` runs without one, so an
 * unknown profile is explained with this shell's profile directories and AGENTVM_PROFILES_DIR.
 */
function localProfile(name: string) {
  try {
    return new ProfileRegistry().get(name);
  } catch (error) {
    if (!(error instanceof AgentvmError) || error.code !== 'PROFILE_NOT_FOUND') throw error;

    throw new AgentvmError(
      'PROFILE_NOT_FOUND',
      error.message,
      `template build reads the profiles itself, without the broker, from ${defaultProfileDirectories().join(', ')}: run it with the AGENTVM_PROFILES_DIR the broker was started with, or pass --profile with one of the names above.`,
    );
  }
}
