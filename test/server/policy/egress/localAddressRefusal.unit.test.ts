import assert from 'node:assert/strict';
import { guardedLookup } from '../../../../server/policy/egress/guardedLookup';
import {
  hostLocalClass,
  localAddressRefusal,
} from '../../../../server/policy/egress/localAddressRefusal';

describe('localAddressRefusal (unit)', () => {
  it('names the class of each kind of host-local address', () => {
    const expected = {
      '127.0.0.5': 'loopback',
      '::1': 'loopback',
      '::ffff:127.0.0.1': 'loopback',
      '0.0.0.0': 'unspecified',
      '::': 'unspecified',
      '169.254.169.254': 'link-local',
      'fe80::1%eth0': 'link-local',
      '192.0.2.2': 'host-interface',
      '2001:db8::2': 'host-interface',
    };

    for (const [address, addressClass] of Object.entries(expected)) {
      assert.equal(hostLocalClass(address), addressClass, address);
    }
  });

  it('reads the refused address from a guardedLookup refusal and says how to allow it', async () => {
    const error = await new Promise<Error | null>((resolve) =>
      guardedLookup(false)('127.0.0.9', {}, (failure) => resolve(failure)),
    );

    const refusal = localAddressRefusal(error!, 'db.example');

    assert.deepEqual(
      { ...refusal, reason: undefined },
      { addressClass: 'loopback', address: '127.0.0.9', reason: undefined },
    );
    assert.match(refusal!.reason, /^db\.example resolves to a loopback address \(127\.0\.0\.9\)/);
    assert.match(refusal!.reason, /literal address in allowedHosts/);
  });

  it('leaves other errors alone', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

    assert.equal(localAddressRefusal(refused, 'db.example'), null);
  });
});
