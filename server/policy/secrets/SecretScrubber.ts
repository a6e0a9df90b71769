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
      .map((secret) => ({
        value: Buffer.from(secret.value, 'utf8'),
        placeholder: Buffer.from(secret.placeholder, 'utf8'),
      }))
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

/** Response headers with every real value replaced by its placeholder. */
export function scrubHeaders(
  headers: Record<string, string | string[]>,
  secrets: readonly ScrubbedSecret[],
): Record<string, string | string[]> {
  const result: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    result[name] = Array.isArray(value)
      ? value.map((item) => scrubText(item, secrets))
      : scrubText(value, secrets);
  }
  return result;
}
