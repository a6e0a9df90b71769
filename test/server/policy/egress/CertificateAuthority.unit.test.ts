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

  it('refuses a new host at once when maxQueuedForges already wait, and forges again once the queue moved (regression: the queue had no end)', async () => {
    const ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'queue'), 'queue CA', {
      maxConcurrentForges: 1,
      maxQueuedForges: 2,
    });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const issue = ca.issueCertificate.bind(ca);
    ca.issueCertificate = async (host: string) => {
      await gate;
      return issue(host);
    };

    const admitted = ['q0', 'q1', 'q2'].map((name) => ca.secureContextFor(`${name}.example.test`));
    await assert.rejects(ca.secureContextFor('q3.example.test'), /maxQueuedForges/);
    // The refused host is not cached as a failure for good.
    assert.equal(ca.cachedHostCount, 3);

    release();
    assert.equal((await Promise.all(admitted)).length, 3);
    assert.ok(await ca.secureContextFor('q3.example.test'));
  });
});
