import assert from 'node:assert/strict';
import { AgentvmError } from '../../../protocol/errors';
import {
  capGuestEvent,
  DEFAULT_MAX_STORED_OUTPUT_BYTES,
  MAX_OUTPUT_EVENT_CHARS,
  maxStoredOutputBytes,
  OutputBudget,
} from '../../../server/agents/capGuestEvent';

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

describe('OutputBudget (unit)', () => {
  const chunk = 'x'.repeat(64 * 1024);

  it('stores a flood of 64 KiB writes up to the cap, then counts and drops the rest with one notice (regression: 10 MB in 20 s, no cap)', () => {
    const budget = new OutputBudget(2 ** 20);
    const admissions = Array.from({ length: 320 }, () => budget.admit('a1', chunk));

    const stored = admissions.filter((admission) => admission.store).length;
    assert.equal(stored * chunk.length, 2 ** 20);
    const notices = admissions.flatMap((admission) => (admission.notice ? [admission.notice] : []));
    assert.equal(notices.length, 1);
    assert.equal(notices[0].kind, 'limit');
    assert.match(notices[0].message, /^output passed the 1 MiB stored per agent/);
    assert.match(notices[0].message, /counted, not stored, and is kept nowhere/);
    assert.equal(
      admissions.findIndex((admission) => admission.notice),
      16,
    );

    const summary = budget.droppedSummary('a1');
    assert.equal(
      summary?.message,
      '19 MiB of output (304 write(s)) past the 1 MiB cap was dropped, not stored: the full output is not available anywhere',
    );
    assert.deepEqual(summary?.data, {
      limit: 'output',
      droppedBytes: 304 * chunk.length,
      droppedWrites: 304,
      maxStoredOutputBytes: 2 ** 20,
    });
  });

  it('keeps an agent capped after its summary, with no second notice, and counts only what came since', () => {
    const budget = new OutputBudget(10);
    budget.admit('a1', 'x'.repeat(11));
    budget.droppedSummary('a1');

    const small = budget.admit('a1', 'y');

    assert.deepEqual(small, { store: false });
    assert.match(budget.droppedSummary('a1')!.message, /^1 byte of output \(1 write\(s\)\)/);
    assert.equal(budget.droppedSummary('a1'), undefined);
  });

  it('counts each agent apart, in UTF-8 bytes, and starts again for an agent it forgot', () => {
    const budget = new OutputBudget(4);
    assert.equal(budget.admit('a1', 'éé').store, true);
    assert.equal(budget.admit('a1', 'é').store, false);
    assert.equal(budget.admit('a2', 'abcd').store, true);
    assert.equal(budget.droppedSummary('a2'), undefined);

    budget.forget('a1');

    assert.equal(budget.admit('a1', 'abcd').store, true);
  });

  it('takes its cap from AGENTVM_MAX_STORED_OUTPUT_MIB, 64 MiB by default, and refuses a value that is not a whole MiB', () => {
    assert.equal(maxStoredOutputBytes({}), DEFAULT_MAX_STORED_OUTPUT_BYTES);
    assert.equal(DEFAULT_MAX_STORED_OUTPUT_BYTES, 64 * 2 ** 20);
    assert.equal(maxStoredOutputBytes({ AGENTVM_MAX_STORED_OUTPUT_MIB: '8' }), 8 * 2 ** 20);
    for (const bad of ['0', '-1', '1.5', 'lots', '1e3']) {
      assert.throws(
        () => maxStoredOutputBytes({ AGENTVM_MAX_STORED_OUTPUT_MIB: bad }),
        (error: unknown) =>
          error instanceof AgentvmError &&
          error.code === 'VALIDATION_FAILED' &&
          error.message.includes(`not "${bad}"`) &&
          /AGENTVM_MAX_STORED_OUTPUT_MIB=64/.test(error.hint),
      );
    }
  });
});
