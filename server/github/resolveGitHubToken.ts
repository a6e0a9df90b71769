import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentvmError } from '../../protocol/errors';
import { registerSecret } from '../log';

/** A GitHub token and where it came from (so the CLI can say which login it uses). */
export interface GitHubToken {
  token: string;
  source: 'GITHUB_TOKEN' | 'GH_TOKEN' | 'gh';
}

/**
 * Finds a GitHub token: GITHUB_TOKEN, then GH_TOKEN, then the login the `gh` CLI stored in its
 * hosts.yml (GH_CONFIG_DIR, else $XDG_CONFIG_HOME/gh, else ~/.config/gh). The token is registered
 * with the log redactor; nothing here writes it anywhere.
 */
export function resolveGitHubToken(
  env: NodeJS.ProcessEnv = process.env,
  host = 'github.com',
): GitHubToken {
  for (const name of ['GITHUB_TOKEN', 'GH_TOKEN'] as const) {
    const value = env[name]?.trim();
    if (value) return registered({ token: value, source: name });
  }

  const hostsFile = path.join(ghConfigDir(env), 'hosts.yml');
  let hostsYaml: string | null = null;
  try {
    hostsYaml = readFileSync(hostsFile, 'utf8');
  } catch {
    hostsYaml = null;
  }

  const stored = hostsYaml === null ? null : ghStoredToken(hostsYaml, host);
  if (stored) return registered({ token: stored, source: 'gh' });

  const why =
    hostsYaml === null
      ? `GITHUB_TOKEN and GH_TOKEN are unset and there is no gh login (${hostsFile} is missing)`
      : `GITHUB_TOKEN and GH_TOKEN are unset and ${hostsFile} holds no token for ${host} (gh may keep it in the system keyring: try GITHUB_TOKEN=$(gh auth token))`;
  throw new AgentvmError('GITHUB_TOKEN_MISSING', `No GitHub token: ${why}.`);
}

/**
 * The `oauth_token` stored for `host` in gh's hosts.yml. The file is a two-level YAML map
 * (host → settings) that gh writes itself, so reading keys by indentation is enough.
 */
export function ghStoredToken(hostsYaml: string, host: string): string | null {
  const lines = hostsYaml.split(/\r?\n/);
  const start = lines.findIndex(
    (line) => unquote(line.replace(/:\s*$/, '')) === host && /^\S.*:\s*$/.test(line),
  );
  if (start < 0) return null;

  let childIndent: number | null = null;
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '' || line.trim().startsWith('#')) continue;

    const indent = line.length - line.trimStart().length;
    if (indent === 0) break;

    childIndent ??= indent;
    if (indent !== childIndent) continue;

    const entry = /^\s*oauth_token:\s*(.+?)\s*$/.exec(line);
    if (entry) return unquote(entry[1]) || null;
  }

  return null;
}

function ghConfigDir(env: NodeJS.ProcessEnv): string {
  if (env.GH_CONFIG_DIR) return env.GH_CONFIG_DIR;
  if (env.XDG_CONFIG_HOME) return path.join(env.XDG_CONFIG_HOME, 'gh');

  return path.join(env.HOME || os.homedir(), '.config', 'gh');
}

function unquote(text: string): string {
  const trimmed = text.trim();
  return /^(['"]).*\1$/.test(trimmed) ? trimmed.slice(1, -1) : trimmed;
}

function registered(token: GitHubToken): GitHubToken {
  registerSecret(token.token);
  return token;
}
