import assert from 'node:assert/strict';
import path from 'node:path';
import {
  egressNetdevArgs,
  egressSocketPath,
  GUEST_PROXY_ADDRESS,
  GUEST_PROXY_PORT,
} from '../../../../server/policy/egress/guestEgress';

describe('guestEgress (unit)', function () {
  it('puts the egress socket in the agent directory when the path fits', function () {
    assert.equal(
      egressSocketPath('/var/lib/agentvm/agents/a1'),
      '/var/lib/agentvm/agents/a1/egress/proxy.sock',
    );
  });

  it('falls back to a stable directory under tmp when the agent directory is too long', function () {
    const long = `/data/${'x'.repeat(120)}/agents/a1`;

    const first = egressSocketPath(long, '/tmp');

    assert.match(first, /^\/tmp\/agentvm-egress-[0-9a-f]{16}\/proxy\.sock$/);
    assert.equal(egressSocketPath(long, '/tmp'), first);
    assert.notEqual(egressSocketPath(`${long}2`, '/tmp'), first);
  });

  it('falls back when the agent directory holds characters the relay command cannot carry', function () {
    const socketPath = egressSocketPath('/home/a user/data,dir/agents/a1', '/tmp');

    assert.equal(path.dirname(path.dirname(socketPath)), '/tmp');
  });

  it('relays each guest connection with socat to the unix socket', function () {
    const args = egressNetdevArgs('/d/agents/a1/egress/proxy.sock', 'net0', '/usr/bin/socat');

    assert.deepEqual(args.slice(2), ['-device', 'virtio-net-device,netdev=net0']);
    assert.equal(
      args[1],
      `user,id=net0,restrict=on,guestfwd=tcp:${GUEST_PROXY_ADDRESS}:${GUEST_PROXY_PORT}-cmd:/usr/bin/socat -t 300 -lf /dev/null FD:0,,shut-close UNIX-CONNECT:/d/agents/a1/egress/proxy.sock`,
    );
  });

  it('refuses a socket path that would break the QEMU option or the socat address', function () {
    assert.throws(
      () => egressNetdevArgs('/d/a,b/proxy.sock', 'net0', '/usr/bin/socat'),
      /guestfwd/,
    );
    assert.throws(
      () => egressNetdevArgs('/d/a:b/proxy.sock', 'net0', '/usr/bin/socat'),
      /guestfwd/,
    );
  });
});
