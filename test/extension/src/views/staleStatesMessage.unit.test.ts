import assert from 'node:assert/strict';
import { staleStatesMessage } from '../../../../extension/src/views/staleStatesMessage';

const url = 'http://127.0.0.1:7878';

describe('staleStatesMessage (unit)', () => {
  it('says the states may be out of date, and since when, while the stream is down', () => {
    const lostAt = new Date(2025, 0, 1, 14, 3, 9).getTime();
    const message = staleStatesMessage('unreachable', 3, url, lostAt);
    assert.match(
      message ?? '',
      /^Not connected to the broker at http:\/\/127\.0\.0\.1:7878 since /,
    );
    assert.ok(message?.includes(new Date(lostAt).toLocaleTimeString()));
    assert.match(message ?? '', /out of date/);
    assert.match(staleStatesMessage('connecting', 3, url, lostAt) ?? '', /Reconnecting/);
  });

  it('asks to sign in again when the broker refuses the token', () => {
    assert.match(staleStatesMessage('unauthorized', 1, url, undefined) ?? '', /Sign in/);
  });

  it('says nothing while connected, before the first connection, or with no agent to mislead', () => {
    assert.equal(staleStatesMessage('connected', 3, url, undefined), undefined);
    assert.equal(staleStatesMessage('idle', 3, url, undefined), undefined);
    assert.equal(staleStatesMessage('unreachable', 0, url, 5), undefined);
  });
});
