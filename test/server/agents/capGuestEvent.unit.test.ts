import assert from 'node:assert/strict';
import { capGuestEvent, MAX_OUTPUT_EVENT_CHARS } from '../../../server/agents/capGuestEvent';

describe('capGuestEvent (unit)', () => {
  it('cuts a 5 MB progress message to 4096 characters with a marker saying how much went', () => {
    const event = capGuestEvent({ kind: 'progress', message: 'p'.repeat(5_000_000) });

    assert.equal(event.kind, 'progress');
    const message = (event as { message: string }).message;
    assert.ok(message.startsWith('p'.repeat(4096) + ' [agentvm: 4995904 more characters cut'));
    assert.ok(message.length < 4200);
  });

  it('cuts review text at 16384 characters and keeps its requestId', () => {
    const event = capGuestEvent({ kind: 'review', requestId: 'r1', message: 'r'.repeat(20_000) });

    assert.equal((event as { requestId: string }).requestId, 'r1');
    assert.match((event as { message: string }).message, /^r{16384} \[agentvm: 3616 more/);
  });

  it('cuts output text over 64 KiB and leaves messages within their limits untouched', () => {
    const output = capGuestEvent({
      kind: 'output',
      stream: 'stdout',
      text: 'o'.repeat(MAX_OUTPUT_EVENT_CHARS + 1),
    });
    assert.match((output as { text: string }).text, /1 more characters cut/);

    const small = { kind: 'done', message: 'finished' } as const;
    assert.deepEqual(capGuestEvent(small), small);
  });
});
