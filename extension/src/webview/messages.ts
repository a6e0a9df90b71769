import { z } from 'zod';
import { agentEventSchema, agentSchema } from '../../../protocol/api';

/**
 * Messages between the agent panel's webview and the extension host. The webview sends `ready`
 * once its script runs; only then does the host post the agent. Actions are requests with an id
 * that the host answers with a `reply` carrying the same id.
 */
export const webviewRequestSchema = z.discriminatedUnion('method', [
  z.object({ method: z.literal('review') }),
  z.object({ method: z.literal('resume'), answer: z.string().max(100_000) }),
  z.object({ method: z.literal('cancel') }),
  z.object({ method: z.literal('openDiff'), path: z.string() }),
  z.object({ method: z.literal('viewResult') }),
  z.object({ method: z.literal('applyResult') }),
  z.object({ method: z.literal('openPullRequest') }),
  /** The agent's whole timeline and console log as a document (the panel shows the newest part). */
  z.object({ method: z.literal('showLog') }),
]);
export type WebviewRequest = z.infer<typeof webviewRequestSchema>;

/** Webview → host. */
export const webviewToHostSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready') }),
  z.object({ type: z.literal('request'), id: z.number().int(), request: webviewRequestSchema }),
]);
export type WebviewToHost = z.infer<typeof webviewToHostSchema>;

export const changedFileSchema = z.object({ status: z.string(), path: z.string() });

/** Host → webview. */
export const hostToWebviewSchema = z.discriminatedUnion('type', [
  /** The whole picture, sent after `ready` and after the webview was restored. */
  z.object({
    type: z.literal('init'),
    agent: agentSchema,
    events: z.array(agentEventSchema),
    changes: z.array(changedFileSchema).nullable(),
  }),
  z.object({ type: z.literal('agent'), agent: agentSchema }),
  z.object({ type: z.literal('event'), event: agentEventSchema }),
  z.object({ type: z.literal('changes'), changes: z.array(changedFileSchema) }),
  /**
   * The agent's VM time as the header shows it ("4m12s so far"), sent after `init`, on every
   * change and each second while it grows; null when the broker does not report it.
   */
  z.object({ type: z.literal('vmTime'), text: z.string().nullable() }),
  z.object({ type: z.literal('removed') }),
  z.object({
    type: z.literal('reply'),
    id: z.number().int(),
    ok: z.boolean(),
    /** Set when ok is false: what to show next to the button. */
    error: z.string().optional(),
  }),
]);
export type HostToWebview = z.infer<typeof hostToWebviewSchema>;

/** What the webview keeps with `setState` so a restored panel knows its agent. */
export const webviewStateSchema = z.object({
  agentId: z.string(),
  answerDraft: z.string().default(''),
});
export type WebviewState = z.infer<typeof webviewStateSchema>;
