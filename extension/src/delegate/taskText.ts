/** An editor selection handed to an agent as context. */
export interface SelectionContext {
  /** Path relative to the repository root, with forward slashes. */
  relativePath: string;
  /** 1-based, inclusive. */
  startLine: number;
  endLine: number;
  languageId: string;
  text: string;
}

/**
 * The task text for a selection: the user's instruction, then where the code is and the code
 * itself, fenced with enough backticks that the selection cannot close the fence.
 */
export function selectionTaskText(instruction: string, selection: SelectionContext): string {
  const longestRun = Math.max(0, ...(selection.text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(Math.max(3, longestRun + 1));
  const lines =
    selection.startLine === selection.endLine
      ? `line ${selection.startLine}`
      : `lines ${selection.startLine}-${selection.endLine}`;
  return [
    instruction.trim(),
    '',
    `Context: ${selection.relativePath}, ${lines}:`,
    '',
    `${fence}${selection.languageId}`,
    selection.text.replace(/\n$/, ''),
    fence,
    '',
  ].join('\n');
}

/** A short title for the tree: the first line of the instruction, at most `maxLength` characters. */
export function taskTitle(text: string, maxLength = 72): string {
  const first = text.trim().split('\n')[0].trim() || 'Untitled task';
  return first.length <= maxLength ? first : `${first.slice(0, maxLength - 1)}…`;
}
