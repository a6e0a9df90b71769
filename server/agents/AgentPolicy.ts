import path from 'node:path';
import type { Profile } from '../../protocol/api';
import type { GuestTask } from '../../protocol/control';
import { AgentvmError } from '../../protocol/errors';
import {
  profilePolicySchema,
  type AuditDecision,
  type AuditEntry,
  type AuditVerifyResult,
  type EgressPolicy,
} from '../../protocol/policy';
import { agentDir } from '../config/paths';
import { registerSecret, type Logger } from '../log';
import { AuditHeadRecorder } from '../policy/audit/AuditHeadRecorder';
import { AuditLog, type AuditQuery } from '../policy/audit/AuditLog';
import { CertificateAuthority } from '../policy/egress/CertificateAuthority';
import {
  EgressProxy,
  type AgentEgressPolicy,
  type EgressProxyOptions,
  type GithubEgress,
} from '../policy/egress/EgressProxy';
import {
  egressSocketPath,
  GUEST_CA_PATH,
  GUEST_PROXY_ADDRESS,
  GUEST_PROXY_PORT,
  guestProxyEnvironment,
} from '../policy/egress/guestEgress';
import { HostAllowlist } from '../policy/egress/HostAllowlist';
import { checkShape } from '../policy/limits/evaluateLimits';
import {
  guestEnvironment,
  makePlaceholder,
  readSecretSource,
  resolveSecrets,
  type SecretBinding,
} from '../policy/secrets/SecretBindings';
import type { AgentRecord } from '../store/Store';
import type { VmSpec } from '../vmm/VmmDriver';
import { AgentLimitPolicy, limitsOf } from './AgentLimitPolicy';
import { PolicyStateFiles } from './PolicyStateFiles';

export interface AgentPolicyOptions {
  db: ConstructorParameters<typeof AuditLog>[0];
  dataDir: string;
  logger: Logger;
  /** Directory a profile's relative secret files resolve against (its profile file's folder). */
  profileBaseDir: (profileName: string) => string | undefined;
  /** Host environment `{ env }` secret sources read from; process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** Passed to the egress proxy (tests add an upstream CA or a shorter timeout). */
  proxy?: Pick<EgressProxyOptions, 'upstreamCa' | 'upstreamTimeoutMs'>;
}

interface LiveBindings {
  secrets: SecretBinding[];
  github?: GithubEgress;
}

const GITHUB_SECRET = 'GITHUB_TOKEN';

/**
 * Every policy decision about one agent, for the agent manager: admission (shape and secrets),
 * the egress listener with its allowlist and secrets while the agent lives, the guest's proxy
 * environment and CA, limits, and the audit trail. server/policy decides; this applies it.
 */
export class AgentPolicy {
  readonly audit: AuditLog;
  /** Time and cost limits (TimeLimits arms and checks them). */
  readonly limits: AgentLimitPolicy;
  private readonly states: PolicyStateFiles;
  private readonly auditHead: AuditHeadRecorder;
  private ca?: CertificateAuthority;
  private proxy?: EgressProxy;
  private readonly bindings = new Map<string, LiveBindings>();
  /** `{ vscode }` secret values sent with the create request; memory only. */
  private readonly provided = new Map<string, Record<string, string>>();

  constructor(private readonly options: AgentPolicyOptions) {
    this.audit = new AuditLog(options.db, () => this.secretValues(), { keyDir: options.dataDir });
    this.auditHead = new AuditHeadRecorder(this.audit, options.logger);
    this.states = new PolicyStateFiles(options.dataDir);
    this.limits = new AgentLimitPolicy(this.states, (actor, agentId, action, details) =>
      this.record(actor, agentId, action, 'info', details),
    );
  }

  /** Load (or create) the broker's CA and start the proxy; call before any agent boots. */
  async start(): Promise<void> {
    if (this.proxy) return;

    this.auditHead.start();
    this.ca = await CertificateAuthority.loadOrCreate(path.join(this.options.dataDir, 'egress-ca'));
    this.proxy = new EgressProxy({
      ca: this.ca,
      audit: this.audit.sink,
      log: this.options.logger,
      ...this.options.proxy,
    });
  }

  /** Close every agent's listener. Safe to call twice. */
  async close(): Promise<void> {
    await this.proxy?.close();
    this.auditHead.stop();
    this.bindings.clear();
  }

