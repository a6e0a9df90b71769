import type { ResourceLimits } from '../../../protocol/policy';
import { formatDuration } from './formatDuration';

/** The limits that can stop an agent. */
export type LimitName = 'time' | 'memory' | 'vcpus' | 'cost';
export type LimitAction = 'pause' | 'stop';

/** An agent's limits: the profile's wall clock and shape, plus its {@link ResourceLimits}. */
export interface AgentLimits extends ResourceLimits {
  /** Wall-clock limit in milliseconds of running time; 0 means none. */
  timeLimitMs: number;
  onLimit: LimitAction;
}

/** What the agent has used so far. */
export interface AgentUsage {
  /** Milliseconds the VM has been running (awaiting review costs disk only and is not counted). */
  runningMs: number;
  memoryMiB: number;
  vcpus: number;
  /** Memory the guest reports in use, in MiB, when known. */
  memoryUsedMiB?: number;
}

/** A limit that has been reached, with what to do and a sentence for the agent's timeline. */
export interface LimitHit {
  limit: LimitName;
  action: LimitAction;
  message: string;
  /** Usage and limit in the limit's own unit (ms, MiB, vCPUs, unit-seconds). */
  used: number;
  allowed: number;
}

/** Size of a VM in cost units: one per vCPU plus one per GiB of memory. */
export function vmSizeUnits(memoryMiB: number, vcpus: number): number {
  return vcpus + memoryMiB / 1024;
}

/** Cost so far in unit-seconds: seconds running × size. */
export function costUnitSeconds(
  usage: Pick<AgentUsage, 'runningMs' | 'memoryMiB' | 'vcpus'>,
): number {
  return (usage.runningMs / 1000) * vmSizeUnits(usage.memoryMiB, usage.vcpus);
}

/**
 * Whether a VM of this shape may start at all. A profile asking for more memory or vCPUs than the
 * limits allow is refused before anything boots; that is a stop, never a pause.
 */
export function checkShape(
  shape: { memoryMiB: number; vcpus: number },
  limits: AgentLimits,
): LimitHit | null {
  if (limits.maxMemoryMiB > 0 && shape.memoryMiB > limits.maxMemoryMiB) {
    return hit(
      'memory',
      'stop',
      shape.memoryMiB,
      limits.maxMemoryMiB,
      `asks for ${shape.memoryMiB} MiB of memory; the limit is ${limits.maxMemoryMiB} MiB`,
    );
  }

  if (limits.maxVcpus > 0 && shape.vcpus > limits.maxVcpus) {
    return hit(
      'vcpus',
      'stop',
      shape.vcpus,
      limits.maxVcpus,
      `asks for ${shape.vcpus} vCPUs; the limit is ${limits.maxVcpus}`,
    );
  }
  return null;
}

/**
 * The first limit a running agent has reached, or `null`. Checked in the order shape, memory in
 * use, wall clock, cost; the action is the profile's `onLimit`, except that a shape over the limit
 * always stops.
 */
export function evaluateLimits(usage: AgentUsage, limits: AgentLimits): LimitHit | null {
  const shape = checkShape(usage, limits);
  if (shape) return shape;

  const action = limits.onLimit;
  if (
    limits.maxMemoryMiB > 0 &&
    usage.memoryUsedMiB !== undefined &&
    usage.memoryUsedMiB > limits.maxMemoryMiB
  ) {
    return hit(
      'memory',
      action,
      usage.memoryUsedMiB,
      limits.maxMemoryMiB,
      `uses ${Math.round(usage.memoryUsedMiB)} MiB of memory; the limit is ${limits.maxMemoryMiB} MiB`,
    );
  }

  if (limits.timeLimitMs > 0 && usage.runningMs >= limits.timeLimitMs) {
    return hit(
      'time',
      action,
      usage.runningMs,
      limits.timeLimitMs,
      `ran for ${formatDuration(usage.runningMs)}; the limit is ${formatDuration(limits.timeLimitMs)}`,
    );
  }

  const cost = costUnitSeconds(usage);
  if (limits.costBudgetUnitSeconds > 0 && cost >= limits.costBudgetUnitSeconds) {
    return hit(
      'cost',
      action,
      cost,
      limits.costBudgetUnitSeconds,
      `cost ${Math.round(cost)} unit-seconds; the budget is ${limits.costBudgetUnitSeconds}`,
    );
  }
  return null;
}

/**
 * Milliseconds of further running until the wall-clock or cost limit is reached, so the broker can
 * set one timer instead of polling; `null` when neither limit applies.
 */
export function msUntilNextLimit(usage: AgentUsage, limits: AgentLimits): number | null {
  const candidates: number[] = [];
  if (limits.timeLimitMs > 0) candidates.push(limits.timeLimitMs - usage.runningMs);

  if (limits.costBudgetUnitSeconds > 0) {
    const unitsPerMs = vmSizeUnits(usage.memoryMiB, usage.vcpus) / 1000;
    candidates.push((limits.costBudgetUnitSeconds - costUnitSeconds(usage)) / unitsPerMs);
  }
  return candidates.length === 0 ? null : Math.max(0, Math.ceil(Math.min(...candidates)));
}

function hit(
  limit: LimitName,
  action: LimitAction,
  used: number,
  allowed: number,
  detail: string,
): LimitHit {
  const verb = action === 'pause' ? 'paused for review' : 'stopped';
  return {
    limit,
    action,
    used,
    allowed,
    message: `${limit} limit reached: the agent ${detail}; ${verb}`,
  };
}
