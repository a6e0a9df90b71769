import type { Command } from 'commander';
import { checkHost } from '../../doctor/checkHost';
import { fixHost, type HostFixResult } from '../../doctor/fixHost';
import { doctorOutputSchema, type HostReport } from '../../doctor/hostReport';
import { action, note, out, printJson } from '../context';
import { exitCodes } from '../exitCodes';

/** `agentvm doctor [--fix] [--json]`: check (and optionally install) what the host needs. */
export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('check the host for QEMU, a cloud kernel and the image build tools')
    .option('--fix', 'install missing Debian packages (as root), or print the command to run')
    .option('--json', 'print the report as JSON')
    .action(
      action(async (options: { fix?: boolean; json?: boolean }) => {
        let report = await checkHost();
        let fix: HostFixResult | undefined;
        if (options.fix && !report.ok) {
          fix = await fixHost(report, { onLine: (line) => note(`apt-get: ${line}`) });
          if (fix.installed) report = await checkHost();
        }

        if (options.json) printJson(doctorOutputSchema.parse({ ...report, fix }));
        else printReport(report, fix);
        return report.ok ? exitCodes.ok : exitCodes.failure;
      }),
    );
}

function printReport(report: HostReport, fix: HostFixResult | undefined): void {
  const width = Math.max(...report.requirements.map((requirement) => requirement.name.length));
  for (const requirement of report.requirements) {
    const status = requirement.ok ? 'ok     ' : 'missing';
    const where = requirement.ok ? requirement.detail : `install ${requirement.package}`;
    out(`${status}  ${requirement.name.padEnd(width)}  ${where}`);
  }
  out(`accel    ${report.accelerator.accel}: ${report.accelerator.reason}`);

  if (report.ok) return;
  if (fix && !fix.installed) {
    out(`\nNot root, so nothing was installed. Run:\n  ${fix.command}`);
  } else if (!fix) {
    out(`\nMissing packages: ${report.missingPackages.join(' ')} (run \`agentvm doctor --fix\`)`);
  }
}
