import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ProfileSecret, SecretSource } from '../../../protocol/policy';
import { HostAllowlist } from '../egress/HostAllowlist';

/** A resolved secret: the real value stays on the host, the placeholder goes into the VM. */
export interface SecretBinding {
  name: string;
  /** What the guest sees instead of the value, e.g. `agentvm-secret-NPM_TOKEN-3f9c...`. */
  placeholder: string;
  value: string;
  /** Hosts whose requests get the real value in place of the placeholder. */
  hosts: HostAllowlist;
  /** Guest environment variables that hold the placeholder. */
  guestEnv: string[];
  /** Lower-case request headers the value may be put in; `authorization` when absent. */
  headers?: readonly string[];
  /** Put the value in over cleartext HTTP too; only on TLS connections when absent. */
  allowPlainHttp?: boolean;
}

/** Where a binding may put its value when it names no headers. */
export const DEFAULT_SECRET_HEADERS: readonly string[] = ['authorization'];

export interface ResolveSecretsOptions {
  /** Host environment to read `{ env }` sources from; process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** Directory relative `{ file }` paths are resolved against (the profile file's directory). */
  baseDir?: string;
  /** Values of `{ vscode }` sources, as sent by the extension, keyed by SecretStorage key. */
  provided?: Record<string, string>;
}

/** A fresh placeholder: unguessable, so nothing but the agent's own VM can ask for the swap. */
export function makePlaceholder(name: string): string {
  return `agentvm-secret-${name}-${crypto.randomBytes(16).toString('hex')}`;
}

/**
 * Read every secret of a profile from its host-side source and give it a fresh placeholder.
 * Throws (naming the secret and its source, never a value) when a source is missing or empty.
 */
export function resolveSecrets(
  secrets: Record<string, ProfileSecret>,
  options: ResolveSecretsOptions = {},
): SecretBinding[] {
  return Object.entries(secrets).map(([name, secret]) => ({
    name,
    placeholder: makePlaceholder(name),
    value: readSecretSource(name, secret.source, options),
    hosts: new HostAllowlist(secret.hosts),
    guestEnv: [secret.guestEnv ?? name],
    headers: (secret.headers ?? DEFAULT_SECRET_HEADERS).map((header) => header.toLowerCase()),
    allowPlainHttp: secret.allowPlainHttp ?? false,
  }));
}

/** The real value of one source. */
export function readSecretSource(
  name: string,
  source: SecretSource,
  options: ResolveSecretsOptions = {},
): string {
  let value: string | undefined;
  let where: string;

  if ('env' in source) {
    where = `environment variable ${source.env}`;
    value = (options.env ?? process.env)[source.env];
  } else if ('file' in source) {
    const file = path.resolve(options.baseDir ?? process.cwd(), source.file);
    where = `file ${file}`;
    value = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').replace(/[\r\n]+$/, '') : undefined;
  } else {
    where = `VS Code secret ${source.vscode}`;
    value = options.provided?.[source.vscode];
  }

  if (!value) throw new Error(`secret ${name}: ${where} is missing or empty`);
  return value;
}

/** Environment for the guest: each binding's variables set to its placeholder. */
export function guestEnvironment(bindings: readonly SecretBinding[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const binding of bindings) {
    for (const variable of binding.guestEnv) env[variable] = binding.placeholder;
  }
  return env;
}