  /**
   * Refuses a profile before anything is stored: a VM shape over the limits (LIMIT_EXCEEDED), an
   * allowlist entry that does not parse, or a secret whose source is empty (SECRET_MISSING).
   */
  admit(profile: Profile, provided: Record<string, string> = {}): void {
    const policy = profilePolicySchema.parse(profile);
    const hit = checkShape(profile, limitsOf(profile));
    if (hit) throw new AgentvmError('LIMIT_EXCEEDED', `profile ${profile.name}: ${hit.message}`);

    try {
      new HostAllowlist(profile.allowedHosts);
      for (const secret of Object.values(policy.secrets)) new HostAllowlist(secret.hosts);
    } catch (error) {
      throw new AgentvmError(
        'VALIDATION_FAILED',
        `profile ${profile.name}: ${(error as Error).message}`,
      );
    }

    this.resolve(profile.name, profile, {}, provided);
  }

  /**
   * Audits the spawn and remembers the values sent with the request. Called before the agent is
   * stored: an agent the audit log cannot record (its disk is full) is not created.
   */
  created(record: AgentRecord, provided: Record<string, string> = {}): void {
    const policy = profilePolicySchema.parse(record.profileSpec);
    this.record(record.owner, record.id, 'agent.spawn', 'allow', {
      profile: record.profile,
      memoryMiB: record.profileSpec.memoryMiB,
      vcpus: record.profileSpec.vcpus,
      allowedHosts: record.profileSpec.allowedHosts,
      secrets: Object.keys(policy.secrets),
      githubScopes: policy.github?.scopes ?? [],
    });
    if (Object.keys(provided).length > 0) this.provided.set(record.id, provided);
  }

  /**
   * Opens (or finds) the agent's egress listener and returns what the VM spec needs. Idempotent:
   * boot, restore and reattach all call it. Every VM gets the network device, even with an empty
   * allowlist, because a snapshot restores only into the device layout it was taken with.
   */
  async prepare(record: AgentRecord): Promise<NonNullable<VmSpec['egress']>> {
    const proxy = this.requireProxy();
    const existing = proxy.endpoint(record.id);
    if (existing) return egressSpec(existing.socketPath);

    const saved = this.states.load(record.id);
    const live = this.resolve(
      record.profile,
      record.profileSpec,
      saved.placeholders,
      this.provided.get(record.id) ?? {},
    );
    for (const binding of allBindings(live)) registerSecret(binding.value);

    const policy: AgentEgressPolicy = {
      actor: record.owner,
      allowedHosts: saved.allowedHosts ?? record.profileSpec.allowedHosts,
      secrets: live.secrets,
      github: live.github,
    };
    const { socketPath } = this.plannedEgress(record.id);
    await proxy.addAgent(record.id, policy, socketPath);
    this.bindings.set(record.id, live);
    const placeholders = Object.fromEntries(
      allBindings(live).map((binding) => [binding.name, binding.placeholder]),
    );
    this.states.update(record.id, { placeholders });
    this.options.logger.info('egress.listening', { agentId: record.id, socketPath });
    return egressSpec(socketPath);
  }

  /**
   * The VM spec's egress part the agent with this id gets once its listener is open: a stable path
   * per agent, so a VM that outlived a broker restart still relays to it, and a VM launched ahead
   * of its agent (a spare, see SpareVms) relays where the agent's listener will be.
   */
  plannedEgress(agentId: string): NonNullable<VmSpec['egress']> {
    return egressSpec(egressSocketPath(agentDir(agentId, this.options.dataDir)));
  }

  /** The VM spec's egress part for an agent whose listener is open; undefined otherwise. */
  egress(agentId: string): VmSpec['egress'] {
    const endpoint = this.proxy?.endpoint(agentId);
    return endpoint ? egressSpec(endpoint.socketPath) : undefined;
  }

  /** Guest environment: proxy variables plus a placeholder for every secret (never a value). */
  guestEnv(agentId: string): Record<string, string> {
    const live = this.bindings.get(agentId);
    return { ...guestProxyEnvironment(), ...guestEnvironment(live ? allBindings(live) : []) };
  }

  /** Files the guest needs: the broker's CA certificate, which the guest agent adds to its trust store. */
  guestFiles(): GuestTask['files'] {
    const ca = this.ca;
    if (!ca) return [];

    return [{ path: GUEST_CA_PATH, mode: 0o644, data: Buffer.from(ca.certPem).toString('base64') }];
  }

  /** Closes the agent's listener and forgets its secret values (the agent ended or was removed). */
  async release(agentId: string): Promise<void> {
    this.bindings.delete(agentId);
    this.provided.delete(agentId);
    await this.proxy?.removeAgent(agentId);
  }

