import type { Logger } from '../log';
import type { TemplateManager } from '../vmm/templates/TemplateManager';
import type { Vm, VmmDriver, VmSpec, VmTemplate } from '../vmm/VmmDriver';

/** How an agent's VM came to be, for its event log. */
export interface StartedVm {
  vm: Vm;
  bootPath: 'template' | 'cold';
  /** Why a cold boot was taken, or which template was cloned. */
  reason: string;
  /** From the start of this call until the guest agent answered, in milliseconds. */
  durationMs: number;
  /** The template cloned, when one was. */
  template?: VmTemplate;
}

/**
 * Start an agent's VM: clone the template for its shape when there is a valid one (waiting for a
 * build another agent already started), otherwise cold-boot and, when templates are built on
 * demand, start building one in the background for the agents that follow. Aborting `signal`
 * gives up at whichever step is under way (the template wait, the clone or the boot), ends the VMM
 * process the driver launched and rejects with the signal's reason.
 */
export async function startAgentVm(
  driver: VmmDriver,
  templates: TemplateManager | undefined,
  spec: VmSpec,
  logger: Logger,
  signal?: AbortSignal,
): Promise<StartedVm> {
  signal?.throwIfAborted();

  const startedAt = performance.now();
  const elapsed = () => Math.round(performance.now() - startedAt);
  let reason = 'templates are turned off';

  if (templates && driver.clone) {
    const shape = {
      image: spec.image,
      memoryMiB: spec.memoryMiB,
      vcpus: spec.vcpus,
      egress: spec.egress !== undefined,
    };
    let lookup = templates.find(shape);
    if (!lookup.template && templates.isBuilding(shape)) {
      lookup = await untilAborted(
        templates.ensure(shape).then(
          (template) => ({ template }),
          (error: Error) => ({ reason: `the template build failed: ${error.message}` }),
        ),
        signal,
      );
    }

    if (lookup.template) {
      try {
        const vm = await driver.clone(spec, lookup.template, { signal });
        const ahead = vm.startedFromSpare ? ' into a VMM process launched ahead' : '';
        return {
          vm,
          bootPath: 'template',
          reason: `cloned template ${lookup.template.key.slice(0, 12)}${ahead}`,
          durationMs: elapsed(),
          template: lookup.template,
        };
      } catch (error) {
        if (signal?.aborted) throw error;

        reason = `cloning template ${lookup.template.key.slice(0, 12)} failed: ${(error as Error).message}`;
        logger.warn('template.clone_failed', { vmId: spec.id, error: (error as Error).message });
      }
    } else {
      reason = lookup.reason;
      if (templates.buildInBackground(shape)) reason += '; building one for the next agents';
    }
  }

  const vm = await driver.boot(spec, { signal });
  return { vm, bootPath: 'cold', reason, durationMs: elapsed() };
}

/** `promise`, or the signal's reason as soon as it is aborted (the work behind it goes on). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason as Error);

  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
