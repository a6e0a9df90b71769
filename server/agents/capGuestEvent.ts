import { AGENTCTL_MESSAGE_LIMITS, type GuestEvent } from '../../protocol/control';
import { AgentvmError } from '../../protocol/errors';
import type { NewEvent } from '../store/Store';

/**
 * Longest output text one event may store, in characters: the guest agent sends at most 64 KiB
 * per flush, so only a guest that bypasses it reaches this.
 */
export const MAX_OUTPUT_EVENT_CHARS = 64 * 1024;

/** Longest guest-reported error message stored, in characters. */
export const MAX_ERROR_EVENT_CHARS = 4 * 1024;

/**
 * The event with every free-text field cut to its limit, so a guest that talks to the socket
 * directly (or a modified guest agent) cannot make the broker store or serve megabytes per event.
 * Limits: {@link AGENTCTL_MESSAGE_LIMITS} for agentctl messages, {@link MAX_OUTPUT_EVENT_CHARS},
 * {@link MAX_ERROR_EVENT_CHARS}. Results are not cut: their size is bounded by the control line limit.
 */
export function capGuestEvent(event: GuestEvent): GuestEvent {
  switch (event.kind) {
    case 'progress':
      return { ...event, message: capText(event.message, AGENTCTL_MESSAGE_LIMITS.progress) };
    case 'review':
      return { ...event, message: capText(event.message, AGENTCTL_MESSAGE_LIMITS.review) };
    case 'done':
      return { ...event, message: capText(event.message, AGENTCTL_MESSAGE_LIMITS.done) };
    case 'error':
      return { ...event, message: capText(event.message, MAX_ERROR_EVENT_CHARS) };
    case 'output':
      return { ...event, text: capText(event.text, MAX_OUTPUT_EVENT_CHARS) };
    default:
      return event;
  }
}

/** `text` if it fits in `limit` characters, else its start and a marker saying how much was cut. */
export function capText(text: string, limit: number): string {
  if (text.length <= limit) return text;

  const marker = ` [agentvm: ${text.length - limit} more characters cut; the limit is ${limit}]`;
  return text.slice(0, limit) + marker;
}

/** Most output an agent's timeline stores by default, in bytes of UTF-8 text: 64 MiB. */
export const DEFAULT_MAX_STORED_OUTPUT_BYTES = 64 * 2 ** 20;

/** The environment variable that overrides {@link DEFAULT_MAX_STORED_OUTPUT_BYTES}, in whole MiB. */
export const MAX_STORED_OUTPUT_ENV = 'AGENTVM_MAX_STORED_OUTPUT_MIB';

/**
 * The per-agent cap on stored output in bytes: `AGENTVM_MAX_STORED_OUTPUT_MIB` (whole MiB, at
 * least 1) when set, else {@link DEFAULT_MAX_STORED_OUTPUT_BYTES}. Another value is refused
 * (VALIDATION_FAILED) rather than read as no cap.
 */
export function maxStoredOutputBytes(env: NodeJS.ProcessEnv = process.env): number {
  const value = env[MAX_STORED_OUTPUT_ENV];
  if (value === undefined || value === '') return DEFAULT_MAX_STORED_OUTPUT_BYTES;

  const mib = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (Number.isSafeInteger(mib * 2 ** 20) && mib >= 1) return mib * 2 ** 20;

  throw new AgentvmError(
    'VALIDATION_FAILED',
    `${MAX_STORED_OUTPUT_ENV} must be a whole number of MiB, at least 1, not "${value}"`,
    `Set it to the most output to store per agent, e.g. ${MAX_STORED_OUTPUT_ENV}=${DEFAULT_MAX_STORED_OUTPUT_BYTES / 2 ** 20}, or unset it for that default.`,
  );
}

/** What {@link OutputBudget.admit} decided for one piece of output. */
export interface OutputAdmission {
  /** Store the text; when false it was only counted. */
  store: boolean;
  /** The timeline entry to store now: the first time an agent's output passes the cap. */
  notice?: NewEvent;
}

