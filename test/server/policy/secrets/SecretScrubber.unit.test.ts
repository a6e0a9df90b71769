import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import {
  scrubHeaders,
  SecretScrubber,
  type ScrubbedSecret,
} from '../../../../server/policy/secrets/SecretScrubber';

const secret: ScrubbedSecret = { value: 'REAL-VALUE-42', placeholder: 'agentvm-secret-K-ph' };

async function scrub(chunks: string[], secrets: ScrubbedSecret[] = [secret]): Promise<string> {
  return text(
    Readable.from(chunks.map((chunk) => Buffer.from(chunk))).pipe(new SecretScrubber(secrets)),
  );
}

describe('SecretScrubber (unit)', () => {
  it('replaces a value that arrives in one chunk', async () => {
    assert.equal(
      await scrub(['a REAL-VALUE-42 b REAL-VALUE-42']),
      `a ${secret.placeholder} b ${secret.placeholder}`,
    );
  });

  it('replaces a value split across chunks at every possible point', async () => {
    const body = 'before REAL-VALUE-42 after';
    for (let cut = 1; cut < body.length; cut += 1) {
      assert.equal(
        await scrub([body.slice(0, cut), body.slice(cut)]),
        `before ${secret.placeholder} after`,
        `cut at ${cut}`,
      );
    }
  });

  it('replaces a value delivered one byte per chunk', async () => {
    assert.equal(await scrub([...'xREAL-VALUE-42y']), `x${secret.placeholder}y`);
  });

  it('keeps text that only starts like a value, including at the very end', async () => {
    assert.equal(
      await scrub(['REAL-VAL', 'UE-4', '3 and REAL-VALUE-4']),
      'REAL-VALUE-43 and REAL-VALUE-4',
    );
  });

  it('replaces several secrets, the longer first when one contains the other', async () => {
    const short = { value: 'VALUE', placeholder: '<short>' };

    assert.equal(
      await scrub(['VALUE REAL-VA', 'LUE-42'], [short, secret]),
      `<short> ${secret.placeholder}`,
    );
  });

  it('holds back no more than the longest value less one byte', async () => {
    const scrubber = new SecretScrubber([secret]);
    const pushed: Buffer[] = [];
    scrubber.on('data', (chunk: Buffer) => pushed.push(chunk));

    scrubber.write(Buffer.from('x'.repeat(100)));
    await new Promise((resolve) => setImmediate(resolve));

    assert.equal(Buffer.concat(pushed).length, 100 - (secret.value.length - 1));
  });

  it('replaces a value in the latin1 spelling Node sends it in a request header', async () => {
    const accented = { value: 'clé-RÉELLE', placeholder: 'agentvm-secret-A-ph' };
    const echoedHeader = Buffer.from(`authorization: Bearer ${accented.value}`, 'latin1');
    const scrubber = new SecretScrubber([accented]);

    const out = await text(Readable.from([echoedHeader]).pipe(scrubber));

    assert.equal(out, `authorization: Bearer ${accented.placeholder}`);
  });

  it('drops a response header whose name holds a value, whatever its case', () => {
    assert.deepEqual(
      scrubHeaders(
        { 'x-real-value-42': 'a', 'x-prefix-real-value-42-suffix': 'b', 'x-other': 'c' },
        [secret],
      ),
      { 'x-other': 'c' },
    );
  });

  it('replaces values in header values and lists of them', () => {
    assert.deepEqual(
      scrubHeaders(
        { location: 'http://REAL-VALUE-42/dir/', 'set-cookie': ['a=1', 'b=REAL-VALUE-42'] },
        [secret],
      ),
      {
        location: `http://${secret.placeholder}/dir/`,
        'set-cookie': ['a=1', `b=${secret.placeholder}`],
      },
    );
  });
});
