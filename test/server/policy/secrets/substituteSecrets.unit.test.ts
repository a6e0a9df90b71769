import assert from 'node:assert/strict';
import { profileSchema } from '../../../../protocol/api';
import type { ProfileSecret } from '../../../../protocol/policy';
import { resolveSecrets } from '../../../../server/policy/secrets/SecretBindings';
import { substituteSecrets } from '../../../../server/policy/secrets/substituteSecrets';

const tlsTarget = { host: 'api.example.com', port: 443, tls: true };

function bind(secret: Partial<ProfileSecret> = {}, value = 'the-real-value') {
  const [binding] = resolveSecrets(
    { K: { source: { env: 'V' }, hosts: ['api.example.com'], ...secret } },
    { env: { V: value } },
  );
  return binding;
}

describe('substituteSecrets (unit)', () => {
  it('swaps the placeholder in Authorization for a bound host over TLS', () => {
    const binding = bind();

    const result = substituteSecrets(
      { authorization: `Bearer ${binding.placeholder}` },
      tlsTarget,
      [binding],
    );

    assert.equal(result.headers.authorization, 'Bearer the-real-value');
    assert.deepEqual([result.injected, result.withheld], [['K'], []]);
  });

  it('withholds the value from a host the secret is not bound to, saying why', () => {
    const binding = bind();
    const headers = { authorization: `Bearer ${binding.placeholder}` };

    const result = substituteSecrets(headers, { ...tlsTarget, host: 'evil.example.net' }, [
      binding,
    ]);

    assert.equal(result.headers.authorization, headers.authorization);
    assert.deepEqual(result.withheld, ['K']);
    assert.match(
      result.withheldReasons.K,
      /evil\.example\.net:443 is not a host this secret is bound to/,
    );
  });

  it('leaves the placeholder in Host, Origin, Referer, Cookie and custom headers unless named', () => {
    const binding = bind();
    const placeholder = binding.placeholder;
    const headers = {
      host: placeholder,
      origin: `http://${placeholder}`,
      referer: `https://x.example/${placeholder}`,
      cookie: `session=${placeholder}`,
      'x-api-key': placeholder,
    };

    const result = substituteSecrets(headers, tlsTarget, [binding]);

    assert.deepEqual(result.headers, headers);
    assert.deepEqual(result.injected, []);
    for (const name of Object.keys(headers)) {
      assert.match(
        result.withheldReasons.K,
        new RegExp(`the ${name} header, which the binding does not name`),
      );
    }
  });

  it('swaps into the headers a binding names, and then not into Authorization', () => {
    const binding = bind({ headers: ['X-Api-Key'] });

    const result = substituteSecrets(
      { 'X-Api-Key': binding.placeholder, authorization: `Bearer ${binding.placeholder}` },
      tlsTarget,
      [binding],
    );

    assert.equal(result.headers['X-Api-Key'], 'the-real-value');
    assert.equal(result.headers.authorization, `Bearer ${binding.placeholder}`);
    assert.deepEqual([result.injected, result.withheld], [['K'], ['K']]);
  });

  it('withholds the value over plain HTTP unless the binding allows it', () => {
    const strict = bind();
    const lenient = bind({ allowPlainHttp: true });
    const plainTarget = { host: 'api.example.com', port: 80, tls: false };

    const refused = substituteSecrets(
      { authorization: `Bearer ${strict.placeholder}` },
      plainTarget,
      [strict],
    );
    const allowed = substituteSecrets(
      { authorization: `Bearer ${lenient.placeholder}` },
      plainTarget,
      [lenient],
    );

    assert.equal(refused.headers.authorization, `Bearer ${strict.placeholder}`);
    assert.match(refused.withheldReasons.K, /plain HTTP to api\.example\.com:80/);
    assert.equal(allowed.headers.authorization, 'Bearer the-real-value');
  });

  it('swaps a placeholder inside Basic credentials, as git sends them', () => {
    const binding = bind({}, 'pat-value');
    const basic =
      'Basic ' + Buffer.from(`x-access-token:${binding.placeholder}`).toString('base64');

    const { headers } = substituteSecrets({ authorization: basic }, tlsTarget, [binding]);
    const decoded = Buffer.from(String(headers.authorization).slice(6), 'base64').toString();

    assert.equal(decoded, 'x-access-token:pat-value');
  });

  it('reports each Basic credential it re-encoded with what the guest sent, for the answer to be scrubbed back', () => {
    const binding = bind({}, 'pat-value');
    const sent = Buffer.from(`x:${binding.placeholder}`).toString('base64');

    const result = substituteSecrets({ authorization: `basic ${sent}` }, tlsTarget, [binding]);

    const produced = Buffer.from('x:pat-value').toString('base64');
    assert.equal(result.headers.authorization, `basic ${produced}`);
    assert.deepEqual(result.encodedForms, [{ value: produced, placeholder: sent }]);
  });

  it('reports no encoded form when nothing was put in', () => {
    const binding = bind();
    const sent = 'Basic ' + Buffer.from(`x:${binding.placeholder}`).toString('base64');

    const elsewhere = substituteSecrets(
      { authorization: sent },
      { ...tlsTarget, host: 'b.example' },
      [binding],
    );
    const bearer = substituteSecrets(
      { authorization: `Bearer ${binding.placeholder}` },
      tlsTarget,
      [binding],
    );

    assert.deepEqual([elsewhere.encodedForms, bearer.encodedForms], [[], []]);
  });

  it('reports a placeholder in the URL as withheld and never rewrites the URL', () => {
    const binding = bind();

    const result = substituteSecrets({}, tlsTarget, [binding], `/search?q=${binding.placeholder}`);

    assert.deepEqual(result.withheld, ['K']);
    assert.match(result.withheldReasons.K, /in the URL/);
  });

  it('refuses a profile whose secret names Host or a header that is not a header name', () => {
    const profile = (headers: string[]) =>
      profileSchema.safeParse({
        name: 'p',
        command: 'true',
        secrets: { K: { source: { env: 'V' }, hosts: ['a.example'], headers } },
      });

    const host = profile(['Host']);
    const junk = profile(['x api key']);

    assert.equal(profile(['X-Api-Key']).success, true);
    assert.equal(host.success, false);
    assert.match(host.error!.issues[0].message, /cannot be sent in host/);
    assert.deepEqual(host.error!.issues[0].path, ['secrets', 'K', 'headers', 0]);
    assert.match(junk.error!.issues[0].message, /an HTTP token such as X-Api-Key/);
  });
});
