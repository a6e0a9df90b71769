import { z } from 'zod';

/**
 * The control channel between the broker (host) and the guest agent (inside the VM).
 *
 * Transport: one virtio-serial port named {@link CONTROL_PORT_NAME}; on the host a unix socket
 * that QEMU serves. Framing: one JSON object per line (UTF-8, `\n`-terminated). Either side
 * ignores lines it cannot parse (and logs them), so a torn line after a restore costs one message,
 * not the channel.
 *
 * Reliability: every guest event carries a sequence number `seq` (1, 2, 3, ... per VM lifetime,
 * kept across snapshot/restore because it lives in guest memory). The host acknowledges with
 * `ack`; the guest keeps unacknowledged events and re-sends every event after `lastSeq` when the
 * host says `hello`. So a broker that dies mid-stream loses no event.
 */
export const CONTROL_PORT_NAME = 'org.agentvm.control';

/** Path of the unix socket inside the guest on which the guest agent serves agentctl. */
export const AGENTCTL_SOCKET_PATH = '/run/agentvm/agentctl.sock';

/** Where the guest agent checks out the repository inside the VM. */
export const GUEST_WORKSPACE_DIR = '/workspace';

/**
 * Longest texts agentctl carries, in characters. agentctl refuses longer ones (exit 2), the guest
 * agent's socket refuses them too, and the broker cuts anything longer a guest still sends.
 */
export const AGENTCTL_MESSAGE_LIMITS = { progress: 4 * 1024, review: 16 * 1024, done: 4 * 1024 };

/**
 * Longest line the broker reads from a guest, in characters. The largest legitimate message is an
 * `fs.readFile` response: 64 MiB of file as base64 is about 85.4 Mi characters. A longer line is
 * dropped and logged, and no more than this is ever buffered for it.
 */
export const MAX_GUEST_LINE_CHARS = 128 * 1024 * 1024;

const base64 = z.string();

/**
 * One entry of a checked-out workspace, its path relative to the workspace, parents before
 * children. Modes are permission bits only; the guest gives every entry to the agent user.
 */
export const workspaceEntrySchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('dir'), path: z.string(), mode: z.number().int() }),
  z.object({ type: z.literal('file'), path: z.string(), mode: z.number().int(), data: base64 }),
  z.object({ type: z.literal('symlink'), path: z.string(), target: z.string() }),
]);
export type WorkspaceEntry = z.infer<typeof workspaceEntrySchema>;

/** The work handed to the guest agent after boot or template restore. */
export const guestTaskSchema = z.object({
  agentId: z.string(),
  /** The task text the agent works on; also written to /workspace/../task.md for the agent. */
  text: z.string(),
  title: z.string(),
  /** The agent command, run with `sh -c` in the workspace as user `agent`. */
  command: z.string(),
  env: z.record(z.string(), z.string()),
  /** How the repository reaches the workspace: checked out by the broker, or a bundle to clone. */
  repo: z.discriminatedUnion('kind', [
    /** The broker's checkout of `branch` at `baseCommit` (working tree and .git), written as is. */
    z.object({ kind: z.literal('tree'), entries: z.array(workspaceEntrySchema) }),
    /** A git bundle (base64) holding `branch` at `baseCommit`, cloned by the guest. */
    z.object({ kind: z.literal('bundle'), data: base64 }),
  ]),
  baseCommit: z.string(),
  branch: z.string(),
  /** Wall-clock limit for the agent command in milliseconds; 0 means none. */
  timeLimitMs: z.number().int().nonnegative(),
  /** Files the profile ships into the VM before the command runs (e.g. the agent script). */
  files: z.array(z.object({ path: z.string(), mode: z.number().int(), data: base64 })).default([]),
});
export type GuestTask = z.infer<typeof guestTaskSchema>;

/** One commit of the agent's result. */
export const resultCommitSchema = z.object({ sha: z.string(), subject: z.string() });

/** Events the guest reports; each is persisted by the broker as part of the agent's timeline. */
export const guestEventSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('phase'), phase: z.enum(['checkout', 'running', 'exporting']) }),
  z.object({ kind: z.literal('output'), stream: z.enum(['stdout', 'stderr']), text: z.string() }),
  z.object({ kind: z.literal('progress'), message: z.string() }),
  /** `agentctl review MSG`: the agent blocks until a `review-answer` with the same requestId. */
  z.object({ kind: z.literal('review'), requestId: z.string(), message: z.string() }),
  /** `agentctl done [MSG]`: the agent declares itself finished (the command may still run). */
  z.object({ kind: z.literal('done'), message: z.string() }),
  /** The agent command exited. */
  z.object({
    kind: z.literal('exit'),
    code: z.number().int().nullable(),
    signal: z.string().nullable(),
  }),
  /** The exported result, sent after `exit`. */
  z.object({
    kind: z.literal('result'),
    baseCommit: z.string(),
    headCommit: z.string(),
    commits: z.array(resultCommitSchema),
    /** git bundle of baseCommit..headCommit (base64); empty string when there are no commits. */
    bundle: base64,
    /** `git format-patch --stdout baseCommit..headCommit`. */
    patch: z.string(),
  }),
  z.object({
    kind: z.literal('error'),
    message: z.string(),
    /** The task cannot go on and no result follows: the broker ends the agent `failed` with it. */
    fatal: z.boolean().optional(),
  }),
]);
export type GuestEvent = z.infer<typeof guestEventSchema>;

/** Requests the host may make of a running guest (file API and exec, used by review). */
/**
 * Most bytes of stdin an `exec` takes. They travel to the guest inside one control-channel line,
 * as base64, and the guest agent holds a few copies while it parses the line: with 128 MiB of
 * guest RAM (the smallest profile), 16 MiB ran it out of memory.
 */
