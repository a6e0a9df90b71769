import assert from 'node:assert/strict';
import { OutputCoalescer } from '../../guest/OutputCoalescer';

describe('OutputCoalescer (unit)', () => {
  const limits = {
    flushIntervalMs: 20,
    maxCharsPerFlush: 100,
    maxLineChars: 40,
    maxHeldFlushes: 1000,
  };
  const settle = () => new Promise((resolve) => setTimeout(resolve, 60));

  it('sends the line after a quiet spell at once and holds a partial line until it is finished', () => {
    const sent: string[] = [];
    const coalescer = new OutputCoalescer((text) => sent.push(text), limits);
    coalescer.write(Buffer.from('one\ntw'));
    assert.deepEqual(sent, ['one\n']);

    coalescer.end();
    assert.deepEqual(sent, ['one\n', 'tw']);
  });

  it('sends the lines that follow within an interval together, once the interval is over', async () => {
    const sent: string[] = [];
    const coalescer = new OutputCoalescer((text) => sent.push(text), limits);
    coalescer.write(Buffer.from('one\n'));
    coalescer.write(Buffer.from('two\nthr'));
    coalescer.write(Buffer.from('ee\nfo'));
    assert.deepEqual(sent, ['one\n']);

    await settle();
    assert.deepEqual(sent, ['one\n', 'two\nthree\n']);
    coalescer.end();
    assert.deepEqual(sent, ['one\n', 'two\nthree\n', 'fo']);
  });

  it('sends a line at once again after a quiet interval', async () => {
    const sent: string[] = [];
    const coalescer = new OutputCoalescer((text) => sent.push(text), limits);
    coalescer.write(Buffer.from('one\n'));
    await settle();
    coalescer.write(Buffer.from('two\n'));
    assert.deepEqual(sent, ['one\n', 'two\n']);
    coalescer.end();
  });

  it('sends a partial line that waited the most flush intervals, such as a prompt', async () => {
    const sent: string[] = [];
    const coalescer = new OutputCoalescer((text) => sent.push(text), {
      ...limits,
      maxHeldFlushes: 2,
    });
    coalescer.write(Buffer.from('Continue? '));
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.deepEqual(sent, ['Continue? ']);
    coalescer.end();
  });

  it('joins a UTF-8 character split across two chunks', () => {
    const sent: string[] = [];
    const coalescer = new OutputCoalescer((text) => sent.push(text), limits);
    const bytes = Buffer.from('é\n');
    coalescer.write(bytes.subarray(0, 1));
    coalescer.write(bytes.subarray(1));
    coalescer.end();
    assert.deepEqual(sent, ['é\n']);
  });

  it('drops a flood over the cap and says how many characters it dropped', () => {
    const sent: string[] = [];
    const coalescer = new OutputCoalescer((text) => sent.push(text), limits);
    coalescer.write(Buffer.from('x'.repeat(1000)));
    coalescer.end();
    assert.equal(sent.length, 1);
    assert.ok(sent[0].startsWith('x'.repeat(100) + '\n'));
    assert.match(sent[0], /\[agentvm: 900 characters of output dropped: over 100 per 20 ms\]\n$/);
  });

  it('drops output the owner refuses and reports it once output is accepted again', () => {
    const sent: string[] = [];
    let accepting = false;
    const coalescer = new OutputCoalescer(
      (text) => sent.push(text),
      limits,
      () => accepting,
    );
    coalescer.write(Buffer.from('lost line\n'));
    coalescer.end();
    assert.deepEqual(sent, []);

    accepting = true;
    coalescer.write(Buffer.from('kept\n'));
    coalescer.end();
    assert.deepEqual(sent, [
      'kept\n[agentvm: 10 characters of output dropped: the host fell behind]\n',
    ]);
  });
});
