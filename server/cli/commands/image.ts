import type { Command } from 'commander';
import { z } from 'zod';
import { dataDir } from '../../config/paths';
import { ensureImage } from '../../vmm/image/ensureImage';
import { loadImage } from '../../vmm/image/loadImage';
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
