import assert from 'node:assert/strict';
import { AgentvmError } from '../../../../protocol/errors';
import { checkListenAddress, guestImageWarning } from '../../../../server/cli/commands/serve';
import { exitCodeFor } from '../../../../server/cli/exitCodes';

describe('agentvm serve checks (unit)', () => {
  it('refuses --host 999.1.1.1 as bad input (exit 2) instead of a getaddrinfo stack', async () => {
    await assert.rejects(checkListenAddress('999.1.1.1'), (error: unknown) => {
      assert.ok(error instanceof AgentvmError);
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.equal(exitCodeFor(error.code), 2);
      assert.match(error.message, /--host "999\.1\.1\.1"/);
      assert.match(error.hint, /127\.0\.0\.1/);
      return true;
    });
  });

  it('refuses a host name that does not resolve', async () => {
    await assert.rejects(checkListenAddress('no-such-host.invalid'), /no such host name/);
  });

  it('accepts loopback', async () => {
    await checkListenAddress('127.0.0.1');
  });

  it('warns that delegations fail with IMAGE_MISSING until `agentvm image build` runs', () => {
    const warning = guestImageWarning(() => {
      throw new AgentvmError('IMAGE_MISSING', 'No guest image has been built in /d/images.');
    });
    assert.equal(
      warning,
      'warning: No guest image has been built in /d/images: delegations will fail with IMAGE_MISSING until `agentvm image build` runs',
    );
    assert.equal(
      guestImageWarning(() => ({})),
      undefined,
    );
  });
});
