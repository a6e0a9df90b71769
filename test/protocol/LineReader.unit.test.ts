import assert from 'node:assert/strict';
import { LineReader } from '../../protocol/LineReader';

function reader(): { lines: string[]; push(...chunks: (string | Buffer)[]): void } {
  const lines: string[] = [];
  const lineReader = new LineReader((line) => lines.push(line));
  return {
    lines,
    push: (...chunks) => {
      for (const chunk of chunks)
        lineReader.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    },
  };
}

describe('LineReader (unit)', () => {
  it('joins a line split over chunks and splits several lines in one chunk, skipping blank ones', () => {
    const { lines, push } = reader();
    push('{"a":', '1}\n{"b":2}\n\n  \n{"c"', ':3}\n{"d"');
    assert.deepEqual(lines, ['{"a":1}', '{"b":2}', '{"c":3}']);
    push('}\n');
    assert.deepEqual(lines.at(-1), '{"d"}');
  });

  it('decodes a character whose bytes arrive in two chunks', () => {
    const { lines, push } = reader();
    const bytes = Buffer.from('été\n');
    push(bytes.subarray(0, 2), bytes.subarray(2));
    assert.deepEqual(lines, ['été']);
  });

  it('delivers a 24 MiB line sent in 64 KiB chunks whole, and the line after it', () => {
    const { lines, push } = reader();
    const big = Buffer.alloc(24 * 2 ** 20, 'x');
    for (let offset = 0; offset < big.length; offset += 64 * 1024) {
      push(big.subarray(offset, offset + 64 * 1024));
    }
    push('\nnext\n');
    assert.equal(lines.length, 2);
    assert.equal(lines[0].length, big.length);
    assert.equal(lines[1], 'next');
  });
});
