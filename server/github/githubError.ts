import { AgentvmError } from '../../protocol/errors';
import type { RepoRef } from './parseIssueRef';

/** What was being done when a GitHub request failed, for the message the user sees. */
export interface GitHubErrorContext {
  repo: RepoRef;
  /** A phrase completing "while …", e.g. `reading issue #5`. */
  action: string;
  /** What a 404 means here, e.g. `issue #5`; the repository itself when absent. */
  subject?: string;
}

interface RequestFailure {
  status: number;
  message: string;
  response?: { headers?: Record<string, string | number | undefined>; data?: unknown };
}

/** Whether `error` is a failed GitHub HTTP request (an Octokit RequestError). */
export function isRequestFailure(error: unknown): error is RequestFailure {
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { status?: unknown }).status === 'number' &&
    typeof (error as { message?: unknown }).message === 'string'
  );
}

/** The HTTP status of a failed GitHub request, or null for any other error. */
export function requestStatus(error: unknown): number | null {
  return isRequestFailure(error) ? error.status : null;
}

/**
 * Turns a failed GitHub request into one AgentvmError: 401 says the token is bad, 403 names the
 * missing scope or permission (from GitHub's `x-accepted-*` headers) or the exhausted rate limit,
 * 404 names the repository or the thing looked up in it. Other errors keep GitHub's message.
 */
export function githubError(error: unknown, context: GitHubErrorContext): AgentvmError {
  if (error instanceof AgentvmError) return error;

  const repoName = `${context.repo.owner}/${context.repo.repo}`;
  if (!isRequestFailure(error)) {
    return new AgentvmError(
      'GITHUB_ERROR',
      `GitHub request failed while ${context.action}: ${messageOf(error)}`,
    );
  }

  const headers = error.response?.headers ?? {};
  const githubMessage = apiMessage(error);
  switch (error.status) {
    case 401:
      return new AgentvmError(
        'GITHUB_UNAUTHORIZED',
        `GitHub rejected the token (401 ${githubMessage}) while ${context.action}.`,
      );
    case 403:
      if (String(headers['x-ratelimit-remaining'] ?? '') === '0') {
        const reset = new Date(Number(headers['x-ratelimit-reset'] ?? 0) * 1000).toISOString();
        return new AgentvmError(
          'GITHUB_FORBIDDEN',
          `GitHub's API rate limit for this token is used up (while ${context.action}); it resets at ${reset}.`,
          'Wait until the reset time, or use a token with its own rate limit.',
        );
      }

      return new AgentvmError(
        'GITHUB_FORBIDDEN',
        `GitHub refused ${context.action} on ${repoName} (403 ${githubMessage}): ${missingPermission(headers)}.`,
      );
    case 404:
      return new AgentvmError(
        'GITHUB_NOT_FOUND',
        context.subject
          ? `GitHub has no ${context.subject} in ${repoName}, or the token cannot read ${repoName} (404 while ${context.action}).`
          : `GitHub repository ${repoName} was not found, or the token cannot read it (404 while ${context.action}).`,
      );
    default:
      return new AgentvmError(
        'GITHUB_ERROR',
        `GitHub answered ${error.status} while ${context.action} on ${repoName}: ${githubMessage}`,
      );
  }
}

function missingPermission(headers: Record<string, string | number | undefined>): string {
  const accepted = list(headers['x-accepted-oauth-scopes']);
  const granted = list(headers['x-oauth-scopes']);
  if (accepted.length > 0 && !accepted.some((scope) => granted.includes(scope))) {
    const has = granted.length > 0 ? granted.join(', ') : 'none';
    return `the token needs the ${accepted.map((scope) => `\`${scope}\``).join(' or ')} scope (it has: ${has})`;
  }

  const permissions = String(headers['x-accepted-github-permissions'] ?? '').trim();
  if (permissions) return `the token needs the permission ${permissions}`;

  if (accepted.length > 0) {
    return `the token has the ${accepted.join(', ')} scope, but its owner lacks access to this repository`;
  }

  return 'the token lacks write access to this repository (classic tokens: `repo` scope; fine-grained: Contents and Pull requests read and write)';
}

function list(value: string | number | undefined): string[] {
  return String(value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

function apiMessage(error: RequestFailure): string {
  const data = error.response?.data;
  if (
    typeof data === 'object' &&
    data !== null &&
    typeof (data as { message?: unknown }).message === 'string'
  ) {
    return (data as { message: string }).message;
  }

  return error.message.replace(/ - https:\/\/docs\.github\.com\S*$/, '');
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
