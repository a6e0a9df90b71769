import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CertificateAuthority } from '../../../../server/policy/egress/CertificateAuthority';

describe('CertificateAuthority (unit)', function () {
  let dir: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-ca-'));
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('keeps forged contexts for the most recently used hosts only (h14: many subdomains of a bound *.suffix)', async () => {
    const ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'lru'), 'lru CA', {
      maxCachedHosts: 3,
    });

    const first = await ca.secureContextFor('a.example.test');
    for (const host of ['b', 'c', 'a', 'd', 'e']) await ca.secureContextFor(`${host}.example.test`);

    assert.equal(ca.cachedHostCount, 3);
    // `a` was used again after b and c, so it is still cached; b and c were forgotten.
    assert.equal(await ca.secureContextFor('a.example.test'), first);
    assert.equal(ca.cachedHostCount, 3);
  });

  it('runs at most maxConcurrentForges openssl forges at once (h14)', async () => {
    const ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'slots'), 'slots CA', {
      maxConcurrentForges: 2,
    });
    let running = 0;
    let mostAtOnce = 0;
    const issue = ca.issueCertificate.bind(ca);
    ca.issueCertificate = async (host: string) => {
      running++;
      mostAtOnce = Math.max(mostAtOnce, running);
      try {
        return await issue(host);
      } finally {
        running--;
      }
    };

    const hosts = Array.from({ length: 6 }, (_, index) => `h${index}.example.test`);
    const contexts = await Promise.all(hosts.map((host) => ca.secureContextFor(host)));

    assert.equal(contexts.length, 6);
    assert.equal(mostAtOnce, 2);
    assert.equal(ca.cachedHostCount, 6);
  });
});