export const MAX_EXEC_STDIN_BYTES = 8 * 1024 * 1024;

export const guestRequestSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('fs.stat'), path: z.string() }),
  z.object({ op: z.literal('fs.readdir'), path: z.string() }),
  z.object({ op: z.literal('fs.readFile'), path: z.string() }),
  z.object({
    op: z.literal('fs.writeFile'),
    path: z.string(),
    data: base64,
    create: z.boolean().default(true),
    overwrite: z.boolean().default(true),
  }),
  z.object({ op: z.literal('fs.delete'), path: z.string(), recursive: z.boolean().default(false) }),
  z.object({
    op: z.literal('fs.rename'),
    from: z.string(),
    to: z.string(),
    overwrite: z.boolean().default(false),
  }),
  z.object({ op: z.literal('fs.mkdir'), path: z.string() }),
  /** Run a command to completion with `sh -c` (as user agent, in the workspace unless cwd). */
  z.object({
    op: z.literal('exec'),
    command: z.string(),
    cwd: z.string().optional(),
    /** Bytes for the command's stdin (base64); without it, stdin is empty. */
    stdin: base64
      .refine(
        (data) => Buffer.byteLength(data, 'base64') <= MAX_EXEC_STDIN_BYTES,
        `stdin is over ${MAX_EXEC_STDIN_BYTES / 1024 / 1024} MiB, the most an exec takes`,
      )
      .optional(),
    timeoutMs: z.number().int().positive().default(60_000),
    /**
     * How the result carries stdout and stderr: `utf8` text (invalid bytes become U+FFFD) or
     * `base64`, byte for byte. A guest agent older than this field answers text without saying so.
     */
    outputEncoding: z.enum(['utf8', 'base64']).default('utf8'),
    /** A name the caller gives this run, so that `exec.interrupt` can reach it while it runs. */
    execId: z.string().min(1).max(64).optional(),
  }),
  /**
   * SIGINT to the process group of the running exec named `execId` (the review terminal's
   * Ctrl+C). Answers `{ interrupted }`: false when no exec of that name runs (it ended already).
   */
  z.object({ op: z.literal('exec.interrupt'), execId: z.string().min(1).max(64) }),
  /** `git diff --name-status baseCommit` plus untracked files, for the review view. */
  z.object({ op: z.literal('changes') }),
]);
export type GuestRequest = z.infer<typeof guestRequestSchema>;
/** A guest request as callers write it (fields with defaults may be left out). */
export type GuestRequestInput = z.input<typeof guestRequestSchema>;

export const fileStatSchema = z.object({
  type: z.enum(['file', 'directory', 'symlink', 'other']),
  size: z.number(),
  mtimeMs: z.number(),
  ctimeMs: z.number(),
});
export type FileStat = z.infer<typeof fileStatSchema>;

/** Messages from host to guest. */
export const hostMessageSchema = z.discriminatedUnion('type', [
  /** Sent on every (re)connect; the guest answers `ready` and re-sends events after lastSeq. */
  z.object({ type: z.literal('hello'), lastSeq: z.number().int().nonnegative() }),
  /** Fresh wall clock (ms since epoch) and entropy (base64) after boot and after every restore. */
  z.object({ type: z.literal('sync'), timeMs: z.number(), entropy: base64 }),
  z.object({ type: z.literal('task'), task: guestTaskSchema }),
  z.object({ type: z.literal('ack'), seq: z.number().int().nonnegative() }),
  /** The reviewer's answer to a `review` event; unblocks `agentctl review`. */
  z.object({ type: z.literal('review-answer'), requestId: z.string(), message: z.string() }),
  /** Stop the agent command (SIGTERM, then SIGKILL after graceMs). */
  z.object({ type: z.literal('cancel'), graceMs: z.number().int().nonnegative().default(3000) }),
  z.object({ type: z.literal('request'), id: z.number().int(), request: guestRequestSchema }),
]);
export type HostMessage = z.infer<typeof hostMessageSchema>;

/** Messages from guest to host. */
export const guestMessageSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('ready'),
    /** Guest agent version (hash of its bundle) so the broker can tell stale images. */
    version: z.string(),
    /** Highest seq the guest has emitted so far. */
    seq: z.number().int().nonnegative(),
    /** Guest uptime in milliseconds when it answered (from /proc/uptime). */
    uptimeMs: z.number(),
    /** Whether a task has been received in this VM's life (false in a fresh boot or template). */
    hasTask: z.boolean(),
  }),
  z.object({
    type: z.literal('event'),
    seq: z.number().int().positive(),
    event: guestEventSchema,
    /**
     * The guest's wall clock (ms since epoch) when the event happened, sent only while the clock
     * is known to be right: set by a `sync` since the last `hello` (a restored guest wakes with the
     * time it was saved at). Events that waited for the host (a broker restart) keep their time.
     */
    at: z.number().optional(),
  }),
  z.object({ type: z.literal('synced'), clockSkewMs: z.number() }),
  z.object({
    type: z.literal('response'),
    id: z.number().int(),
    ok: z.boolean(),
    result: z.unknown().optional(),
    error: z.object({ code: z.string(), message: z.string() }).optional(),
  }),
  /** Free-form diagnostic from the guest agent itself (not the agent command). */
  z.object({
    type: z.literal('log'),
    level: z.enum(['debug', 'info', 'warn', 'error']),
    message: z.string(),
  }),
]);
export type GuestMessage = z.infer<typeof guestMessageSchema>;
