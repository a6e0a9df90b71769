import assert from 'node:assert/strict';
import { LineEditor, toTerminalText } from '../../../../extension/src/review/LineEditor';

describe('LineEditor (unit)', () => {
  it('echoes typed characters and completes a line on Enter', () => {
    const editor = new LineEditor();
    const result = editor.input('ls -la\r');
    assert.deepEqual(result.lines, ['ls -la']);
    assert.equal(result.echo, 'ls -la\r\n');
    assert.equal(editor.current, '');
  });

  it('keeps a partial line across chunks', () => {
    const editor = new LineEditor();
    assert.deepEqual(editor.input('git st').lines, []);
    assert.deepEqual(editor.input('atus\r').lines, ['git status']);
  });

  it('erases with backspace and ignores backspace on an empty line', () => {
    const editor = new LineEditor();
    const result = editor.input('\x7fabc\x7f\x7fz\r');
    assert.deepEqual(result.lines, ['az']);
    assert.equal(result.echo, 'abc\b \b\b \bz\r\n');
  });

  it('drops the line on Ctrl+C', () => {
    const editor = new LineEditor();
    const result = editor.input('rm -rf x\x03');
    assert.equal(result.interrupted, true);
    assert.deepEqual(result.lines, []);
    assert.equal(editor.current, '');
  });

  it('ignores cursor-key escape sequences instead of echoing them', () => {
    const editor = new LineEditor();
    const result = editor.input('a\x1b[Ab\x1b[1;5Cc\r');
    assert.deepEqual(result.lines, ['abc']);
  });

  it('turns several lines pasted at once into several commands', () => {
    assert.deepEqual(new LineEditor().input('one\r\ntwo\r').lines, ['one', 'two']);
  });

  it('converts newlines for the terminal', () => {
    assert.equal(toTerminalText('a\nb\r\nc'), 'a\r\nb\r\nc');
  });
});
