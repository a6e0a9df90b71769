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
}

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

export interface SubstitutionResult {
  headers: Record<string, string | string[]>;
  /** Secrets whose real value was put in. */
  injected: string[];
  /** Secrets whose placeholder appeared but whose value was withheld: the host is not bound. */
  withheld: string[];
}

/**
 * Replace placeholders in request headers with real values, only for the bindings bound to
 * `host`:`port`. Placeholders inside `Basic` credentials (git over HTTPS) are found too. Bodies
 * and URLs are never touched: a secret is a credential and travels in headers only.
 */
export function substituteSecrets(
  headers: Record<string, string | string[] | undefined>,
  host: string,
  port: number,
  bindings: readonly SecretBinding[],
): SubstitutionResult {
  const injected = new Set<string>();
  const withheld = new Set<string>();

  const swap = (text: string): string => {
    let result = text;
    for (const binding of bindings) {
      if (!result.includes(binding.placeholder)) continue;

      if (!binding.hosts.allows(host, port)) {
        withheld.add(binding.name);
        continue;
      }
      result = result.split(binding.placeholder).join(binding.value);
      injected.add(binding.name);
    }
    return result;
  };

  const swapHeader = (name: string, value: string): string => {
    const basic = /^(basic\s+)([A-Za-z0-9+/=]+)\s*$/i.exec(value);
    if (name === 'authorization' || name === 'proxy-authorization') {
      if (basic) {
        const decoded = Buffer.from(basic[2], 'base64').toString('utf8');
        const swapped = swap(decoded);
        return swapped === decoded
          ? value
          : basic[1] + Buffer.from(swapped, 'utf8').toString('base64');
      }
    }
    return swap(value);
  };

  const result: Record<string, string | string[]> = {};
  for (const [rawName, value] of Object.entries(headers)) {
    if (value === undefined) continue;

    const name = rawName.toLowerCase();
    result[rawName] = Array.isArray(value)
      ? value.map((item) => swapHeader(name, item))
      : swapHeader(name, value);
  }
  return { headers: result, injected: [...injected], withheld: [...withheld] };
}
