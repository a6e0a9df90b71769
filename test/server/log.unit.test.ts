import assert from 'node:assert/strict';
import { createLogger } from '../../server/log';

describe('the broker log (unit)', () => {
  const lines = (pretty: boolean) => {
    const written: string[] = [];
    const logger = createLogger({ pretty, level: 'debug', write: (line) => written.push(line) });
    // A guest's log line as the broker passes it on: it tries to retitle the operator's terminal.
    logger.debug('guest.log', { message: 'hi\u001b]0;pwned\u0007 there' });
    return written;
  };

  it('shows terminal escapes from guest text in its readable format instead of obeying them', () => {
    const [line] = lines(true);
    assert.doesNotMatch(line, /[\u001b\u0007]/);
    assert.match(line, /guest\.log message=hi.*\]0;pwned.* there/);
  });

  it('keeps the exact text in its JSON format, where the escapes are JSON-escaped', () => {
    const [line] = lines(false);
    assert.equal(JSON.parse(line).message, 'hi\u001b]0;pwned\u0007 there');
  });
});
