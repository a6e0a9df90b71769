import { z } from 'zod';

/**
 * agentctl ⇄ guest agent, over the unix socket AGENTCTL_SOCKET_PATH inside the VM.
 * One JSON line each way: agentctl sends a request, the guest agent answers once and closes.
 * A `review` request is answered only when the broker's `review-answer` arrives, which may be
 * after the VM was snapshotted and restored; the connection lives in guest memory throughout.
 */
export const agentctlRequestSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('progress'), message: z.string().min(1) }),
  z.object({ type: z.literal('review'), message: z.string().min(1) }),
  z.object({ type: z.literal('done'), message: z.string() }),
]);
export type AgentctlRequest = z.infer<typeof agentctlRequestSchema>;

export const agentctlResponseSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ok') }),
  /** The reviewer's answer to a `review` request. */
  z.object({ type: z.literal('answer'), requestId: z.string(), message: z.string() }),
  z.object({ type: z.literal('error'), message: z.string() }),
]);
export type AgentctlResponse = z.infer<typeof agentctlResponseSchema>;
