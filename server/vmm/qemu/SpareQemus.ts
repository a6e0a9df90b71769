import path from 'node:path';
import type { VmSpec, VmTemplate } from '../VmmDriver';
import { buildQemuArgs } from './buildQemuArgs';
import type { QemuDriverContext } from './QemuDriver';
import { killLaunched, launchPlan, launchQemu, type LaunchedQemu } from './startQemu';
import type { StartMode } from './StartMode';
import { memoryPlan } from './StartMode';

/** A QEMU launched for the clone expected in one VM directory. */
interface Spare {
  templateKey: string;
  /** Settles with the launched QEMU, or undefined when the launch failed (it was logged). */
  launched: Promise<LaunchedQemu | undefined>;
}

/**
 * QEMUs launched ahead of need, each in the VM directory where a clone of a template is expected
 * next: started paused, waiting for the template's state (`-incoming defer`, the state file
 * already open as its descriptor 3), its disk overlay made and QMP connected. Launching QEMU, a
 * process of 50 libraries that sets up its devices, is ≈30–60 ms of a clone's start under TCG, and
 * more on a busy host; a clone that finds its spare starts at loading the template. The template
 * is still restored on demand: no guest instruction of a spare runs before its clone takes it.
 *
 * A spare is only used by a clone whose QEMU command line would be the spare's (same template
 * files, memory, vCPUs, egress relay, accelerator), so nothing but time tells the two starts
 * apart. Anything else that starts a VM in that directory ends the spare first.
 */
export class SpareQemus {
  /** By resolved VM directory. */
  private readonly spares = new Map<string, Spare>();

  constructor(private readonly context: QemuDriverContext) {}

  /**
   * Launch a spare in `spec.vmDir` for a clone of `template`; true once it waits for the template,
   * false when it could not be launched (logged; a clone there then starts as usual). A directory
   * holds at most one spare: false when it already has one.
   */
  async prepare(spec: VmSpec, template: VmTemplate): Promise<boolean> {
    const vmDir = path.resolve(spec.vmDir);
    if (this.spares.has(vmDir)) return false;

    const mode: StartMode = { kind: 'clone', template };
    const deadline = Date.now() + spec.bootTimeoutMs;
    const launched = launchQemu(this.context, spec, mode, deadline).then(
      (qemu) => {
        this.context.logger.debug('vm.spare_ready', { vmId: spec.id, pid: qemu.process.pid });
        return qemu;
      },
      (error: Error) => {
        this.context.logger.warn('vm.spare_failed', { vmId: spec.id, error: error.message });
        if (this.spares.get(vmDir)?.launched === launched) this.spares.delete(vmDir);
        return undefined;
      },
    );
    this.spares.set(vmDir, { templateKey: template.key, launched });
    return (await launched) !== undefined;
  }

  /** Whether `vmDir` holds a spare (launched or launching). */
  has(vmDir: string): boolean {
    return this.spares.has(path.resolve(vmDir));
  }

  /**
   * The spare in `spec.vmDir` when its QEMU still runs and is the one `mode` would launch there;
   * a spare that does not fit is ended. Either way the directory holds no spare afterwards.
   */
  async take(spec: VmSpec, mode: StartMode): Promise<LaunchedQemu | undefined> {
    const vmDir = path.resolve(spec.vmDir);
    const spare = this.spares.get(vmDir);
    if (!spare) return undefined;

    this.spares.delete(vmDir);
    const launched = await spare.launched;
    if (!launched) return undefined;

    const fits =
      mode.kind === 'clone' &&
      mode.template.key === spare.templateKey &&
      launched.process.isRunning &&
      sameArgs(launched.args, expectedArgs(spec, mode, launched));
    if (fits) return launched;

    this.context.logger.info('vm.spare_unused', { vmId: spec.id, pid: launched.process.pid });
    await killLaunched(launched);
    return undefined;
  }

  /** End the spare in `vmDir`, if there is one; true if a QEMU was ended. */
  async discard(vmDir: string): Promise<boolean> {
    const resolved = path.resolve(vmDir);
    const spare = this.spares.get(resolved);
    if (!spare) return false;

    this.spares.delete(resolved);
    const launched = await spare.launched;
    if (!launched) return false;

    await killLaunched(launched);
    this.context.logger.debug('vm.spare_discarded', { vmDir: resolved, pid: launched.process.pid });
    return true;
  }

  /** End every spare (the broker stops). */
  async discardAll(): Promise<void> {
    await Promise.all([...this.spares.keys()].map((vmDir) => this.discard(vmDir)));
  }
}

/** The command line a start in `mode` would give QEMU in the spare's directory. */
function expectedArgs(spec: VmSpec, mode: StartMode, launched: LaunchedQemu): string[] {
  const plan = {
    ...launchPlan(spec, launched.paths, launched.accel),
    ...memoryPlan(mode),
    incoming: true,
  };
  return buildQemuArgs(plan);
}

/**
 * Equal command lines but for the kernel's: a restored guest does not boot, and its command line
 * carries the TSC rate read from the host, which some hosts report as it drifts.
 */
function sameArgs(a: readonly string[], b: readonly string[]): boolean {
  const kernelLine = a.indexOf('-append') + 1;
  return a.length === b.length && a.every((arg, index) => index === kernelLine || arg === b[index]);
}
