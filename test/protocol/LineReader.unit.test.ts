import assert from 'node:assert/strict';
import { LineReader, type LineReaderOptions } from '../../protocol/LineReader';

function reader(options: LineReaderOptions = {}): {
  lines: string[];
  push(...chunks: (string | Buffer)[]): void;
} {
  const lines: string[] = [];
  const lineReader = new LineReader((line) => lines.push(line), options);
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

  it('drops a line over maxLineChars whole, reports it once, and delivers the next line', () => {
    const overflows: number[] = [];
    const { lines, push } = reader({
      maxLineChars: 10,
      onOverflow: (chars) => overflows.push(chars),
    });
    push('short\n', 'x'.repeat(8), 'y'.repeat(8), 'z'.repeat(30), 'tail\nafter\n');

    assert.deepEqual(lines, ['short', 'after']);
    assert.equal(overflows.length, 1);
    assert.equal(overflows[0], 16);
  });

  it('drops a too-long line that arrives in one chunk with its newline', () => {
    const overflows: number[] = [];
    const { lines, push } = reader({
      maxLineChars: 4,
      onOverflow: (chars) => overflows.push(chars),
    });
    push('abcdefgh\nok\n');

    assert.deepEqual(lines, ['ok']);
    assert.deepEqual(overflows, [8]);
  });

  it('keeps a line of exactly maxLineChars', () => {
    const { lines, push } = reader({ maxLineChars: 4 });
    push('ab', 'cd\n');
    assert.deepEqual(lines, ['abcd']);
  });
});
