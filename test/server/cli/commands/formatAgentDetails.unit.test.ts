import assert from 'node:assert/strict';
import { formatAgentDetails } from '../../../../server/cli/commands/formatAgentDetails';
import { anAgent } from '../../../helpers/anAgent';

const controlCharacter = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

describe('formatAgentDetails (unit)', () => {
  it('puts what waits on the user first and indents the further lines of a value under its first', () => {
    const lines = formatAgentDetails(
      anAgent({
        state: 'awaiting_review',
        review: { requestId: 'r1', message: 'Shall I add a test?\nanswer yes', requestedAt: 2_000 },
        vmSeconds: 40.2,
        bootPath: 'template',
        accel: 'tcg',
      }),
      1_000 + 125_000,
    );

    assert.deepEqual(lines.slice(0, 5), [
      'agent a1: Fix the parser',
      '  state      awaiting_review',
      '  review     Shall I add a test?',
      '             answer yes',
      '  VM time    40s, started from a template, tcg',
    ]);
    assert.ok(lines.includes('  delegated  1970-01-01 00:00:01 UTC (2m05s ago)'));
  });

  it('says when the broker does not report the VM time instead of showing 0s', () => {
    const lines = formatAgentDetails(anAgent({ vmSeconds: undefined }));

    assert.ok(lines.includes('  VM time    not reported (the broker is older than this CLI)'));
  });

  it('shows the escapes an agent wrote into its title, reason and progress, not obeying them', () => {
    const lines = formatAgentDetails(
      anAgent({
        title: 'Fix it\u001b]0;pwned\u0007',
        state: 'failed',
        stateReason: 'died\r\u001b[2K  state      done',
        lastProgress: 'ok\u202e',
      }),
    );

    const text = lines.join('\n');
    assert.doesNotMatch(text, controlCharacter);
    assert.doesNotMatch(text, /\u202e/);
    assert.equal(lines[0], 'agent a1: Fix it^[]0;pwned^G');
    assert.ok(lines.includes('  reason     died^M^[[2K  state      done'));
  });
});
