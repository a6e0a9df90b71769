import { z } from 'zod';
import { AGENTCTL_MESSAGE_LIMITS } from '../protocol/control';

/**
 * Longest request line the guest agent reads from agentctl, in characters: the longest message
 * JSON-escaped (up to six characters for one) plus the envelope.
 */
export const MAX_AGENTCTL_LINE_CHARS = AGENTCTL_MESSAGE_LIMITS.review * 6 + 1024;

/**
 * agentctl ⇄ guest agent, over the unix socket AGENTCTL_SOCKET_PATH inside the VM.
 * One JSON line each way: agentctl sends a request, the guest agent answers once and closes.
 * A `review` request is answered only when the broker's `review-answer` arrives, which may be
 * after the VM was snapshotted and restored; the connection lives in guest memory throughout.
 * Messages are limited to {@link AGENTCTL_MESSAGE_LIMITS} characters.
 */
export const agentctlRequestSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('progress'),
    message: z.string().min(1).max(AGENTCTL_MESSAGE_LIMITS.progress),
  }),
  z.object({
    type: z.literal('review'),
    message: z.string().min(1).max(AGENTCTL_MESSAGE_LIMITS.review),
  }),
  z.object({ type: z.literal('done'), message: z.string().max(AGENTCTL_MESSAGE_LIMITS.done) }),
]);
export type AgentctlRequest = z.infer<typeof agentctlRequestSchema>;

export const agentctlResponseSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ok') }),
  /** The reviewer's answer to a `review` request. */
  z.object({ type: z.literal('answer'), requestId: z.string(), message: z.string() }),
  z.object({ type: z.literal('error'), message: z.string() }),
]);
export type AgentctlResponse = z.infer<typeof agentctlResponseSchema>;

/** Why `message` is too long for agentctl `type`, or null when it fits. */
export function agentctlMessageTooLong(
  type: AgentctlRequest['type'],
  message: string,
): string | null {
  const limit = AGENTCTL_MESSAGE_LIMITS[type];
  if (message.length <= limit) return null;

  return `agentctl ${type}: MESSAGE is ${message.length} characters; the limit is ${limit} (put long text in a file in the workspace and name it)`;
}
