/** What replaces a secret in logs and audit rows. */
export const REDACTED = '[redacted]';

const sensitiveKey =
  /(authorization|cookie|token|secret|password|passwd|api[-_]?key|private[-_]?key|credential)/i;

/**
 * Fields whose strings and keys are names of secrets (NPM_TOKEN, GITHUB_TOKEN), which audit rows
 * must keep: known values and token-like strings are still masked inside them.
 */
const secretNameFields = new Set(['secrets', 'injected', 'withheld', 'withheldReasons']);

const sensitivePatterns: RegExp[] = [
  // Placeholders name their secret; the random part is what a log must not carry.
  /(agentvm-secret-[A-Za-z0-9_]+-)[0-9a-f]{32}/g,
  /\b(gh[pousr]_)[A-Za-z0-9]{20,}/g,
  /\b(github_pat_)[A-Za-z0-9_]{20,}/g,
  /\b((?:Bearer|Basic|token)\s+)[A-Za-z0-9._~+/=-]{8,}/gi,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
];

/**
 * Return a copy of `value` safe to log: every occurrence of a known secret value is replaced, values
 * under credential-like keys (authorization, token, password...) are replaced whole, and strings
 * that look like tokens (GitHub tokens, `Bearer ...`, private keys, agentvm placeholders) are
 * masked. Works on strings and on nested objects/arrays; other values pass through.
 */
export function redactSecrets(value: unknown, knownSecrets: Iterable<string> = []): unknown {
  const secrets = [...knownSecrets]
    .filter((secret) => secret.length >= 4)
    .sort((a, b) => b.length - a.length);

  const redactString = (text: string): string => {
    let result = text;
    for (const secret of secrets) result = result.split(secret).join(REDACTED);
    for (const pattern of sensitivePatterns) {
      result = result.replace(pattern, (_match, prefix?: string) =>
        typeof prefix === 'string' ? prefix + REDACTED : REDACTED,
      );
    }
    return result;
  };

  // `names`: inside a field that lists secret names, keys like NPM_TOKEN are names, not values.
  const walk = (item: unknown, key: string | null, depth: number, names: boolean): unknown => {
    if (typeof item === 'string')
      return !names && key !== null && sensitiveKey.test(key) ? REDACTED : redactString(item);
    if (item === null || typeof item !== 'object' || depth > 20) return item;
    if (Array.isArray(item)) return item.map((element) => walk(element, key, depth + 1, names));
    if (item instanceof Error) return { name: item.name, message: redactString(item.message) };

    const copy: Record<string, unknown> = {};
    for (const [childKey, child] of Object.entries(item))
      copy[childKey] = walk(child, childKey, depth + 1, names || secretNameFields.has(childKey));
    return copy;
  };

  return walk(value, null, 0, false);
}

/**
 * Return a copy of `value` with every occurrence of a known secret value replaced by
 * {@link REDACTED}, in strings and nested objects/arrays, and nothing else changed: for what an
 * agent says (its output, progress, questions, errors), where masking anything that merely looks
 * like a token would garble the text and hide the placeholders the agent is meant to use.
 */
export function redactKnownValues<T>(value: T, knownSecrets: Iterable<string>): T {
  const secrets = [...knownSecrets]
    .filter((secret) => secret.length >= 4)
    .sort((a, b) => b.length - a.length);
  if (secrets.length === 0) return value;

  const walk = (item: unknown, depth: number): unknown => {
    if (typeof item === 'string') {
      let result = item;
      for (const secret of secrets) result = result.split(secret).join(REDACTED);
      return result;
    }
    if (item === null || typeof item !== 'object' || depth > 20) return item;
    if (Array.isArray(item)) return item.map((element) => walk(element, depth + 1));

    const copy: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(item)) copy[key] = walk(child, depth + 1);
    return copy;
  };
  return walk(value, 0) as T;
}
