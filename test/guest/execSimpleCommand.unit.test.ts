import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { execSimpleCommand } from '../../guest/execSimpleCommand';

describe('execSimpleCommand (unit)', () => {
  it('lets the shell become the program of one simple command', () => {
    for (const command of [
      'git log --oneline',
      "sh -c 'kill -9 $$'",
      '\'my tool\' --flag="a;b|c" >out.txt 2>&1',
      'ls *.ts $HOME ${PWD}',
      './node_modules/.bin/mocha "$1"',
    ]) {
      assert.equal(execSimpleCommand(command), `exec ${command}`, command);
    }
  });

  it('leaves lists, pipelines, background jobs, subshells, substitutions, assignments and builtins to the shell', () => {
    for (const command of [
      'make; echo done',
      'npm test && git commit -am x',
      'false || true',
      'ls | head',
      'sleep 10 &',
      'cmd &>/dev/null',
      '(cd src && make)',
      'echo $(date)',
      'tool "$(date)"',
      'tool `date`',
      'a\nb',
      'A=1 tool',
      'cd src',
      'echo hi',
      'kill -9 $$',
      'exit 137',
      '! tool',
      'if true; then tool; fi',
      'tool # comment; with a semicolon',
      "tool 'unterminated",
      '',
      '   ',
    ]) {
      assert.equal(execSimpleCommand(command), command, JSON.stringify(command));
    }
  });

  it('runs a command it changes with the same output and exit code as before', () => {
    const run = (script: string) => {
      const { stdout, stderr, status } = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
      return { stdout, stderr, status };
    };
    for (const command of [
      "sh -c 'echo out; echo err >&2; exit 3'",
      "env printf '%s\\n' 'a b' c",
    ]) {
      assert.deepEqual(run(execSimpleCommand(command)), run(command), command);
    }
  });
});
