import fs from 'node:fs';

/**
 * The host's TSC frequency in kHz, or undefined when it cannot be told.
 *
 * Why the driver needs it: under TCG the guest's TSC is the host's TSC, and microvm has no HPET or
 * ACPI PM timer, so the guest kernel can calibrate its TSC only against the emulated PIT. On a
 * loaded host that calibration fails, no clock source is left, and the guest hangs before init
 * with no console output. Passing `tsc_early_khz=` skips the calibration.
 */
export function hostTscKhz(
  cpuinfo: string = readCpuinfo(),
  sysfsFile = '/sys/devices/system/cpu/cpu0/tsc_freq_khz',
): number | undefined {
  const fromSysfs = readNumber(sysfsFile);
  if (fromSysfs) return fromSysfs;

  // An Intel model name states the nominal frequency, which is the TSC rate on constant-TSC CPUs.
  const nominal = /^model name\s*:.*@\s*([\d.]+)\s*GHz/m.exec(cpuinfo);
  if (nominal) return Math.round(Number(nominal[1]) * 1_000_000);

  // Otherwise the first CPU's current clock: exact on VMs that report a fixed one, close elsewhere.
  const current = /^cpu MHz\s*:\s*([\d.]+)/m.exec(cpuinfo);
  if (current && Number(current[1]) > 0) return Math.round(Number(current[1]) * 1_000);

  return undefined;
}

function readCpuinfo(): string {
  try {
    return fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

function readNumber(file: string): number | undefined {
  try {
    const value = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isFinite(value) && value > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}
