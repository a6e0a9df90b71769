import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { AgentvmError } from '../../protocol/errors';
import { registerSecret } from '../log';
import type { RepoRef } from './parseIssueRef';
import { GitCommandError, runGit } from './runGit';

export interface CloneOptions {
  /** Web root that serves `OWNER/REPO.git`; `https://github.com` by default. */
  baseUrl?: string;
  timeoutMs?: number;
}

/**
 * Clones `ref` into `destDir` (which must not exist or be empty) over HTTPS. The token travels
 * as an `http.<url>.extraHeader` setting passed through git's GIT_CONFIG_* environment: that is
 * the command-line config mechanism (`git -c`) without showing the token in the process list,
 * and unlike `git clone -c` nothing is written to the new clone's config. The clone's origin is
 * the plain URL.
 */
export async function cloneRepository(
  ref: RepoRef,
  destDir: string,
  token: string | null,
  options: CloneOptions = {},
): Promise<void> {
  const baseUrl = (options.baseUrl ?? 'https://github.com').replace(/\/+$/, '');
  const url = `${baseUrl}/${encodeURIComponent(ref.owner)}/${encodeURIComponent(ref.repo)}.git`;
  const env: NodeJS.ProcessEnv = { GIT_ASKPASS: '', SSH_ASKPASS: '' };
  if (token) {
    registerSecret(token);
    Object.assign(env, configEnv(`http.${baseUrl}/.extraHeader`, authorizationHeader(token)));
  }

  await mkdir(path.dirname(path.resolve(destDir)), { recursive: true });
  try {
    await runGit(
      path.dirname(path.resolve(destDir)),
      ['clone', '--quiet', '--', url, path.resolve(destDir)],
      {
        env,
        timeoutMs: options.timeoutMs ?? 10 * 60_000,
      },
    );
  } catch (error) {
    throw cloneError(error, ref, token);
  }
}

/** The header GitHub accepts for git over HTTPS with a personal, OAuth or app token. */
function authorizationHeader(token: string): string {
  return `Authorization: Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`;
}

/** Adds one setting after any GIT_CONFIG_* settings the broker was started with. */
function configEnv(key: string, value: string): NodeJS.ProcessEnv {
  const existing = Number(process.env.GIT_CONFIG_COUNT ?? 0);
  const index = Number.isSafeInteger(existing) && existing > 0 ? existing : 0;

  return {
    GIT_CONFIG_COUNT: String(index + 1),
    [`GIT_CONFIG_KEY_${index}`]: key,
    [`GIT_CONFIG_VALUE_${index}`]: value,
  };
}

function cloneError(error: unknown, ref: RepoRef, token: string | null): AgentvmError {
  const name = `${ref.owner}/${ref.repo}`;
  const stderr = error instanceof GitCommandError ? error.stderr : String(error);
  const detail =
    (token ? stderr.split(token).join('[redacted]') : stderr).trim().split('\n').pop() ?? '';

  if (/not found|404/i.test(stderr)) {
    return new AgentvmError(
      'GITHUB_NOT_FOUND',
      `Cloning ${name} failed: the repository was not found, or the token cannot read it (${detail}).`,
    );
  }

  if (
    /Authentication failed|could not read Username|terminal prompts disabled|401|403/i.test(stderr)
  ) {
    return new AgentvmError(
      token ? 'GITHUB_UNAUTHORIZED' : 'GITHUB_TOKEN_MISSING',
      `Cloning ${name} failed: ${token ? 'the server rejected the token' : 'the repository needs a token'} (${detail}).`,
    );
  }

  return new AgentvmError('GITHUB_ERROR', `Cloning ${name} failed: ${detail}`);
}
