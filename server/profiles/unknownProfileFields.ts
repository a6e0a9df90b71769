import { profileSchema } from '../../protocol/api';
import {
  githubGrantSchema,
  profileSecretSchema,
  resourceLimitsSchema,
} from '../../protocol/policy';

/**
 * Fields of a profile file that no profile has, each with the field it most likely meant. Zod
 * drops unknown keys, so without this a misspelled `allowedHost` or `secret` would leave a
 * profile without the allowlist or the secret its author wrote, and nobody would be told.
 */
export function unknownProfileFields(raw: unknown): string[] {
  if (!isObject(raw)) return [];

  const unknown = unknownIn(raw, Object.keys(profileSchema.shape), '');
  if (isObject(raw.secrets)) {
    for (const [name, secret] of Object.entries(raw.secrets)) {
      if (isObject(secret))
        unknown.push(
          ...unknownIn(secret, Object.keys(profileSecretSchema.shape), `secrets.${name}.`),
        );
    }
  }
  if (isObject(raw.github)) {
    unknown.push(...unknownIn(raw.github, Object.keys(githubGrantSchema.shape), 'github.'));
  }
  if (isObject(raw.limits)) {
    unknown.push(...unknownIn(raw.limits, Object.keys(resourceLimitsSchema.shape), 'limits.'));
  }
  return unknown;
}

function unknownIn(object: Record<string, unknown>, known: string[], prefix: string): string[] {
  return Object.keys(object)
    .filter((key) => !known.includes(key))
    .map((key) => {
      const meant = closest(key, known);
      return `unknown field "${prefix}${key}"${meant ? ` (did you mean "${prefix}${meant}"?)` : ''}`;
    });
}

/** The known name `key` is most likely a typo of: the same ignoring case, or two edits away. */
function closest(key: string, known: string[]): string | undefined {
  const lower = key.toLowerCase();
  const sameLetters = known.find((name) => name.toLowerCase() === lower);
  if (sameLetters) return sameLetters;

  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(lower, name.toLowerCase());
    if (distance <= 2 && (!best || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

/** Levenshtein distance: insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
