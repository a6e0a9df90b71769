import * as vscode from 'vscode';
import { AgentvmError } from '../../../protocol/errors';
import { resolveGitHubToken } from '../../../server/github/resolveGitHubToken';
import type { ComponentLog } from '../log';
import type { GitHubEndpoints } from './githubEndpoints';

/** A GitHub token and where it came from; the token itself is never logged or stored. */
export interface ExtensionGitHubToken {
  token: string;
  source: 'vscode' | 'GITHUB_TOKEN' | 'GH_TOKEN' | 'gh';
  /** The account of a VS Code session, for messages. */
  account?: string;
}

/** The scope that lets a token read issues and push branches and pull requests. */
export const GITHUB_SCOPES = ['repo'];

/**
 * A token for GitHub: the VS Code GitHub session when one exists, else GITHUB_TOKEN, GH_TOKEN or
 * the gh CLI's login, else a new VS Code session (the user is asked to sign in). An existing
 * session is looked up silently first so that an environment token does not cost a sign-in prompt.
 */
export async function githubToken(
  endpoints: GitHubEndpoints,
  log: ComponentLog,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ExtensionGitHubToken> {
  const existing = await session(endpoints, { silent: true }, log);
  if (existing) return existing;

  try {
    const fromEnvironment = resolveGitHubToken(env, endpoints.webHost);
    log.debug(`using the GitHub token from ${fromEnvironment.source}`);
    return fromEnvironment;
  } catch (error) {
    if (!(error instanceof AgentvmError) || error.code !== 'GITHUB_TOKEN_MISSING') throw error;
  }

  const created = await session(endpoints, { createIfNone: true }, log);
  if (created) return created;

  throw new AgentvmError(
    'GITHUB_TOKEN_MISSING',
    `No GitHub token for ${endpoints.webHost}: no VS Code session, and GITHUB_TOKEN, GH_TOKEN and the gh login are unset.`,
    'Sign in to GitHub from the Accounts menu (or accept the sign-in prompt), or set GITHUB_TOKEN before starting VS Code.',
  );
}

async function session(
  endpoints: GitHubEndpoints,
  options: vscode.AuthenticationGetSessionOptions,
  log: ComponentLog,
): Promise<ExtensionGitHubToken | undefined> {
  try {
    const found = await vscode.authentication.getSession(
      endpoints.authProviderId,
      GITHUB_SCOPES,
      options,
    );
    if (!found) return undefined;

    log.debug(`using the VS Code ${endpoints.authProviderId} session of ${found.account.label}`);
    return { token: found.accessToken, source: 'vscode', account: found.account.label };
  } catch (error) {
    if (error instanceof vscode.CancellationError) throw error;

    // No provider (a host without the built-in GitHub extension) or a refused sign-in.
    log.debug(`no ${endpoints.authProviderId} session: ${(error as Error).message}`);
    return undefined;
  }
}
