import { z } from 'zod';
import { guestRequestSchema, resultCommitSchema } from './control';
import { profilePolicySchema } from './policy';

/**
 * The broker's public HTTP + WebSocket API, shared by the CLI and the VS Code extension.
 * All paths are under /v1; every request except GET /v1/health carries
 * `Authorization: Bearer <token>` (WebSocket: the same header, or `?token=` for browsers).
 * Errors: non-2xx with {@link errorBodySchema} from ./errors. Another user's agent is answered
 * exactly like an id that does not exist (AGENT_NOT_FOUND, 404).
 *
 *   GET    /v1/health                      → health
 *   GET    /v1/whoami                      → whoami
 *   GET    /v1/profiles                    → Profile[] (the usable ones)
 *   GET    /v1/profile-problems            → ProfileProblem[] (profile files that cannot be used)
 *   POST   /v1/agents                      createAgentRequest → Agent (201)
 *   GET    /v1/agents                      → Agent[]
 *   GET    /v1/agents/:id                  → Agent
 *   GET    /v1/agents/:id/events?after=N   → AgentEvent[]
 *   GET    /v1/agents/:id/console          → text/plain (serial console log)
 *   POST   /v1/agents/:id/review           → Agent (restores the snapshot; state reviewing)
 *   POST   /v1/agents/:id/resume           resumeRequest → Agent (answer delivered; running)
 *   POST   /v1/agents/:id/cancel           → Agent (INVALID_STATE if it has already ended)
 *   DELETE /v1/agents/:id?force=true       → 204 (stops the VM, deletes its files; without
 *                                            force=true an agent that has not ended is INVALID_STATE)
 *   GET    /v1/agents/:id/result           → AgentResult
 *   GET    /v1/agents/:id/result/bundle    → application/octet-stream (git bundle)
 *   POST   /v1/agents/:id/guest            guestCall → { result } (file API / exec in a live VM)
 *   GET    /v1/agents/:id/egress           → egressPolicy
 *   POST   /v1/agents/:id/egress           egressUpdateRequest → egressPolicy (running agent's allowlist)
 *   GET    /v1/audit?agent=ID&after=N      → AuditEntry[] (admin: all rows; user: rows of own agents)
 *   GET    /v1/audit/verify                → AuditVerifyResult (admin only)
 *   WS     /v1/events                      clientStreamMessage ⇄ serverStreamMessage
 *                                            (every subscribe is answered by `subscribed`, or by
 *                                            an error if refused; a client more than 16 MiB
 *                                            behind is closed with 1013: reconnect with
 *                                            afterEventId = last event id)
 */

export const agentStates = [
  'queued',
  'starting',
  'running',
  /** Review requested: the VM is being paused and snapshotted. */
  'pausing',
  /** Snapshot written, VM process ended: costs disk only. */
  'awaiting_review',
  /** Snapshot being restored for review. */
  'restoring',
  /** VM restored (agent still blocked in `agentctl review`); its workspace can be browsed. */
  'reviewing',
  'done',
  'failed',
  'cancelled',
] as const;
export const agentStateSchema = z.enum(agentStates);
export type AgentState = z.infer<typeof agentStateSchema>;

export const terminalStates: readonly AgentState[] = ['done', 'failed', 'cancelled'];

/** A profile: what agent runs, on what VM shape, with what limits and permissions. */
export const profileSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
    description: z.string().default(''),
    /** Shell command run in the workspace (`sh -c`), e.g. `sh /opt/agent/demo-agent.sh`. */
    command: z.string().min(1),
    /** Guest image name; only `default` exists today. */
    image: z.string().default('default'),
    memoryMiB: z.number().int().min(128).max(65536).default(512),
    vcpus: z.number().int().min(1).max(64).default(1),
    /** Wall-clock limit for the agent in milliseconds (0: none). */
    timeLimitMs: z
      .number()
      .int()
      .nonnegative()
      .default(30 * 60_000),
    /** Deadline for the VM to boot and the guest agent to answer, in milliseconds. */
    bootTimeoutMs: z.number().int().positive().default(60_000),
    env: z.record(z.string(), z.string()).default({}),
    /** Files copied into the VM before the command runs: guest path → host path (relative to the profile file). */
    files: z.record(z.string(), z.string()).default({}),
    /** What to do when a limit is reached. */
    onLimit: z.enum(['pause', 'stop']).default('pause'),
    /** Hosts the agent may reach through the egress proxy: `example.com`, `*.example.com`, `host:port`. */
    allowedHosts: z.array(z.string()).default([]),
  })
  .extend(profilePolicySchema.shape);
