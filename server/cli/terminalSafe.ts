/**
 * Terminal control characters other than newline and tab: the C0 set (ESC, BEL, CR, backspace…),
 * DEL and the C1 set (U+0080–U+009F, which some terminals also obey).
 */
const controlCharacterClass = '[\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]';

/**
 * Characters with no glyph of their own that reorder or hide the text around them:
 * - the bidirectional marks, embeddings, overrides and isolates (U+061C, U+200E, U+200F,
 *   U+202A–U+202E, U+2066–U+2069), which can make a line read other than it is, e.g. a comment
 *   that looks closed, or a file name that reads backwards;
 * - invisible format characters that can hide text or split a word unseen: soft hyphen, Mongolian
 *   vowel separator, zero-width space, word joiner and invisible operators (U+2060–U+2064), the
 *   deprecated format characters (U+206A–U+206F), the byte order mark, interlinear annotation
 *   (U+FFF9–U+FFFB), line and paragraph separators (U+2028, U+2029), and the tag characters
 *   (U+E0001, U+E0020–U+E007F, written here as their UTF-16 pairs), which can carry a whole
 *   invisible sentence.
 * Zero-width joiner and non-joiner (U+200C, U+200D) stay: emoji sequences and several scripts
 * need them, and they neither reorder nor hide text.
 */
const invisibleFormatPattern =
  '[\\u00ad\\u061c\\u180e\\u200b\\u200e\\u200f\\u2028-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ufeff\\ufff9-\\ufffb]|\\udb40[\\udc01\\udc20-\\udc7f]';

/** What {@link terminalSafe} shows; a CR directly before a newline is matched with it (CRLF). */
const unsafeCharacters = new RegExp(
  `\\r\\n|${controlCharacterClass}|${invisibleFormatPattern}`,
  'g',
);

/**
 * What JSON output escapes beyond JSON.stringify (which escapes C0 controls only): DEL, the C1
 * controls and the invisible format characters.
 */
const jsonUnsafeCharacters = new RegExp(`[\\u007f-\\u009f]|${invisibleFormatPattern}`, 'g');

/**
 * `text` made safe to print on a terminal: every control character that could move the cursor,
 * erase a line, set the window title or write the clipboard, and every invisible character that
 * could reorder or hide text, is shown instead of obeyed, so nothing an agent or guest wrote can
 * hide or forge what the user reads. C0 controls and DEL are shown in caret notation (ESC as
 * `^[`, CR as `^M`, DEL as `^?`), C1 controls as `\x9b`, the invisible format characters as
 * `\u202e` (a tag character as `\u{e0041}`); a CRLF line end becomes a plain newline (it shows
 * the same). Newline and tab are kept.
 */
export function terminalSafe(text: string): string {
  return text.replace(unsafeCharacters, (character) => {
    if (character === '\r\n') return '\n';

    const code = character.codePointAt(0)!;
    if (code === 0x7f) return '^?';
    if (code < 0x20) return '^' + String.fromCharCode(code + 0x40);
    if (code <= 0x9f) return '\\x' + code.toString(16);
    if (code > 0xffff) return `\\u{${code.toString(16)}}`;

    return '\\u' + code.toString(16).padStart(4, '0');
  });
}

/**
 * JSON text (JSON.stringify's output) with DEL, the C1 controls and the invisible format
 * characters written as `\u` escapes too, so that it is safe on a terminal and parses back to the
 * same value.
 */
export function escapeJsonText(json: string): string {
  // A tag character is two UTF-16 code units; JSON writes each as its own escape.
  return json.replace(jsonUnsafeCharacters, (match) => {
    let escaped = '';
    for (let index = 0; index < match.length; index++)
      escaped += '\\u' + match.charCodeAt(index).toString(16).padStart(4, '0');
    return escaped;
  });
}
