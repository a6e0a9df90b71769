import assert from 'node:assert/strict';
import { guestRequestSchema, type GuestRequestInput } from '../../../protocol/control';
import { guestChangeDetails } from '../../../server/http/guestChangeDetails';

const details = (request: GuestRequestInput) =>
  guestChangeDetails(guestRequestSchema.parse(request));

describe('guestChangeDetails (unit)', () => {
  it("describes every request that changes the VM, the review terminal's interrupt included, and none that only reads", () => {
    assert.deepEqual(details({ op: 'exec', command: 'make', execId: 't1' }), {
      op: 'exec',
      command: 'make',
      execId: 't1',
    });
    assert.deepEqual(details({ op: 'exec.interrupt', execId: 't1' }), {
      op: 'exec.interrupt',
      execId: 't1',
    });
    assert.deepEqual(details({ op: 'fs.writeFile', path: 'a', data: 'AAAA' }), {
      op: 'fs.writeFile',
      path: 'a',
      bytes: 3,
    });
    assert.deepEqual(details({ op: 'fs.rename', from: 'a', to: 'b' }), {
      op: 'fs.rename',
      from: 'a',
      to: 'b',
    });
    for (const read of [
      { op: 'fs.stat', path: 'a' },
      { op: 'fs.readdir', path: '.' },
      { op: 'fs.readFile', path: 'a' },
      { op: 'changes' },
    ] as const)
      assert.equal(details(read), null, read.op);
  });

  it('keeps the first 500 characters of a long command and says how long it was', () => {
    const command = 'x'.repeat(2000);
    assert.deepEqual(details({ op: 'exec', command }), {
      op: 'exec',
      command: 'x'.repeat(500),
      commandChars: 2000,
    });
  });
});