export type Profile = z.infer<typeof profileSchema>;
export type ProfileInput = z.input<typeof profileSchema>;

/** A profile file the broker cannot use, and why. Delegating with its name fails with PROFILE_INVALID. */
export const profileProblemSchema = z.object({
  /** The profile's `name` field, or else the name its file implies (`x.json`, `x/profile.json`). */
  name: z.string(),
  /** Absolute path of the profile file, or of the profile directory that could not be read. */
  file: z.string(),
  /** What is wrong, e.g. `memoryMiB: Invalid input: expected number, received string`. */
  reason: z.string(),
  /** What to do about it. */
  hint: z.string(),
});
export type ProfileProblem = z.infer<typeof profileProblemSchema>;

/** What was sent of the user's repository. */
export const repoInfoSchema = z.object({
  /** Host path of the repository the task came from, when delegated from a local clone. */
  path: z.string().optional(),
  baseCommit: z.string(),
  branch: z.string(),
  /** Paths with uncommitted changes at delegation time. */
  uncommitted: z.array(z.string()).default([]),
  /** Whether the uncommitted tracked changes were included (as a snapshot commit). */
  uncommittedIncluded: z.boolean().default(false),
});
export type RepoInfo = z.infer<typeof repoInfoSchema>;

export const reviewRequestSchema = z.object({
  requestId: z.string(),
  message: z.string(),
  requestedAt: z.number(),
});

export const agentSchema = z.object({
  id: z.string(),
  title: z.string(),
  text: z.string(),
  profile: z.string(),
  owner: z.string(),
  state: agentStateSchema,
  /** Why the agent is in its state (failure reason, limit hit, ...). */
  stateReason: z.string().nullable(),
  createdAt: z.number(),
  updatedAt: z.number(),
  endedAt: z.number().nullable(),
  repo: repoInfoSchema,
  /** The pending review request while pausing / awaiting_review / restoring / reviewing. */
  review: reviewRequestSchema.nullable(),
  /** Latest `agentctl progress` message. */
  lastProgress: z.string().nullable(),
  /** Latest lines of the agent's output (at most 5). */
  lastOutput: z.array(z.string()),
  /** Set once the agent has exported its result. */
  result: z
    .object({
      headCommit: z.string(),
      commits: z.array(resultCommitSchema),
      exitCode: z.number().nullable(),
    })
    .nullable(),
  /** How the VM was started: cold boot or from a template snapshot. */
  bootPath: z.enum(['cold', 'template']).nullable(),
  /** Accelerator in use: kvm or tcg. */
  accel: z.enum(['kvm', 'tcg']).nullable(),
  /**
   * Seconds the agent's VM has run so far, the time the profile's cost budget is counted in:
   * every run segment, the one running now included. Time queued, booting or restoring, and time saved
   * while awaiting review, are not counted. Absent from brokers older than this field.
   */
  vmSeconds: z.number().nonnegative().optional(),
});
export type Agent = z.infer<typeof agentSchema>;

