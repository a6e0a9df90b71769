/**
 * The longest text an egress audit row keeps per field, in characters. Paths, host names and the
 * reasons that quote them come from the guest, which could otherwise make every row of the log as
 * large as a request's headers (16 KiB) and fill the broker's disk that much faster.
 */
export const MAX_AUDIT_TEXT_CHARS = 1000;

/** `details` with every string (also inside arrays) cut to {@link MAX_AUDIT_TEXT_CHARS}, marked. */
export function clipAuditDetails(details: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(details).map(([name, value]) => [
      name,
      Array.isArray(value) ? value.map(clip) : clip(value),
    ]),
  );
}

function clip(value: unknown): unknown {
  if (typeof value !== 'string' || value.length <= MAX_AUDIT_TEXT_CHARS) return value;

  const cut = value.length - MAX_AUDIT_TEXT_CHARS;
  return `${value.slice(0, MAX_AUDIT_TEXT_CHARS)}… [${cut} more characters cut]`;
}
