import assert from 'node:assert/strict';
import dns from 'node:dns';
import os from 'node:os';
import {
  canonicalAddress,
  guardedLookup,
  hostInterfaceAddresses,
  isHostLocalAddress,
} from '../../../../server/policy/egress/guardedLookup';

/** Every address of this machine's interfaces, as os.networkInterfaces() spells it. */
function realInterfaceAddresses(): string[] {
  return Object.values(os.networkInterfaces()).flatMap((entries) =>
    (entries ?? []).map((entry) => entry.address),
  );
}

function lookup(hostname: string, allowLocal: boolean) {
  return new Promise<{ error: NodeJS.ErrnoException | null; address: unknown }>((resolve) =>
    guardedLookup(allowLocal)(hostname, {}, (error, address) => resolve({ error, address })),
  );
}

describe('guardedLookup (unit)', function () {
  it('treats every address of the host’s own interfaces as host-local', function () {
    const addresses = realInterfaceAddresses();
    assert.ok(addresses.length > 0, 'this machine reports no interface addresses');

    for (const address of addresses) {
      assert.equal(isHostLocalAddress(address), true, `${address} should be host-local`);
    }
  });

  it('treats a non-loopback interface address as host-local (red-team finding 8: eth0’s address)', function () {
    const routable = realInterfaceAddresses().filter(
      (address) => !/^(127\.|::1$|fe80:)/i.test(address),
    );
    if (routable.length === 0) this.skip();

    for (const address of routable) {
      assert.equal(isHostLocalAddress(address), true, address);
      assert.equal(isHostLocalAddress(address, new Set()), false, `${address} without interfaces`);
    }
  });

  it('matches interface addresses however the address is spelled', function () {
    const interfaces = new Set(['192.0.2.2', '2001:db8::2']);

    assert.equal(isHostLocalAddress('::ffff:192.0.2.2', interfaces), true);
    assert.equal(isHostLocalAddress('::ffff:c000:202', interfaces), true);
    assert.equal(isHostLocalAddress('2001:DB8:0:0:0:0:0:2', interfaces), true);
    assert.equal(isHostLocalAddress('192.0.2.3', interfaces), false);
    assert.equal(isHostLocalAddress('2001:db8::3', interfaces), false);
  });

  it('still refuses loopback, unspecified and link-local addresses when no interface has them', function () {
    const none = new Set<string>();
    for (const address of ['127.0.0.5', '0.0.0.0', '169.254.169.254', '::1', '::', 'fe80::1']) {
      assert.equal(isHostLocalAddress(address, none), true, address);
    }
    assert.equal(isHostLocalAddress('93.184.215.14', none), false);
    assert.equal(isHostLocalAddress('2606:2800:21f:cb07::1', none), false);
  });

  it('spells addresses canonically, dropping zone indexes', function () {
    assert.equal(canonicalAddress('FE80::FC:FF:FE00:1%eth0'), 'fe80::fc:ff:fe00:1');
    assert.equal(canonicalAddress('::ffff:7f00:1'), '127.0.0.1');
    assert.equal(canonicalAddress('10.1.2.3'), '10.1.2.3');
  });

  it('reads the interfaces again once the cache is older than a second', function () {
    const first = hostInterfaceAddresses(1_000_000);

    assert.equal(hostInterfaceAddresses(1_000_500), first);
    assert.notEqual(hostInterfaceAddresses(1_002_000), first);
  });

  it('refuses a name that resolves to one of the host’s own interface addresses', async function () {
    const routable = realInterfaceAddresses().find(
      (address) => /^\d+\.\d+\.\d+\.\d+$/.test(address) && !address.startsWith('127.'),
    );
    if (!routable) this.skip();

    // A literal resolves to itself, standing in for a name whose DNS answer is this address.
    const refused = await lookup(routable, false);
    assert.equal(refused.error?.code, 'EGRESS_LOCAL_ADDRESS');

    const allowed = await lookup(routable, true);
    assert.equal(allowed.error, null);
    assert.equal(allowed.address, routable);
  });

  it('lets an outside address through', async function () {
    const answer = await new Promise<string>((resolve, reject) =>
      dns.lookup('192.0.2.77', (error, address) => (error ? reject(error) : resolve(address))),
    );
    if (hostInterfaceAddresses().has(answer)) this.skip();

    const result = await lookup('192.0.2.77', false);
    assert.equal(result.error, null);
    assert.equal(result.address, '192.0.2.77');
  });
});
