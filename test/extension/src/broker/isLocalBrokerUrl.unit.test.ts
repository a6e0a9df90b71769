import assert from 'node:assert/strict';
import { isLocalBrokerUrl } from '../../../../extension/src/broker/isLocalBrokerUrl';

describe('isLocalBrokerUrl (unit)', () => {
  it('treats loopback addresses as local', () => {
    for (const url of ['http://127.0.0.1:7878', 'http://localhost:1', 'http://[::1]:7878/']) {
      assert.equal(isLocalBrokerUrl(url), true, url);
    }
  });

  it('never auto-starts for other hosts or malformed URLs', () => {
    for (const url of [
      'http://10.0.0.2:7878',
      'https://broker.internal',
      'http://127.0.0.1.nip.invalid',
      'not a url',
    ]) {
      assert.equal(isLocalBrokerUrl(url), false, url);
    }
  });
});
