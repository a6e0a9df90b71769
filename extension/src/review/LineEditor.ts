/** What the terminal must do after a chunk of keyboard input. */
export interface LineEditResult {
  /** Text to write back so the user sees what they type. */
  echo: string;
  /** Lines completed with Enter, in order. */
  lines: string[];
  /** Ctrl+C was pressed: drop the current line. */
  interrupted: boolean;
}

/**
 * Minimal line editing for the review terminal: printable characters, backspace, Enter, Ctrl+C.
 * Cursor keys and other escape sequences are ignored rather than echoed as garbage.
 */
export class LineEditor {
  private buffer = '';

  get current(): string {
    return this.buffer;
  }

  input(data: string): LineEditResult {
    const result: LineEditResult = { echo: '', lines: [], interrupted: false };
    for (let i = 0; i < data.length; i++) {
      const char = data[i];
      if (char === '\r' || char === '\n') {
        result.lines.push(this.buffer);
        result.echo += '\r\n';
        this.buffer = '';
        if (char === '\r' && data[i + 1] === '\n') i++;
      } else if (char === '\x7f' || char === '\b') {
        if (this.buffer.length === 0) continue;

        this.buffer = [...this.buffer].slice(0, -1).join('');
        result.echo += '\b \b';
      } else if (char === '\x03') {
        this.buffer = '';
        result.interrupted = true;
        result.echo += '^C\r\n';
      } else if (char === '\x1b') {
        // Skip an escape sequence: ESC [ params final-byte.
        if (data[i + 1] === '[') {
          i += 2;
          while (i < data.length && !/[@-~]/.test(data[i])) i++;
        }
      } else if (char >= ' ') {
        this.buffer += char;
        result.echo += char;
      }
    }

    return result;
  }
}

/** Converts command output to terminal lines (`\n` → `\r\n`). */
export function toTerminalText(text: string): string {
  return text.replace(/\r?\n/g, '\r\n');
}
