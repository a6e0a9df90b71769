import fs from 'node:fs';
import type { Accelerator } from './VmmDriver';

export interface AcceleratorChoice {
  accel: Accelerator;
  /** Why this accelerator was chosen, for `agentvm doctor` and the agent's event log. */
  reason: string;
}

/**
 * Choose KVM or TCG. `AGENTVM_ACCEL=kvm|tcg` forces the choice. Otherwise KVM is used only when
 * /dev/kvm opens read-write AND the CPU advertises vmx or svm: the nested, paravirtual KVM on the
 * machines this project is built on exposes /dev/kvm without those flags and hangs stock guest
 * kernels, so /dev/kvm alone is not enough.
 */
export function detectAccelerator(env: NodeJS.ProcessEnv = process.env): AcceleratorChoice {
  const forced = env.AGENTVM_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') {
    return { accel: forced, reason: `forced by AGENTVM_ACCEL=${forced}` };
  }

  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return { accel: 'tcg', reason: '/dev/kvm is missing or not accessible' };
  }

  const cpuinfo = safeRead('/proc/cpuinfo');
  if (!/^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo)) {
    return {
      accel: 'tcg',
      reason:
        '/dev/kvm exists but the CPU shows no vmx/svm flag (nested paravirtual KVM hangs guests)',
    };
  }

  return { accel: 'kvm', reason: '/dev/kvm is usable and the CPU has hardware virtualisation' };
}

function safeRead(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