interface AgentOutputCount {
  storedBytes: number;
  /** Dropped since the last {@link OutputBudget.droppedSummary}. */
  droppedBytes: number;
  droppedWrites: number;
  capped: boolean;
}

/** What an agent's timeline already holds when its count starts (see {@link OutputBudget}). */
export type StoredOutputLookup = (agentId: string) => { bytes: number; capped: boolean };

/**
 * Per agent, how much output its timeline has stored, so that an agent that floods stdout cannot
 * grow the store without end: output is stored until the next piece would pass `maxBytes`, then
 * only counted. One `limit` entry says so when it happens, and {@link droppedSummary} gives the
 * entry that says how much was dropped (at the command's exit and at the agent's end). An agent's
 * count starts from what `storedOutput` says its timeline holds, so a broker restart does not
 * give a running agent a fresh allowance.
 */
export class OutputBudget {
  private readonly agents = new Map<string, AgentOutputCount>();

  constructor(
    readonly maxBytes: number = maxStoredOutputBytes(),
    private readonly storedOutput: StoredOutputLookup = () => ({ bytes: 0, capped: false }),
  ) {}

  /** Counts `text`, output of `agentId`, and says whether to store it. */
  admit(agentId: string, text: string): OutputAdmission {
    const count = this.countOf(agentId);
    const bytes = Buffer.byteLength(text, 'utf8');
    if (!count.capped && count.storedBytes + bytes <= this.maxBytes) {
      count.storedBytes += bytes;
      return { store: true };
    }

    count.droppedBytes += bytes;
    count.droppedWrites += 1;
    if (count.capped) return { store: false };

    count.capped = true;
    const cap = describeBytes(this.maxBytes);
    return {
      store: false,
      notice: {
        kind: 'limit',
        message: `output passed the ${cap} stored per agent (${MAX_STORED_OUTPUT_ENV}): what it prints from here on is counted, not stored, and is kept nowhere (not in \`agentvm logs\`, not on the console); to keep long output, have the agent write it to a file in its workspace`,
        data: { limit: 'output', maxStoredOutputBytes: this.maxBytes },
      },
    };
  }

  /**
   * The entry that says how much of the agent's output was dropped since the last summary, or
   * undefined when none was. The agent stays capped: output after it is still not stored.
   */
  droppedSummary(agentId: string): NewEvent | undefined {
    const count = this.agents.get(agentId);
    if (!count || count.droppedWrites === 0) return undefined;

    const { droppedBytes, droppedWrites } = count;
    count.droppedBytes = 0;
    count.droppedWrites = 0;
    return {
      kind: 'limit',
      message: `${describeBytes(droppedBytes)} of output (${droppedWrites} write(s)) past the ${describeBytes(this.maxBytes)} cap was dropped, not stored: the full output is not available anywhere`,
      data: { limit: 'output', droppedBytes, droppedWrites, maxStoredOutputBytes: this.maxBytes },
    };
  }

  /** Forgets the agent (it ended or was removed). */
  forget(agentId: string): void {
    this.agents.delete(agentId);
  }

  private countOf(agentId: string): AgentOutputCount {
    let count = this.agents.get(agentId);
    if (!count) {
      const stored = this.storedOutput(agentId);
      count = {
        storedBytes: stored.bytes,
        droppedBytes: 0,
        droppedWrites: 0,
        capped: stored.capped,
      };
      this.agents.set(agentId, count);
    }
    return count;
  }
}

/** `bytes` in the largest unit it makes at least 1 of, to a tenth: `64 MiB`, `1.5 GiB`. */
function describeBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB'];
  let unit = 0;
  while (unit < units.length - 1 && bytes >= 2 ** (10 * (unit + 1))) unit++;

  const amount = Number((bytes / 2 ** (10 * unit)).toFixed(1));
  return `${amount} ${amount === 1 && unit === 0 ? 'byte' : units[unit]}`;
}