/** POST /v1/agents */
export const createAgentRequestSchema = z.object({
  text: z.string().min(1, 'task text must not be empty'),
  title: z.string().optional(),
  profile: z.string().default('demo'),
  /** The GitHub issue the task came from (`OWNER/REPO#N`), when it did. */
  issue: z.string().max(300).optional(),
  /**
   * Values of the profile's `{ vscode }` secret sources, keyed by SecretStorage key. Kept in the
   * broker's memory only, never stored or sent into the VM.
   */
  secrets: z.record(z.string(), z.string()).optional(),
  repo: z.object({
    /** `git bundle create` output holding `branch`, base64. */
    bundle: z.string().min(1),
    baseCommit: z.string().regex(/^[0-9a-f]{40}$/, 'baseCommit must be a full 40-hex commit id'),
    branch: z.string().min(1),
    path: z.string().optional(),
    uncommitted: z.array(z.string()).default([]),
    uncommittedIncluded: z.boolean().default(false),
  }),
});
export type CreateAgentRequest = z.input<typeof createAgentRequestSchema>;

/** POST /v1/agents/:id/resume */
export const resumeRequestSchema = z.object({ message: z.string().default('') });

/** One entry of an agent's timeline. */
export const agentEventSchema = z.object({
  id: z.number().int(),
  agentId: z.string(),
  at: z.number(),
  kind: z.enum([
    'state',
    'phase',
    'output',
    'progress',
    'review',
    'answer',
    'done',
    'exit',
    'result',
    'error',
    'limit',
    'info',
  ]),
  /** Human-readable line for the timeline. */
  message: z.string(),
  /** Kind-specific details (state: {from,to}; output: {stream}; limit: {limit}; info: {durationMs}). */
  data: z.record(z.string(), z.unknown()).default({}),
});
export type AgentEvent = z.infer<typeof agentEventSchema>;

/** GET /v1/agents/:id/result */
export const agentResultSchema = z.object({
  baseCommit: z.string(),
  headCommit: z.string(),
  commits: z.array(resultCommitSchema),
  patch: z.string(),
  exitCode: z.number().nullable(),
});
export type AgentResult = z.infer<typeof agentResultSchema>;

/** WebSocket /v1/events: client → broker. */
export const clientStreamMessageSchema = z.object({
  type: z.literal('subscribe'),
  /** Omit for all of the user's agents. */
  agentId: z.string().optional(),
  /** Replay events with id greater than this first. */
  afterEventId: z.number().int().nonnegative().optional(),
});
export type ClientStreamMessage = z.infer<typeof clientStreamMessageSchema>;

/**
 * WebSocket /v1/events: the broker's answer to a subscribe frame, sent once the subscription is in
 * effect and after its replay. Every message after it belongs to the new subscription, and any
 * request the client sends after receiving it is handled after the subscription took effect: a
 * client that lists agents (or reads a timeline) only then misses no change in between.
 * Older brokers answer a successful subscribe with nothing: a client waits for this a bounded time.
 */
export const streamSubscribedSchema = z.object({
  type: z.literal('subscribed'),
  /** The agent subscribed to; absent for all of the user's agents. */
  agentId: z.string().optional(),
  /** The `afterEventId` of the subscribe frame, when it asked for a replay. */
  afterEventId: z.number().int().nonnegative().optional(),
  /**
   * The newest event id of the subscribed agents when the subscription took effect (0 if none):
   * events up to it that the replay did not include are not sent; every later one of the
   * subscription is.
   */
  lastEventId: z.number().int().nonnegative(),
});
export type StreamSubscribed = z.infer<typeof streamSubscribedSchema>;

/** WebSocket /v1/events: broker → client. */
export const serverStreamMessageSchema = z.discriminatedUnion('type', [
  streamSubscribedSchema,
  z.object({ type: z.literal('event'), event: agentEventSchema }),
  z.object({ type: z.literal('agent'), agent: agentSchema }),
  z.object({ type: z.literal('removed'), agentId: z.string() }),
  z.object({ type: z.literal('error'), code: z.string(), message: z.string() }),
]);
export type ServerStreamMessage = z.infer<typeof serverStreamMessageSchema>;

export const healthSchema = z.object({ ok: z.literal(true), version: z.string() });
export const whoamiSchema = z.object({ user: z.string(), admin: z.boolean() });

/** POST /v1/agents/:id/guest: one file-API or exec call into a live (reviewing) VM. */
export const guestCallSchema = z.object({ request: guestRequestSchema });
export const guestCallResponseSchema = z.object({ result: z.unknown() });
