import type { Context } from 'hono';
import type { z } from 'zod';
import { AgentvmError } from '../../protocol/errors';

/** Reads the JSON body and validates it; one VALIDATION_FAILED error names every bad field. */
export async function parseBody<T extends z.ZodType>(
  context: Context,
  schema: T,
): Promise<z.infer<T>> {
  let raw: unknown;
  try {
    const text = await context.req.text();
    raw = text.length === 0 ? {} : JSON.parse(text);
  } catch {
    throw new AgentvmError('BAD_REQUEST', 'the request body is not valid JSON');
  }

  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`,
    );
    throw new AgentvmError('VALIDATION_FAILED', `invalid request body: ${issues.join('; ')}`);
  }

  return parsed.data;
}

/** A non-negative integer query parameter, or the default; anything else is VALIDATION_FAILED. */
export function integerQuery(context: Context, name: string, fallback: number): number {
  const value = context.req.query(name);
  if (value === undefined || value === '') return fallback;

  if (!/^\d{1,15}$/.test(value)) {
    throw new AgentvmError(
      'VALIDATION_FAILED',
      `query parameter ${name} must be a non-negative integer`,
    );
  }

  return Number(value);
}

/** A `true` / `false` query parameter; absent or empty is false, anything else VALIDATION_FAILED. */
export function booleanQuery(context: Context, name: string): boolean {
  const value = context.req.query(name);
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;

  throw new AgentvmError(
    'VALIDATION_FAILED',
    `query parameter ${name} must be true or false, not "${value}"`,
  );
}
