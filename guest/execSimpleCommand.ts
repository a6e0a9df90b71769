/**
 * dash's reserved words and builtins. `exec` cannot run them, or would run another program of the
 * same name instead (/bin/echo treats backslashes unlike dash's echo), so they keep their shell.
 */
const SHELL_OWN_WORDS = new Set(
  [
    '! { } case do done elif else esac fi for if in then until while',
    '. : [ alias bg break cd chdir command continue echo eval exec exit export false fg getopts',
    'hash jobs kill local printf pwd read readonly return set shift test times trap true type',
    'ulimit umask unalias unset wait',
  ]
    .join(' ')
    .split(' '),
);

/** A first word that names a program: plain characters, or one single-quoted string. */
const FIRST_WORD = /^[ \t]*(?:([\w./+@%:,-]+)|'([^']*)')(?=[ \t]|$)/;

/**
 * `command` as a script for `sh -c` that replaces the shell with the program when `command` is one
 * simple command naming a program (words, quotes, expansions, redirections), e.g. what
 * `agentvm exec ID -- sh -c '...'` sends. dash (Debian's sh) forks even for a script's last
 * command, so a program killed by a signal would otherwise be reported as the shell's exit code
 * 128+n, which no one can tell from `exit 137`. Anything the check below is not sure of (lists,
 * pipelines, `&`, subshells, command substitutions, assignments, builtins) is returned unchanged.
 */
export function execSimpleCommand(command: string): string {
  const first = FIRST_WORD.exec(command);
  if (!first || !isOneSimpleCommand(command)) return command;

  const name = first[1] ?? first[2];
  if (name === '' || SHELL_OWN_WORDS.has(name)) return command;

  return `exec ${command}`;
}

/**
 * Whether `command` has no control operator, subshell, command substitution or line break outside
 * quotes, and no command substitution inside double quotes (whose insides are not parsed here).
 */
function isOneSimpleCommand(command: string): boolean {
  let quote: "'" | '"' | null = null;
  for (let index = 0; index < command.length; index++) {
    const char = command[index];
    const next = command[index + 1];
    if (quote === "'") {
      if (char === "'") quote = null;
      continue;
    }

    if (quote === '"') {
      if (char === '"') quote = null;
      else if (char === '`' || (char === '$' && next === '(')) return false;
      else if (char === '\\') index++;
      continue;
    }

    if (char === "'" || char === '"') quote = char;
    else if (char === '\\' && next !== '\n') index++;
    else if (';|()`\n\\#'.includes(char) || (char === '$' && next === '(')) return false;
    // `>&2` and `<&0` duplicate a descriptor; any other `&` runs something in the background.
    else if (char === '&' && command[index - 1] !== '>' && command[index - 1] !== '<') return false;
  }

  return quote === null;
}
