import { z } from 'zod';

/**
 * Policy parts of a profile (secrets, GitHub grant, resource limits) and the audit log's wire
 * types. Owned by server/policy; a profile embeds {@link profilePolicySchema}.
 */

/** Where the host reads a secret's real value. The VM never sees it. */
export const secretSourceSchema = z.union([
  z.object({ env: z.string().min(1) }).strict(),
  /** Host path; relative paths are relative to the profile file. Trailing newlines are dropped. */
  z.object({ file: z.string().min(1) }).strict(),
  /** A key of VS Code's SecretStorage; the extension sends the value when it delegates. */
  z.object({ vscode: z.string().min(1) }).strict(),
]);
export type SecretSource = z.infer<typeof secretSourceSchema>;

/** Headers a secret may never be injected into: routing, framing, or stripped by the proxy. */
export const unnamableSecretHeaders = [
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-authenticate',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
] as const;

/** A request header a secret binding names, e.g. `X-Api-Key`. */
export const secretHeaderNameSchema = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'a header name is an HTTP token such as X-Api-Key')
  .refine((name) => !(unnamableSecretHeaders as readonly string[]).includes(name.toLowerCase()), {
    message: `a secret cannot be sent in ${unnamableSecretHeaders.join(', ')}`,
  });

/** One secret of a profile: where its value comes from and which hosts may receive it. */
export const profileSecretSchema = z.object({
  source: secretSourceSchema,
  /** Allowlist entries (same syntax as allowedHosts) whose requests get the real value. */
  hosts: z.array(z.string()).min(1),
  /** Environment variable in the guest that holds the placeholder; defaults to the secret's name. */
  guestEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
    .optional(),
  /**
   * Request headers (case-insensitive) where the placeholder is swapped for the value; default
   * `["authorization"]`. A placeholder anywhere else is sent unchanged and audited as withheld.
   */
  headers: z.array(secretHeaderNameSchema).min(1).optional(),
  /**
   * Inject over cleartext HTTP too (loopback test servers). Without it the value is sent only on
   * connections the proxy makes with TLS.
   */
  allowPlainHttp: z.boolean().optional(),
});
export type ProfileSecret = z.infer<typeof profileSecretSchema>;

export const githubResources = [
  'contents',
  'pulls',
  'issues',
  'labels',
  'metadata',
  'statuses',
  'checks',
  'actions',
] as const;

/** A granted GitHub permission, e.g. `issues:read`; write implies read. */
export const githubScopeSchema = z
  .string()
  .regex(
    new RegExp(`^(${githubResources.join('|')}):(read|write)$`),
    `a GitHub scope is <resource>:read or <resource>:write, resource one of ${githubResources.join(', ')}`,
  );

/** GitHub access for an agent: REST calls to the API host are checked against `scopes`. */
export const githubGrantSchema = z.object({
  scopes: z.array(githubScopeSchema).default([]),
  /** `owner/name`s the agent may touch under /repos; omit for any repository the token reaches. */
  repositories: z.array(z.string().regex(/^[^/\s]+\/[^/\s]+$/)).optional(),
  /** The real token; the guest gets a placeholder in GH_TOKEN and GITHUB_TOKEN. */
  token: secretSourceSchema,
  /** API host (with optional :port); tests point it at a local server. */
  apiHost: z.string().default('api.github.com'),
  /** Send the token over cleartext HTTP too (a loopback test server); TLS only otherwise. */
  allowPlainHttp: z.boolean().optional(),
});
export type GithubGrant = z.infer<typeof githubGrantSchema>;

/** Limits beyond the profile's timeLimitMs; 0 means none. */
export const resourceLimitsSchema = z.object({
  /** Most memory a profile may ask for, in MiB. */
  maxMemoryMiB: z.number().int().nonnegative().default(0),
  maxVcpus: z.number().int().nonnegative().default(0),
  /** Budget in unit-seconds: seconds running × (vcpus + memoryMiB / 1024). */
  costBudgetUnitSeconds: z.number().nonnegative().default(0),
});
export type ResourceLimits = z.infer<typeof resourceLimitsSchema>;

/** The policy fields a profile carries next to allowedHosts and onLimit. */
export const profilePolicySchema = z.object({
  secrets: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), profileSecretSchema).default({}),
  github: githubGrantSchema.optional(),
  limits: resourceLimitsSchema.default({ maxMemoryMiB: 0, maxVcpus: 0, costBudgetUnitSeconds: 0 }),
});
export type ProfilePolicy = z.infer<typeof profilePolicySchema>;

export const auditDecisionSchema = z.enum(['allow', 'deny', 'info']);
export type AuditDecision = z.infer<typeof auditDecisionSchema>;

/** One row of the append-only audit log (GET /v1/audit, `agentvm audit --json`). */
export const auditEntrySchema = z.object({
  id: z.number().int(),
  /** Milliseconds since the epoch. */
  at: z.number(),
  /** The user on whose behalf the action happened (the delegating token's user, or `system`). */
  actor: z.string(),
  agentId: z.string().nullable(),
  /** e.g. `agent.spawn`, `egress.request`, `egress.connect`, `github.call`, `limit.hit`. */
  action: z.string(),
  decision: auditDecisionSchema,
  /** Host, method, path, reason...; never bodies or secret values. */
  details: z.record(z.string(), z.unknown()),
  /** sha256 hex of the previous row's hash and this row's canonical form. */
  hash: z.string(),
});
export type AuditEntry = z.infer<typeof auditEntrySchema>;

/** Result of checking the audit chain (GET /v1/audit/verify, `agentvm audit --verify`). */
export const auditVerifyResultSchema = z.object({
  ok: z.boolean(),
  rowsChecked: z.number().int(),
  /** Id of the first row whose hash does not match; null when the chain is intact. */
  firstBadRowId: z.number().int().nullable(),
  reason: z.string().nullable(),
  /**
   * Rows written before the broker had its audit key (older agentvm): chained with plain sha256,
   * so they prove order but not that nobody rewrote them. Absent from older brokers' answers.
   */
  unkeyedRows: z.number().int().optional(),
});
export type AuditVerifyResult = z.infer<typeof auditVerifyResultSchema>;

/** POST /v1/agents/:id/egress: replace a running agent's allowlist. */
export const egressUpdateRequestSchema = z.object({
  /** The complete new allowlist (same syntax as a profile's allowedHosts). */
  allowedHosts: z.array(z.string().min(1)),
});
export type EgressUpdateRequest = z.infer<typeof egressUpdateRequestSchema>;

/** An agent's egress policy as the proxy applies it now (POST /v1/agents/:id/egress). */
export const egressPolicySchema = z.object({
  agentId: z.string(),
  allowedHosts: z.array(z.string()),
  /** Names of the secrets bound for this agent (never their values). */
  secrets: z.array(z.string()),
  /** Unix socket of the agent's proxy listener (only the broker's user may connect); null while the agent has none. */
  socketPath: z.string().nullable(),
});
export type EgressPolicy = z.infer<typeof egressPolicySchema>;
