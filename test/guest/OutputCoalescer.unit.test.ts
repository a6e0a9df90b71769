import assert from 'node:assert/strict';
import { OutputCoalescer, type OutputStream } from '../../guest/OutputCoalescer';

describe('OutputCoalescer (unit)', () => {
  const limits = {
    flushIntervalMs: 20,
    maxCharsPerFlush: 100,
    maxLineChars: 40,
    maxHeldFlushes: 1000,
    maxEventsPerFlush: 1000,
  };
  const settle = () => new Promise((resolve) => setTimeout(resolve, 60));

  /** A coalescer that records what it sends as `stream:text` (stdout alone as bare text). */
  function recording(options = limits, accept?: (chars: number) => boolean) {
    const sent: string[] = [];
    const coalescer = new OutputCoalescer(
      (stream: OutputStream, text: string) =>
        sent.push(stream === 'stdout' ? text : `${stream}:${text}`),
      options,
      accept,
    );
    const out = (text: string) => coalescer.write('stdout', Buffer.from(text));
    const err = (text: string) => coalescer.write('stderr', Buffer.from(text));
    return { sent, coalescer, out, err };
  }

  it('sends the line after a quiet spell at once and holds a partial line until it is finished', () => {
    const { sent, coalescer, out } = recording();
    out('one\ntw');
    assert.deepEqual(sent, ['one\n']);

    coalescer.end();
    assert.deepEqual(sent, ['one\n', 'tw']);
  });

  it('sends the lines that follow within an interval together, once the interval is over', async () => {
    const { sent, coalescer, out } = recording();
    out('one\n');
    out('two\nthr');
    out('ee\nfo');
    assert.deepEqual(sent, ['one\n']);

    await settle();
    assert.deepEqual(sent, ['one\n', 'two\nthree\n']);
    coalescer.end();
    assert.deepEqual(sent, ['one\n', 'two\nthree\n', 'fo']);
  });

  it('sends a line at once again after a quiet interval', async () => {
    const { sent, coalescer, out } = recording();
    out('one\n');
    await settle();
    out('two\n');
    assert.deepEqual(sent, ['one\n', 'two\n']);
    coalescer.end();
  });

  it('sends a partial line that waited the most flush intervals, such as a prompt', async () => {
    const { sent, coalescer, out } = recording({ ...limits, maxHeldFlushes: 2 });
    out('Continue? ');
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.deepEqual(sent, ['Continue? ']);
    coalescer.end();
  });

  it('joins a UTF-8 character split across two chunks, even with the other stream in between', () => {
    const { sent, coalescer, err } = recording();
    const bytes = Buffer.from('é\n');
    coalescer.write('stdout', bytes.subarray(0, 1));
    err('note\n');
    coalescer.write('stdout', bytes.subarray(1));
    coalescer.end();
    assert.deepEqual(sent, ['stderr:note\n', 'é\n']);
  });

  it('sends stdout and stderr in the order they arrived, a held partial line before the other stream', async () => {
    const { sent, coalescer, out, err } = recording();
    out('start\n');
    // Regression: "compiling " (held for its newline) was sent after the stderr warning.
    out('compiling ');
    err('warning: unused\n');
    out('done\n');
    err('exit soon\n');
    await settle();
    coalescer.end();
    assert.deepEqual(sent, [
      'start\n',
      'compiling ',
      'stderr:warning: unused\n',
      'done\n',
      'stderr:exit soon\n',
    ]);
  });

  it('holds back only the newest partial line and sends it once its line is finished', async () => {
    const { sent, coalescer, out, err } = recording();
    out('a\n');
    err('b\nhalf');
    await settle();
    assert.deepEqual(sent, ['a\n', 'stderr:b\n']);

    err(' done\n');
    coalescer.end();
    assert.deepEqual(sent, ['a\n', 'stderr:b\n', 'stderr:half done\n']);
  });

  it('sends at most maxEventsPerFlush events per flush and keeps the rest, in order, for the next', async () => {
    const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const { sent, coalescer, out, err } = recording({
      ...limits,
      flushIntervalMs: 100,
      maxEventsPerFlush: 2,
    });
    out('0\n');
    for (let line = 1; line <= 4; line++) (line % 2 === 1 ? err : out)(`${line}\n`);
    assert.deepEqual(sent, ['0\n']);

    await wait(150);
    assert.deepEqual(sent, ['0\n', 'stderr:1\n', '2\n']);
    await wait(100);
    assert.deepEqual(sent, ['0\n', 'stderr:1\n', '2\n', 'stderr:3\n', '4\n']);
    coalescer.end();
  });

  it('drops a flood over the cap and says how many characters it dropped', () => {
    const { sent, coalescer, out } = recording();
    out('x'.repeat(1000));
    coalescer.end();
    assert.equal(sent.length, 1);
    assert.ok(sent[0].startsWith('x'.repeat(100) + '\n'));
    assert.match(sent[0], /\[agentvm: 900 characters of output dropped: over 100 per 20 ms\]\n$/);
  });

  it("caps each stream on its own: a stdout flood does not drop stderr's lines", () => {
    const { sent, coalescer, out, err } = recording();
    out('x'.repeat(1000));
    err('error: it broke\n');
    coalescer.end();
    assert.equal(sent.length, 3);
    assert.equal(sent[1], 'stderr:error: it broke\n');
    assert.match(sent[2], /^\[agentvm: 900 characters of output dropped/);
  });

  it('drops output the owner refuses and reports it once output is accepted again', () => {
    let accepting = false;
    const { sent, coalescer, out } = recording(limits, () => accepting);
    out('lost line\n');
    coalescer.end();
    assert.deepEqual(sent, []);

    accepting = true;
    out('kept\n');
    coalescer.end();
    assert.deepEqual(sent, [
      'kept\n[agentvm: 10 characters of output dropped: the host fell behind]\n',
    ]);
  });
});
