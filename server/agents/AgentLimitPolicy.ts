import type { Profile } from '../../protocol/api';
import { profilePolicySchema } from '../../protocol/policy';
import {
  evaluateLimits,
  msUntilNextLimit,
  type AgentLimits,
  type LimitHit,
} from '../policy/limits/evaluateLimits';
import type { AgentRecord } from '../store/Store';
import type { PolicyStateFiles } from './PolicyStateFiles';

/** Appends one audit row (AgentPolicy.record). */
type AuditRecorder = (
  actor: string,
  agentId: string,
  action: string,
  details: Record<string, unknown>,
) => void;

/**
 * An agent's two running limits: wall-clock time, counted from each start or resume (as the
 * manager arms its timer), and the cost budget, counted over the agent's whole life in VM-seconds
 * from the last time a cost pause granted it again (kept in policy.json, so a restart keeps it).
 */
export class AgentLimitPolicy {
  constructor(
    private readonly states: PolicyStateFiles,
    private readonly audit: AuditRecorder,
  ) {}

  /**
   * Milliseconds until the agent reaches its wall-clock limit (of which `ranMs` are used: the run
   * segment began that long ago) or its cost budget; null when neither applies.
   */
  msUntilLimit(record: AgentRecord, liveMs: number, ranMs = 0): number | null {
    const limits = limitsOf(record.profileSpec);
    const cost = msUntilNextLimit(usage(record, this.costRunningMs(record, liveMs)), {
      ...limits,
      timeLimitMs: 0,
    });
    const time = limits.timeLimitMs ? limits.timeLimitMs - ranMs : null;
    const candidates = [time, cost].filter((value): value is number => value !== null);
    return candidates.length === 0 ? null : Math.max(1, Math.min(...candidates));
  }

  /** The limit reached after `sinceArmMs` of running since the timer was armed, if any. */
  limitReached(record: AgentRecord, sinceArmMs: number, liveMs: number): LimitHit | null {
    const limits = limitsOf(record.profileSpec);
    const time = evaluateLimits(usage(record, sinceArmMs), {
      ...limits,
      costBudgetUnitSeconds: 0,
    });
    if (time) return time;

    return evaluateLimits(usage(record, this.costRunningMs(record, liveMs)), {
      ...limits,
      timeLimitMs: 0,
    });
  }

  /** Audits a limit hit; a cost hit grants the budget again from here, as resume does for time. */
  limitHit(record: AgentRecord, hit: LimitHit, liveMs: number): void {
    if (hit.limit === 'cost') {
      this.states.update(record.id, { costBaselineSeconds: record.vmSeconds + liveMs / 1000 });
    }

    const { limit, action, used, allowed, message } = hit;
    this.audit(record.owner, record.id, 'limit.hit', { limit, action, used, allowed, message });
  }

  private costRunningMs(record: AgentRecord, liveMs: number): number {
    const baseline = this.states.load(record.id).costBaselineSeconds ?? 0;
    return Math.max(0, (record.vmSeconds - baseline) * 1000 + liveMs);
  }
}

/** The profile's limits as evaluateLimits reads them. */
export function limitsOf(profile: Profile): AgentLimits {
  const { limits } = profilePolicySchema.parse(profile);
  return { ...limits, timeLimitMs: profile.timeLimitMs, onLimit: profile.onLimit };
}

function usage(record: AgentRecord, runningMs: number) {
  return { runningMs, memoryMiB: record.profileSpec.memoryMiB, vcpus: record.profileSpec.vcpus };
}
