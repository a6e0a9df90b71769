import { runCommand } from '../vmm/image/runCommand';
import type { HostReport } from './hostReport';

/** What {@link fixHost} did. */
export interface HostFixResult {
  /** True when apt-get ran (as root) and succeeded; false when there was nothing to do or no root. */
  installed: boolean;
  /** The shell command that installs the missing packages; empty when nothing is missing. */
  command: string;
}

/** Options for {@link fixHost}. */
export interface HostFixOptions {
  /** Receives each line of apt-get output. */
  onLine?: (line: string) => void;
  /** Whether this process may run apt-get itself; `uid === 0` by default. */
  isRoot?: boolean;
}

/**
 * Install the packages `report` found missing. As root this runs `apt-get update` and a
 * non-interactive `apt-get install --no-install-recommends`; otherwise it runs nothing and returns
 * the command (with sudo) for the user to run. Rejects when apt-get fails.
 */
export async function fixHost(
  report: HostReport,
  options: HostFixOptions = {},
): Promise<HostFixResult> {
  const packages = report.missingPackages;
  if (packages.length === 0) return { installed: false, command: '' };

  const isRoot = options.isRoot ?? process.getuid?.() === 0;
  const command = installCommand(packages, isRoot);
  if (!isRoot) return { installed: false, command };

  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await runCommand('apt-get', ['update'], { onLine: options.onLine, env });
  await runCommand('apt-get', ['install', '-y', '--no-install-recommends', ...packages], {
    onLine: options.onLine,
    env,
  });
  return { installed: true, command };
}

/** The exact shell command that installs `packages`, prefixed with sudo when not root. */
export function installCommand(packages: string[], isRoot: boolean): string {
  const sudo = isRoot ? '' : 'sudo ';
  return (
    `${sudo}apt-get update && ${sudo}env DEBIAN_FRONTEND=noninteractive ` +
    `apt-get install -y --no-install-recommends ${packages.join(' ')}`
  );
}
