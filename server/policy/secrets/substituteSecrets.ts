import { DEFAULT_SECRET_HEADERS, type SecretBinding } from './SecretBindings';
import type { ScrubbedSecret } from './SecretScrubber';

/** The upstream a request goes to, as far as injecting a secret is concerned. */
export interface SecretTarget {
  host: string;
  port: number;
  /** Whether the proxy's own connection to the upstream is TLS. */
  tls: boolean;
}

export interface SubstitutionResult {
  headers: Record<string, string | string[]>;
  /** Secrets whose real value was put in. */
  injected: string[];
  /** Secrets whose placeholder appeared somewhere it was left unchanged. */
  withheld: string[];
  /** Secret name → why its placeholder was left unchanged (reasons joined by `; `). */
  withheldReasons: Record<string, string>;
  /**
   * Each encoded form this substitution produced (the re-encoded `Basic` credentials) paired with
   * the form the guest sent: an upstream that reflects it must be scrubbed back to the latter,
   * since the raw value does not appear in it.
   */
  encodedForms: ScrubbedSecret[];
}

/**
 * Replace placeholders with real values in the request headers each binding names (by default
 * only `Authorization`, including inside `Basic` credentials as git sends them), and only when the
 * target is bound to the secret and reached over TLS (or the binding allows plain HTTP). A
 * placeholder anywhere else, including `url` (path and query, which are only inspected), stays as
 * it is and is reported withheld with the reason. Bodies are never read.
 */
export function substituteSecrets(
  headers: Record<string, string | string[] | undefined>,
  target: SecretTarget,
  bindings: readonly SecretBinding[],
  url = '',
): SubstitutionResult {
  const injected = new Set<string>();
  const encodedForms = new Map<string, string>();
  const reasons = new Map<string, Set<string>>();
  const withhold = (binding: SecretBinding, reason: string) => {
    const known = reasons.get(binding.name) ?? new Set<string>();
    reasons.set(binding.name, known.add(reason));
  };

  /** Why `binding` may not put its value in header `name` of this request; null if it may. */
  const refusal = (binding: SecretBinding, name: string): string | null => {
    if (!(binding.headers ?? DEFAULT_SECRET_HEADERS).includes(name))
      return `placeholder in the ${name} header, which the binding does not name`;
    if (!binding.hosts.allows(target.host, target.port))
      return `${target.host}:${target.port} is not a host this secret is bound to`;
    if (!target.tls && !binding.allowPlainHttp)
      return `plain HTTP to ${target.host}:${target.port} (the value goes over TLS only unless the binding sets allowPlainHttp)`;
    return null;
  };

  const swap = (name: string, text: string): string => {
    let result = text;
    for (const binding of bindings) {
      if (!result.includes(binding.placeholder)) continue;

      const reason = refusal(binding, name);
      if (reason) {
        withhold(binding, reason);
        continue;
      }
      result = result.split(binding.placeholder).join(binding.value);
      injected.add(binding.name);
    }
    return result;
  };

  const swapHeader = (name: string, value: string): string => {
    const basic = /^(basic\s+)([A-Za-z0-9+/=]+)\s*$/i.exec(value);
    if (name === 'authorization' && basic) {
      const decoded = Buffer.from(basic[2], 'base64').toString('utf8');
      const swapped = swap(name, decoded);
      if (swapped === decoded) return value;

      const encoded = Buffer.from(swapped, 'utf8').toString('base64');
      encodedForms.set(encoded, basic[2]);
      return basic[1] + encoded;
    }
    return swap(name, value);
  };

  const result: Record<string, string | string[]> = {};
  for (const [rawName, value] of Object.entries(headers)) {
    if (value === undefined) continue;

    const name = rawName.toLowerCase();
    result[rawName] = Array.isArray(value)
      ? value.map((item) => swapHeader(name, item))
      : swapHeader(name, value);
  }

  for (const binding of bindings) {
    if (url.includes(binding.placeholder))
      withhold(binding, 'placeholder in the URL, which is never rewritten');
  }

  const withheldReasons = Object.fromEntries(
    [...reasons].map(([name, why]) => [name, [...why].join('; ')]),
  );
  return {
    headers: result,
    injected: [...injected],
    withheld: [...reasons.keys()],
    withheldReasons,
    encodedForms: [...encodedForms].map(([value, placeholder]) => ({ value, placeholder })),
  };
}
