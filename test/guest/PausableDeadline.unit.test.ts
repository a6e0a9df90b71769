import assert from 'node:assert/strict';
import { PausableDeadline } from '../../guest/PausableDeadline';

describe('PausableDeadline (unit)', () => {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('fires once after its limit when never paused', async () => {
    let fired = 0;
    const deadline = new PausableDeadline(20, () => fired++);
    deadline.start();
    await sleep(80);
    assert.equal(fired, 1);
  });

  it('does not fire while paused, and fires after resuming', async () => {
    let fired = 0;
    const deadline = new PausableDeadline(40, () => fired++);
    deadline.start();
    deadline.pause();
    await sleep(100);
    assert.equal(fired, 0);

    deadline.start();
    await sleep(120);
    assert.equal(fired, 1);
  });

  it('never fires once disposed', async () => {
    let fired = 0;
    const deadline = new PausableDeadline(20, () => fired++);
    deadline.start();
    deadline.dispose();
    deadline.start();
    await sleep(60);
    assert.equal(fired, 0);
  });
});