  /** Replaces the allowlist of an agent; applies at once to a live listener, and after restarts. */
  setAllowedHosts(record: AgentRecord, allowedHosts: string[], actor: string): EgressPolicy {
    try {
      new HostAllowlist(allowedHosts);
    } catch (error) {
      throw new AgentvmError('VALIDATION_FAILED', (error as Error).message);
    }

    const before = this.states.load(record.id).allowedHosts ?? record.profileSpec.allowedHosts;
    // Audited first: a change the audit log cannot record (its disk is full) is not made.
    this.record(actor, record.id, 'egress.allowlist', 'allow', { before, after: allowedHosts });
    this.states.update(record.id, { allowedHosts });
    if (this.proxy?.endpoint(record.id)) this.proxy.setAllowedHosts(record.id, allowedHosts);
    return this.describe(record);
  }

  /** The egress policy in force for an agent. */
  describe(record: AgentRecord): EgressPolicy {
    const saved = this.states.load(record.id);
    return {
      agentId: record.id,
      allowedHosts: saved.allowedHosts ?? record.profileSpec.allowedHosts,
      secrets: Object.keys(profilePolicySchema.parse(record.profileSpec).secrets),
      socketPath: this.proxy?.endpoint(record.id)?.socketPath ?? null,
    };
  }

  /** Appends one audit row; the single way the broker (not the proxy) writes to the log. */
  record(
    actor: string,
    agentId: string | null,
    action: string,
    decision: AuditDecision,
    details: Record<string, unknown> = {},
  ): void {
    this.audit.append({ actor, agentId, action, decision, details });
  }

  /** Audit rows; `agentIds` limits them to those agents (a non-admin's own). */
  auditRows(query: AuditQuery, agentIds?: ReadonlySet<string>): AuditEntry[] {
    const rows = this.audit.list(query);
    return agentIds
      ? rows.filter((row) => row.agentId !== null && agentIds.has(row.agentId))
      : rows;
  }

  verifyAudit(): AuditVerifyResult {
    return this.audit.verify();
  }

  private resolve(
    profileName: string,
    profile: Profile,
    placeholders: Record<string, string>,
    provided: Record<string, string>,
  ): LiveBindings {
    const policy = profilePolicySchema.parse(profile);
    const sourceOptions = {
      env: this.options.env ?? process.env,
      baseDir: this.options.profileBaseDir(profileName),
      provided,
    };
    try {
      const secrets = resolveSecrets(policy.secrets, sourceOptions).map((binding) => ({
        ...binding,
        placeholder: placeholders[binding.name] ?? binding.placeholder,
      }));
      if (!policy.github) return { secrets };

      const grant = policy.github;
      const token: SecretBinding = {
        name: GITHUB_SECRET,
        placeholder: placeholders[GITHUB_SECRET] ?? makePlaceholder(GITHUB_SECRET),
        value: readSecretSource('github.token', grant.token, sourceOptions),
        hosts: new HostAllowlist([grant.apiHost]),
        guestEnv: ['GH_TOKEN', 'GITHUB_TOKEN'],
        allowPlainHttp: grant.allowPlainHttp ?? false,
      };
      const github = {
        apiHost: grant.apiHost,
        scopes: grant.scopes,
        repositories: grant.repositories,
        token,
      };
      return { secrets, github };
    } catch (error) {
      throw new AgentvmError(
        'SECRET_MISSING',
        `profile ${profileName}: ${(error as Error).message}`,
      );
    }
  }

  /** Real secret values of one live agent, or of every live agent when `agentId` is absent. */
  secretValues(agentId?: string): string[] {
    const lives =
      agentId === undefined ? [...this.bindings.values()] : [this.bindings.get(agentId)];
    return lives.flatMap((live) => (live ? allBindings(live).map((binding) => binding.value) : []));
  }

  private requireProxy(): EgressProxy {
    if (!this.proxy)
      throw new AgentvmError('INTERNAL', 'the egress proxy is not started (AgentPolicy.start)');

    return this.proxy;
  }
}

function allBindings(live: LiveBindings): SecretBinding[] {
  return live.github ? [...live.secrets, live.github.token] : live.secrets;
}

function egressSpec(socketPath: string): NonNullable<VmSpec['egress']> {
  return { guestAddress: GUEST_PROXY_ADDRESS, guestPort: GUEST_PROXY_PORT, socketPath };
}
