import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import type { GuestMessage, HostMessage } from '../../../../protocol/control';
import { settleGuest } from '../../../../server/vmm/qemu/settleGuest';
import type { Vm } from '../../../../server/vmm/VmmDriver';

/** A Vm whose "QEMU" is `child` and whose guest answers `sync` with `synced` when `answers`. */
function fakeVm(child: ChildProcess, answers: boolean): { vm: Vm; sent: HostMessage[] } {
  const sent: HostMessage[] = [];
  let listener: ((message: GuestMessage) => void) | undefined;
  const channel = {
    send(message: HostMessage) {
      sent.push(message);
      if (answers && message.type === 'sync') {
        setImmediate(() => listener?.({ type: 'synced', clockSkewMs: 0 }));
      }
    },
    onMessage(next: (message: GuestMessage) => void) {
      listener = next;
      return { dispose: () => (listener = undefined) };
    },
  };
  return { vm: { pid: child.pid as number, channel } as unknown as Vm, sent };
}

describe('settleGuest (unit)', () => {
  const children: ChildProcess[] = [];
  const start = (script: string) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
    children.push(child);
    return child;
  };
  after(() => {
    for (const child of children) child.kill('SIGKILL');
  });

  it('syncs the guest once and reports it idle when its process uses no CPU', async () => {
    const { vm, sent } = fakeVm(start('setTimeout(() => {}, 60000)'), true);
    const outcome = await settleGuest(vm, { timeoutMs: 10_000, windowMs: 200 });
    assert.equal(outcome.idle, true);
    assert.deepEqual(
      sent.map((message) => message.type),
      ['sync'],
    );
  });

  it('gives up at its deadline when the process keeps a CPU busy', async () => {
    const { vm } = fakeVm(start('for (;;) {}'), true);
    const outcome = await settleGuest(vm, { timeoutMs: 1_500, windowMs: 200 });
    assert.equal(outcome.idle, false);
  });

  it('spends its whole deadline on a guest that never answers the sync, and says it is not idle', async () => {
    const { vm } = fakeVm(start('setTimeout(() => {}, 60000)'), false);
    const outcome = await settleGuest(vm, { timeoutMs: 2_000, windowMs: 100 });
    assert.equal(outcome.idle, false);
  });
});
