import type { Command } from 'commander';
import { z } from 'zod';
import { dataDir } from '../../config/paths';
import { ensureImage } from '../../vmm/image/ensureImage';
import { defaultImageSources, hashImageInputs } from '../../vmm/image/imageInputs';
import { loadImage } from '../../vmm/image/loadImage';
import { pruneImages } from '../../vmm/image/pruneImages';
import type { GuestImage } from '../../vmm/VmmDriver';
import { action, note, out, printJson } from '../context';

/** `agentvm image build --json` and `agentvm image status --json` output. */
export const guestImageOutputSchema = z.object({
  key: z.string(),
  kernelPath: z.string(),
  initramfsPath: z.string(),
  rootfsPath: z.string(),
});

/** `agentvm image build [--force]` and `agentvm image status`: the guest image in the data dir. */
export function registerImageCommand(program: Command): void {
  const image = program.command('image').description('build or inspect the guest VM image');

  image
    .command('build')
    .description(
      'build the kernel, initramfs and root filesystem image (needs root for debootstrap)',
    )
    .option('--force', 'rebuild even if an image for the current inputs exists')
    .option('--json', 'print the image paths as JSON')
    .action(
      action(async (options: { force?: boolean; json?: boolean }) => {
        const built = await ensureImage({ force: options.force === true, onProgress: note });
        print(built, options.json === true);
      }),
    );

  image
    .command('prune')
    .description(
      'remove guest images older builds left behind that no unfinished agent still uses (and templates built on them)',
    )
    .option('--dry-run', 'only say what would be removed')
    .option('--json', 'print what was looked at as JSON')
    .action(
      action(async (options: { dryRun?: boolean; json?: boolean }) => {
        const root = dataDir();
        const outcome = await pruneImages(root, currentImageKey(), { dryRun: options.dryRun });
        if (options.json) return printJson(outcome);

        const verb = options.dryRun ? 'would remove' : 'removed';
        for (const image of outcome.images) {
          const size = `${Math.round(image.bytes / 2 ** 20)} MiB`;
          if (image.keptBecause)
            out(`kept     ${image.key.slice(0, 12)}  ${size}  (${image.keptBecause})`);
          else out(`${verb.padEnd(8)} ${image.key.slice(0, 12)}  ${size}`);
        }
        for (const template of outcome.templates) out(`${verb} template ${template}`);
        const freed = outcome.images
          .filter((image) => !image.keptBecause)
          .reduce((sum, image) => sum + image.bytes, 0);
        note(`${options.dryRun ? 'would free' : 'freed'} ${Math.round(freed / 2 ** 20)} MiB`);
      }),
    );

  image
    .command('status')
    .description('show the image for the current inputs, or why it is missing or corrupt')
    .option('--json', 'print the image paths as JSON')
    .action(
      action(async (options: { json?: boolean }) => {
        print(loadImage(dataDir()), options.json === true);
      }),
    );
}

function print(image: GuestImage, json: boolean): void {
  if (json) {
    printJson(guestImageOutputSchema.parse(image));
    return;
  }

  out(`key        ${image.key}`);
  out(`kernel     ${image.kernelPath}`);
  out(`initramfs  ${image.initramfsPath}`);
  out(`rootfs     ${image.rootfsPath}`);
}

/** The key of the image the current inputs (this checkout's guest agent, the host's kernel) make. */
function currentImageKey(): string {
  return hashImageInputs(defaultImageSources()).key;
}
