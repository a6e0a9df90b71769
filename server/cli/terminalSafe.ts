/**
 * Terminal control characters other than newline and tab: the C0 set (ESC, BEL, CR, backspace…),
 * DEL and the C1 set (U+0080–U+009F, which some terminals also obey). A CR directly before a
 * newline is matched with it, so that CRLF line ends do not show as `^M`.
 */
const controlCharacters = /\r\n|[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * `text` made safe to print on a terminal: every control character that could move the cursor,
 * erase a line, set the window title or write the clipboard is shown instead of obeyed, so
 * nothing an agent or guest wrote can hide or forge what the user reads. C0 controls and DEL are
 * shown in caret notation (ESC as `^[`, CR as `^M`, DEL as `^?`), C1 controls as `\x9b`; a CRLF
 * line end becomes a plain newline (it shows the same). Newline and tab are kept.
 */
export function terminalSafe(text: string): string {
  return text.replace(controlCharacters, (character) => {
    if (character === '\r\n') return '\n';

    const code = character.charCodeAt(0);
    if (code === 0x7f) return '^?';
    if (code < 0x20) return '^' + String.fromCharCode(code + 0x40);

    return '\\x' + code.toString(16);
  });
}
