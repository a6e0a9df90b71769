import { AGENTCTL_MESSAGE_LIMITS, type GuestEvent } from '../../protocol/control';

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
