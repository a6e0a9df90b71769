import { Transform, type TransformCallback } from 'node:stream';

/** A real value and what the guest sees instead of it. */
export interface ScrubbedSecret {
  value: string;
  placeholder: string;
}

interface Needle {
  value: Buffer;
  placeholder: Buffer;
}

/**
 * A byte stream with every occurrence of a secret's real value replaced by its placeholder. A
 * value may straddle chunks, so the last `longest value - 1` bytes that might begin one are held
 * back until the next chunk (or the end) decides; nothing else is buffered.
 */
export class SecretScrubber extends Transform {
  private readonly needles: Needle[];
  private readonly holdBack: number;
  private carry = Buffer.alloc(0);

  constructor(secrets: readonly ScrubbedSecret[]) {
    super();
    this.needles = secrets
      .filter((secret) => secret.value.length > 0)
      .flatMap((secret) => {
        const placeholder = Buffer.from(secret.placeholder, 'utf8');
        const spellings = [Buffer.from(secret.value, 'utf8')];
        // Node writes request header values as latin1: a value put in a header leaves the proxy in
        // that spelling, and an upstream echoing the header into a body sends those bytes back.
        if (/^[\x00-\xff]*$/.test(secret.value)) {
          const latin1 = Buffer.from(secret.value, 'latin1');
          if (!latin1.equals(spellings[0])) spellings.push(latin1);
        }
        return spellings.map((value) => ({ value, placeholder }));
      })
      // Longest first, so a value that contains another is replaced whole.
      .sort((a, b) => b.value.length - a.value.length);
    this.holdBack = Math.max(0, ...this.needles.map((needle) => needle.value.length - 1));
  }

  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, done: TransformCallback) {
    const data = Buffer.concat([this.carry, Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)]);
    const parts: Buffer[] = [];
    let position = 0;
    for (;;) {
      const match = this.firstMatch(data, position);
      if (!match) break;

      parts.push(data.subarray(position, match.index), match.needle.placeholder);
      position = match.index + match.needle.value.length;
    }

    // A value not yet complete can only begin within the last holdBack bytes.
    const keep = Math.min(data.length - position, this.holdBack);
    parts.push(data.subarray(position, data.length - keep));
    this.carry = Buffer.from(data.subarray(data.length - keep));
    const out = Buffer.concat(parts);
    if (out.length > 0) this.push(out);
    done();
  }

  override _flush(done: TransformCallback) {
    if (this.carry.length > 0) this.push(this.carry);
    this.carry = Buffer.alloc(0);
    done();
  }

  private firstMatch(data: Buffer, from: number): { index: number; needle: Needle } | null {
    let best: { index: number; needle: Needle } | null = null;
    for (const needle of this.needles) {
      const index = data.indexOf(needle.value, from);
      if (index !== -1 && (best === null || index < best.index)) best = { index, needle };
    }
    return best;
  }
}

/** `text` with every real value replaced by its placeholder (longest values first). */
export function scrubText(text: string, secrets: readonly ScrubbedSecret[]): string {
  let result = text;
  const ordered = [...secrets]
    .filter((secret) => secret.value.length > 0)
    .sort((a, b) => b.value.length - a.value.length);
  for (const { value, placeholder } of ordered) {
    result = result.split(value).join(placeholder);
    // Node reads header bytes as latin1: a non-ASCII value arrives in that spelling.
    const latin1 = Buffer.from(value, 'utf8').toString('latin1');
    if (latin1 !== value) result = result.split(latin1).join(placeholder);
  }
  return result;
}

/**
 * Response headers with every real value replaced by its placeholder in their values, and without
 * any header whose name holds a real value. Such a header is dropped rather than rewritten: Node
 * hands names over lower-cased, so a value with capitals could only be matched, not restored in
 * its case; a replacement need not be a valid header name (an encoded form has `/` and `=`); and
 * a name that carries a secret is a reflection, not something a client needs.
 */
export function scrubHeaders(
  headers: Record<string, string | string[]>,
  secrets: readonly ScrubbedSecret[],
): Record<string, string | string[]> {
  const values = secrets
    .filter((secret) => secret.value.length > 0)
    .map((secret) => secret.value.toLowerCase());
  const result: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lowerName = name.toLowerCase();
    if (values.some((secretValue) => lowerName.includes(secretValue))) continue;

    result[name] = Array.isArray(value)
      ? value.map((item) => scrubText(item, secrets))
      : scrubText(value, secrets);
  }
  return result;
}
