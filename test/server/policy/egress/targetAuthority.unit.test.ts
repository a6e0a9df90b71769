import assert from 'node:assert/strict';
import {
  hostHeaderMismatch,
  targetAuthority,
} from '../../../../server/policy/egress/targetAuthority';

describe('targetAuthority (unit)', () => {
  it('leaves the default port out of the authority sent upstream', () => {
    assert.equal(targetAuthority({ host: 'example.com', port: 443, tls: true }), 'example.com');
    assert.equal(
      targetAuthority({ host: 'example.com', port: 443, tls: false }),
      'example.com:443',
    );
    assert.equal(targetAuthority({ host: '::1', port: 8080, tls: false }), '[::1]:8080');
  });

  it('accepts a Host header naming the target in any of its spellings, or none at all', () => {
    const target = { host: '127.0.0.1', port: 80, tls: false };

    for (const header of [undefined, '127.0.0.1', '127.0.0.1:80', '127.1', '2130706433:80']) {
      assert.equal(hostHeaderMismatch(header, target), null, String(header));
    }
    assert.equal(hostHeaderMismatch('[::1]:8080', { host: '::1', port: 8080, tls: false }), null);
    assert.equal(
      hostHeaderMismatch('API.Example.com.', { host: 'api.example.com', port: 443, tls: true }),
      null,
    );
  });

  it('names the mismatch for another host, another port, userinfo or a second Host header', () => {
    const target = { host: 'api.example.com', port: 443, tls: true };

    for (const header of [
      'evil.example',
      'api.example.com:80',
      'x@api.example.com',
      'api.example.com/x',
      '',
    ]) {
      assert.match(
        String(hostHeaderMismatch(header, target)),
        /does not match the target api\.example\.com$/,
        header,
      );
    }
    assert.match(String(hostHeaderMismatch(['a', 'b'], target)), /more than one Host header/);
  });
});
