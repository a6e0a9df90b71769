import assert from 'node:assert/strict';
import {
  HostAllowlist,
  parseHostPattern,
  patternMatches,
} from '../../../../server/policy/egress/HostAllowlist';

describe('HostAllowlist (unit)', () => {
  const table: Array<[entry: string, host: string, port: number, allowed: boolean]> = [
    ['example.com', 'example.com', 443, true],
    ['example.com', 'example.com', 80, true],
    ['example.com', 'EXAMPLE.com.', 443, true],
    ['example.com', 'example.com', 22, false],
    ['example.com', 'www.example.com', 443, false],
    ['example.com', 'example.com.evil.net', 443, false],
    ['*.example.com', 'api.example.com', 443, true],
    ['*.example.com', 'a.b.example.com', 443, true],
    ['*.example.com', 'example.com', 443, false],
    ['*.example.com', 'badexample.com', 443, false],
    ['example.com:8443', 'example.com', 8443, true],
    ['example.com:8443', 'example.com', 443, false],
    ['example.com:*', 'example.com', 2222, true],
    ['*.example.com:8080', 'x.example.com', 8080, true],
    ['*.example.com:8080', 'x.example.com', 443, false],
    ['127.0.0.1:4000', '127.0.0.1', 4000, true],
    ['127.0.0.1:4000', '127.0.0.1', 4001, false],
    ['[::1]:8080', '::1', 8080, true],
    ['[::1]:8080', '[::1]', 8080, true],
    ['::1', '::1', 443, true],
    // h14: one IPv6 address, spelled differently in the entry and the request.
    ['[0:0:0:0:0:0:0:1]:8080', '::1', 8080, true],
    ['[::1]:8080', '0:0:0:0:0:0:0:1', 8080, true],
    ['[2001:DB8::0:1]:*', '[2001:db8::1]', 22, true],
    ['[::1]:8080', '::2', 8080, false],
  ];

  for (const [entry, host, port, allowed] of table) {
    it(`${allowed ? 'admits' : 'refuses'} ${host}:${port} for the entry ${entry}`, () => {
      assert.equal(new HostAllowlist([entry]).allows(host, port), allowed);
    });
  }

  it('reports which entry admitted a host', () => {
    const list = new HostAllowlist(['registry.npmjs.org', '*.github.com']);

    assert.equal(list.match('codeload.github.com', 443)?.source, '*.github.com');
    assert.equal(list.match('npmjs.org', 443), null);
  });

  it('never lets a wildcard match an IP address, even one built without the parser', () => {
    const pattern = { source: '*.0.1', host: '0.1', wildcard: true, port: 'any' as const };

    assert.equal(patternMatches(pattern, '127.0.0.1', 8080), false);
    assert.equal(patternMatches(pattern, 'a.0.1', 8080), true);
  });

  it('refuses everything when the list is empty', () => {
    assert.equal(new HostAllowlist([]).allows('example.com', 443), false);
  });

  for (const bad of [
    '',
    '*',
    '*.com',
    'exa mple.com',
    'example.com:0',
    'example.com:70000',
    'http://example.com',
    '*.1.2.3.4',
    '*.0.1',
    '*.168.1.1:*',
  ]) {
    it(`rejects the malformed entry "${bad}" with a message naming it`, () => {
      assert.throws(
        () => parseHostPattern(bad),
        (error: Error) => error.message.includes(`"${bad}"`),
      );
    });
  }
});
