import type { ErrorCode } from '../../protocol/errors';

/** The CLI's exit codes; scripts may rely on them. */
export const exitCodes = {
  ok: 0,
  /** The operation failed (see the error code printed). */
  failure: 1,
  /** Bad command line or bad input (validation). */
  usage: 2,
  /** The agent ended failed or cancelled. */
  agentFailed: 3,
  /** No broker answered. */
  brokerUnreachable: 4,
  /** Unknown agent or profile. */
  notFound: 5,
  /** Missing or wrong token, or an action only an admin may take (another user's agent is 5). */
  unauthorized: 6,
  /**
   * The broker closed the connection before it answered, or did not answer in time: the request
   * may or may not have taken effect (BROKER_CONNECTION_LOST, BROKER_TIMEOUT).
   */
  connectionLost: 7,
  /** Ctrl-C (128 + SIGINT), as a shell reports it; only the CLI stops, never the agent. */
  interrupted: 130,
} as const;

export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case 'BAD_REQUEST':
    case 'BAD_USAGE':
    case 'VALIDATION_FAILED':
    case 'NOT_A_GIT_REPOSITORY':
    case 'DIRTY_WORKTREE':
    case 'EMPTY_REPOSITORY':
    case 'BAD_ISSUE_REF':
    case 'REMOTE_MISMATCH':
    case 'PROFILE_INVALID':
      return exitCodes.usage;
    case 'BROKER_UNREACHABLE':
      return exitCodes.brokerUnreachable;
    case 'BROKER_CONNECTION_LOST':
    case 'BROKER_TIMEOUT':
      return exitCodes.connectionLost;
    case 'AGENT_NOT_FOUND':
    case 'PROFILE_NOT_FOUND':
    case 'NOT_FOUND':
      return exitCodes.notFound;
    case 'UNAUTHORIZED':
    case 'FORBIDDEN':
      return exitCodes.unauthorized;
    default:
      return exitCodes.failure;
  }
}
