import { z } from 'zod';

/**
 * The registry of every error code agentvm reports, with its HTTP status and a hint that tells the
 * user what to do. Broker, CLI, extension and guest agent all speak these codes; clients turn them
 * back into {@link AgentvmError}s.
 */
export const errorCatalog = {
  BAD_REQUEST: { status: 400, hint: 'Check the request body against the API schema.' },
  BAD_USAGE: {
    status: 400,
    hint: 'Run the command with --help to see its arguments and options.',
  },
  VALIDATION_FAILED: { status: 400, hint: 'Fix the fields named in the message and try again.' },
  UNAUTHORIZED: {
    status: 401,
    hint: 'Pass the broker token (AGENTVM_TOKEN, or the token file printed by `agentvm serve`).',
  },
  FORBIDDEN: {
    status: 403,
    hint: 'This needs an admin token; `agentvm token create --user NAME --admin` makes one.',
  },
  AGENT_NOT_FOUND: { status: 404, hint: 'List agents with `agentvm ls`; ids are case-sensitive.' },
  PROFILE_NOT_FOUND: { status: 404, hint: 'List profiles with `agentvm profiles`.' },
  PROFILE_INVALID: {
    status: 422,
    hint: 'Fix the profile file named in the message (`agentvm profiles` lists every unusable file); it is read again when it changes, no broker restart needed.',
  },
  NOT_FOUND: { status: 404, hint: 'Check the URL path.' },
  INVALID_STATE: {
    status: 409,
    hint: 'The agent is not in a state that allows this; see its state with `agentvm ls`.',
  },
  NOT_A_GIT_REPOSITORY: {
    status: 400,
    hint: 'Pass --repo with a directory inside a git work tree, or run from one.',
  },
  DIRTY_WORKTREE: {
    status: 400,
    hint: 'Commit or stash your changes, or pass --allow-dirty (sends HEAD only) or --include-uncommitted.',
  },
  EMPTY_REPOSITORY: { status: 400, hint: 'Make at least one commit before delegating.' },
  IMAGE_MISSING: { status: 412, hint: 'Build the guest image with `agentvm image build`.' },
  IMAGE_CORRUPT: {
    status: 412,
    hint: 'Rebuild the guest image with `agentvm image build --force`.',
  },
  HOST_REQUIREMENT_MISSING: { status: 412, hint: 'Run `agentvm doctor --fix`.' },
  IMAGE_BUILD_FAILED: {
    status: 500,
    hint: 'See the build output for the failing step, fix its cause, then run `agentvm image build` again.',
  },
  SNAPSHOT_CORRUPT: {
    status: 409,
    hint: 'The snapshot failed its checksum and cannot be restored; remove the agent with `agentvm rm`.',
  },
  SNAPSHOT_FAILED: {
    status: 500,
    hint: 'The VM could not be snapshotted; check free disk space under the data directory.',
  },
  VM_BOOT_TIMEOUT: {
    status: 504,
    hint: 'The VM did not become ready in time; raise the profile bootTimeoutMs or check the console log.',
  },
  VM_FAILED: { status: 500, hint: 'The VM exited unexpectedly; see `agentvm logs ID --console`.' },
  GUEST_ERROR: { status: 502, hint: 'The guest agent reported an error; see `agentvm logs ID`.' },
  GUEST_TIMEOUT: {
    status: 504,
    hint: 'The guest agent did not answer in time: the VM may be busy or stuck (see `agentvm logs ID`); give a long command a larger `exec --timeout`.',
  },
  GUEST_UNREACHABLE: {
    status: 409,
    hint: 'The agent VM is not running; open it for review first with `agentvm review ID`.',
  },
  EXEC_TIMED_OUT: {
    status: 504,
    hint: 'Give the command more time with `agentvm exec --timeout MS`.',
  },
  EXEC_KILLED: {
    status: 500,
    hint: 'Something in the VM ended the command (often the kernel when the VM ran out of memory); see `agentvm logs ID --console`.',
  },
  EXEC_OUTPUT_TRUNCATED: {
    status: 500,
    hint: "Redirect the output into a file in the workspace (`-- sh -c 'CMD > out.txt 2>&1'`) and read it in the review workspace, or print less.",
  },
  RESULT_NOT_READY: { status: 409, hint: 'Wait until the agent is done: `agentvm logs -f ID`.' },
  APPLY_CONFLICT: {
    status: 409,
    hint: 'The target branch exists already; pass --branch NAME to choose another.',
  },
  GIT_FAILED: {
    status: 500,
    hint: 'git refused the operation; its own message above says why. Fix what it names in the repository and run the command again.',
  },
  BROKER_UNREACHABLE: {
    status: 503,
    hint: 'Start the broker with `agentvm serve`, or set AGENTVM_URL to where it runs.',
  },
  BROKER_CONNECTION_LOST: {
    status: 502,
    hint: 'The broker may have stopped or crashed while it handled the request: once a broker answers again, see with `agentvm ls` whether a change took effect before you repeat it. The broker log says why it closed the connection.',
  },
  BROKER_TIMEOUT: {
    status: 504,
    hint: 'The broker took the request and gave no answer in time: it may be busy (a large upload, a restore) or stuck. See with `agentvm ls` whether a change took effect before you repeat it; the broker log says what it was doing.',
  },
  DATA_DIR_IN_USE: {
    status: 409,
    hint: 'Use the broker that runs there, stop it first, or give this one its own AGENTVM_DATA_DIR.',
  },
  PORT_IN_USE: {
    status: 409,
    hint: 'Another process (perhaps another agentvm broker) listens there: stop it, or start this broker on a free port with `agentvm serve --port N` or AGENTVM_PORT=N, and point the CLI at it with the same AGENTVM_PORT, --url or AGENTVM_URL.',
  },
  PAYLOAD_TOO_LARGE: {
    status: 413,
    hint: 'The repository bundle is over the limit; see README Limits.',
  },
  LIMIT_EXCEEDED: {
    status: 422,
    hint: "Lower the profile's memoryMiB or vcpus, or raise its limits (see docs/permissions.md).",
  },
  SECRET_MISSING: {
    status: 412,
    hint: "Provide the secret where the profile's source says: the environment variable, the file, or VS Code's SecretStorage.",
  },
  AUDIT_TAMPERED: {
    status: 409,
    hint: 'The audit log was edited or rows were deleted; keep the database for investigation and restore it from a backup.',
  },
  EGRESS_DENIED: { status: 403, hint: "Add the host to the profile's allowedHosts." },
  GITHUB_ERROR: { status: 502, hint: 'Check the GitHub token and its scopes.' },
  BAD_ISSUE_REF: {
    status: 400,
    hint: 'Name the issue as OWNER/REPO#N or paste its URL (https://github.com/OWNER/REPO/issues/N).',
  },
  REMOTE_MISMATCH: {
    status: 400,
    hint: "Run from a clone of the issue's repository, or leave out --repo to let the broker clone it.",
  },
  GITHUB_TOKEN_MISSING: {
    status: 412,
    hint: 'Set GITHUB_TOKEN (or GH_TOKEN), or log in with `gh auth login`.',
  },
  GITHUB_UNAUTHORIZED: {
    status: 502,
    hint: 'The GitHub token is invalid or expired; set a fresh one in GITHUB_TOKEN or run `gh auth login`.',
  },
  GITHUB_FORBIDDEN: {
    status: 502,
    hint: 'Give the token the scope or permission named in the message (classic tokens: repo; fine-grained: Contents, Issues and Pull requests).',
  },
  GITHUB_NOT_FOUND: {
    status: 404,
    hint: 'Check OWNER/REPO and the number; a private repository is only visible to a token that can read it.',
  },
  STORE_CORRUPT: {
    status: 500,
    hint: 'The broker database (broker.db in the data directory) cannot be used; move it aside to start afresh, or restore it from a backup, or upgrade agentvm if it is from a newer version.',
  },
  DISK_FULL: {
    status: 507,
    hint: 'Free space on the file system of the data directory (`df -h` on it), then try again; running agents go on and the broker writes their held changes once there is room.',
  },
  STORE_UNWRITABLE: {
    status: 503,
    hint: 'Check that the broker may write broker.db in the data directory (permissions, a read-only mount) and that no other program holds it locked; running agents go on and the broker writes their held changes once it can.',
  },
  INTERNAL: { status: 500, hint: 'This is a bug in agentvm; the broker log has details.' },
} as const satisfies Record<string, { status: number; hint: string }>;

export type ErrorCode = keyof typeof errorCatalog;

export const errorCodes = Object.keys(errorCatalog) as [ErrorCode, ...ErrorCode[]];

/** The JSON body of every non-2xx broker response and every failed control-channel request. */
export const errorBodySchema = z.object({
  error: z.object({
    code: z.enum(errorCodes),
    message: z.string(),
    hint: z.string(),
  }),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;

/** An error with a registered code; the one error type that crosses process boundaries. */
export class AgentvmError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;

  constructor(code: ErrorCode, message: string, hint?: string) {
    super(message);
    this.name = 'AgentvmError';
    this.code = code;
    this.hint = hint ?? errorCatalog[code].hint;
  }

  get status(): number {
    return errorCatalog[this.code].status;
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message, hint: this.hint } };
  }

  static fromBody(body: ErrorBody): AgentvmError {
    return new AgentvmError(body.error.code, body.error.message, body.error.hint);
  }
}
