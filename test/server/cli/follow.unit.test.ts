import assert from 'node:assert/strict';
import { formatElapsed, interruptNotice } from '../../../server/cli/follow';

describe('CLI timeline stamps (unit)', () => {
  it('writes minutes and seconds to the tenth', () => {
    assert.equal(formatElapsed(0), '[00:00.0]');
    assert.equal(formatElapsed(4_234), '[00:04.2]');
    assert.equal(formatElapsed(63_600), '[01:03.6]');
    assert.equal(formatElapsed(-5), '[00:00.0]');
  });

  it('carries a second that rounds up to 60 into the minutes', () => {
    assert.equal(formatElapsed(59_960), '[01:00.0]');
    assert.equal(formatElapsed(119_999), '[02:00.0]');
  });
});

describe('CLI follow interrupted (unit)', () => {
  it('says the agent keeps running and how to follow it again or stop it', () => {
    assert.equal(
      interruptNotice('7pfkdurd8e'),
      'stopped following; agent 7pfkdurd8e keeps running: follow it again with `agentvm logs -f 7pfkdurd8e`, or stop it with `agentvm cancel 7pfkdurd8e`',
    );
  });
});
