import { z } from 'zod';

/** One thing agentvm needs on the host, as `agentvm doctor` reports it. */
export const hostRequirementSchema = z.object({
  /** What is needed: a program name, or a short description (`cloud kernel`). */
  name: z.string(),
  ok: z.boolean(),
  /** The Debian package that provides it. */
  package: z.string(),
  /** Where it was found, or why it counts as missing. */
  detail: z.string(),
});
export type HostRequirement = z.infer<typeof hostRequirementSchema>;

/** The result of {@link checkHost}; also the `agentvm doctor --json` output. */
export const hostReportSchema = z.object({
  /** True when every requirement is met (KVM is not a requirement: TCG works everywhere). */
  ok: z.boolean(),
  requirements: z.array(hostRequirementSchema),
  /** Debian packages to install for the missing requirements, each once. */
  missingPackages: z.array(z.string()),
  accelerator: z.object({ accel: z.enum(['kvm', 'tcg']), reason: z.string() }),
});
export type HostReport = z.infer<typeof hostReportSchema>;

/** `agentvm doctor --json` output: the report (after any fix) and what `--fix` did. */
export const doctorOutputSchema = hostReportSchema.extend({
  fix: z.object({ installed: z.boolean(), command: z.string() }).optional(),
});
export type DoctorOutput = z.infer<typeof doctorOutputSchema>;
