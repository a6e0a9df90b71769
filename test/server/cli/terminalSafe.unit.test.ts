import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import type { AgentEvent } from '../../../protocol/api';
import { registerAgentCommands } from '../../../server/cli/commands/agents';
import { describeNextStep } from '../../../server/cli/commands/nextStep';
import { formatAgentRow } from '../../../server/cli/commands/formatAgentRow';
import { registerResultCommands } from '../../../server/cli/commands/result';
import { formatEvent } from '../../../server/cli/follow';
import { terminalSafe } from '../../../server/cli/terminalSafe';
import { agentConsolePath, agentDir, storePath } from '../../../server/config/paths';
import { Store } from '../../../server/store/Store';
import { anAgent } from '../../helpers/anAgent';
import { anAgentRecord } from '../../helpers/anAgentRecord';
import { createImagelessBroker } from '../../helpers/imagelessBroker';

/** What a red-team agent printed: OSC 0 (window title), OSC 52 (clipboard), a line erase + CR. */
const setTitle = '\x1b]0;pwned title\x07';
const writeClipboard = '\x1b]52;c;cm0gLXJmIH4K\x07';
const forgedDone = '\x1b[2K\r[00:00.1] state    done';
/** The same line erase as a C1 CSI (U+009B), which JSON.stringify does not escape. */
const c1Erase = '\u009b2K';

/** Any character a terminal would obey rather than show, newline and tab aside. */
const controlCharacter = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

/**
 * A file name that reads `reportexe.txt` on a terminal (U+202E, right-to-left override), and a
 * word in tag characters, which no terminal shows ("hi").
 */
const reversedName = 'report\u202etxt.exe';
const hiddenWord = '\u{e0068}\u{e0069}';
/** Trojan Source: the isolates make `// admin only` read as a comment before the check. */
const trojanLine = 'if (role != "user\u202e \u2066// admin only\u2069 \u2066") {';

/** Any character without a glyph that reorders or hides text (joiners aside). */
const invisibleCharacter =
  /[\u00ad\u061c\u180e\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\u{e0001}\u{e0020}-\u{e007f}]/u;

describe('terminalSafe (unit)', () => {
  it('shows ESC, BEL, CR, backspace and DEL in caret notation and C1 controls as \\x hex', () => {
    assert.equal(terminalSafe(setTitle), '^[]0;pwned title^G');
    assert.equal(terminalSafe(forgedDone), '^[[2K^M[00:00.1] state    done');
    assert.equal(terminalSafe('a\bb\x7fc\x00'), 'a^Hb^?c^@');
    assert.equal(terminalSafe(`${c1Erase}x\u0085`), '\\x9b2Kx\\x85');
  });

  it('keeps newline, tab and printable text (accents, CJK, emoji) and shows CRLF as a newline', () => {
    const text = 'col\tcol\nnaïve 漢字 🙂 ~ \u00a0end';
    assert.equal(terminalSafe(text), text);
    assert.equal(terminalSafe('one\r\ntwo\r\n'), 'one\ntwo\n');
    assert.equal(terminalSafe('\r\r\n'), '^M\n');
  });

  it('shows bidirectional overrides and isolates, and invisible format characters, as \\u escapes (regression: printed as they are, so a line read other than it was)', () => {
    assert.equal(terminalSafe(reversedName), 'report\\u202etxt.exe');
    assert.equal(
      terminalSafe(trojanLine),
      'if (role != "user\\u202e \\u2066// admin only\\u2069 \\u2066") {',
    );
    assert.equal(terminalSafe(`say${hiddenWord}`), 'say\\u{e0068}\\u{e0069}');
    const everyOther = [0x202a, 0x202b, 0x202c, 0x202d, 0x2067, 0x2068, 0x061c, 0x200e, 0x200f];
    for (const code of [...everyOther, 0x200b, 0x2060, 0xfeff, 0x00ad, 0x2028, 0xe0001]) {
      const character = String.fromCodePoint(code);
      assert.doesNotMatch(terminalSafe(`a${character}b`), invisibleCharacter, code.toString(16));
    }
  });

  it('keeps the joiners emoji and scripts need, and right-to-left letters', () => {
    const text = 'family 👨\u200d👩\u200d👧, می\u200cخواهم, שלום, مرحبا';
    assert.equal(terminalSafe(text), text);
  });

  it('is idempotent: what it returns has nothing left to show', () => {
    const once = terminalSafe(
      `${setTitle}${writeClipboard}${forgedDone}${c1Erase}${trojanLine}${hiddenWord}`,
    );
    assert.doesNotMatch(once, controlCharacter);
    assert.doesNotMatch(once, invisibleCharacter);
    assert.equal(terminalSafe(once), once);
  });
});

describe('timeline and list formatting with terminal escapes (unit)', () => {
  const event = (kind: AgentEvent['kind'], message: string): AgentEvent => ({
    id: 1,
    agentId: 'a1',
    at: 1_500,
    kind,
    message,
    data: {},
  });

  it('shows the escapes of output lines instead of obeying them (regression: OSC 0, OSC 52, ESC[2K CR)', () => {
    const text = formatEvent(event('output', `${setTitle}${writeClipboard}ok\n${forgedDone}\n`), 0);

    assert.doesNotMatch(text, controlCharacter);
    assert.equal(
      text,
      '[00:01.5]   │ ^[]0;pwned title^G^[]52;c;cm0gLXJmIH4K^Gok\n[00:01.5]   │ ^[[2K^M[00:00.1] state    done',
    );
  });

  it('indents the further lines of a progress message so they cannot pass for timeline entries', () => {
    const text = formatEvent(event('progress', 'tests pass\n[00:00.1] state    done'), 0);

    assert.equal(text, '[00:01.5] progress tests pass\n                   [00:00.1] state    done');
  });

  it('shows the escapes of titles, review questions and failure reasons in `ls` rows and next steps', () => {
    const reviewing = anAgent({
      title: `Fix it${setTitle}`,
      state: 'awaiting_review',
      review: { requestId: 'r1', message: `ok?${forgedDone}`, requestedAt: 1_000 },
    });
    const failed = anAgent({ state: 'failed', stateReason: `${writeClipboard}${forgedDone}` });
    const lines = [...formatAgentRow(reviewing), ...formatAgentRow(failed)];

    assert.doesNotMatch(lines.join('\n'), controlCharacter);
    assert.match(lines[0], /Fix it\^\[\]0;pwned title\^G$/);
    assert.match(lines[1], /review: ok\?\^\[\[2K\^M\[00:00\.1\] state {4}done$/);
    assert.match(lines[3], /failed: \^\[\]52;c;cm0gLXJmIH4K\^G\^\[\[2K\^M/);

    const stderr = capture(() => {
      describeNextStep(reviewing);
      describeNextStep(failed);
    }).stderr;
    assert.doesNotMatch(stderr, controlCharacter);
    assert.match(stderr, /asks for review: ok\?\^\[\[2K\^M\[00:00\.1\]/);
  });
});

describe('agentvm logs, ls and diff with an agent that prints terminal escapes (unit)', function () {
  this.timeout(30_000);
  const id = 'escapes1';
  let dataDir: string;
  let stop: () => Promise<void>;
  let url: string;
  let token: string;
  const patch = `Subject: [PATCH] ${setTitle}fix\n\n+${forgedDone}\r\n+${trojanLine}\n`;

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-escapes-'));
    const store = new Store(storePath(dataDir));
    try {
      store.insertAgent(
        anAgentRecord({
          id,
          title: `title${setTitle} ${reversedName}`,
          owner: os.userInfo().username,
          state: 'done',
          stateReason: null,
          lastProgress: `progress${writeClipboard}`,
          result: { headCommit: 'b'.repeat(40), commits: [], exitCode: 0 },
          endedAt: Date.now(),
        }),
      );
      store.appendEvent(id, {
        kind: 'output',
        message: `${setTitle}${writeClipboard}hello\n${forgedDone}\n`,
        data: { stream: 'stdout' },
      });
      store.appendEvent(id, {
        kind: 'progress',
        message: `step${c1Erase}\n[00:00.1] state    done`,
      });
      store.appendEvent(id, { kind: 'progress', message: `renamed ${reversedName}${hiddenWord}` });
      store.appendEvent(id, { kind: 'state', message: 'done' });
    } finally {
      store.close();
    }
    fs.mkdirSync(agentDir(id, dataDir), { recursive: true });
    fs.writeFileSync(agentConsolePath(id, dataDir), `[    0.1] boot${setTitle}\r\nok\r\n`);
    fs.writeFileSync(path.join(agentDir(id, dataDir), 'result.patch'), patch);

    const broker = createImagelessBroker(dataDir);
    ({ url, token } = await broker.start());
    stop = () => broker.stop();
  });

  after(async () => {
    await stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  async function run(args: string[], stdoutIsTTY = false) {
    const saved = { url: process.env.AGENTVM_URL, token: process.env.AGENTVM_TOKEN };
    const savedTTY = process.stdout.isTTY;
    process.env.AGENTVM_URL = url;
    process.env.AGENTVM_TOKEN = token;
    process.stdout.isTTY = stdoutIsTTY;
    try {
      return await captureAsync(async () => {
        const program = new Command('agentvm').exitOverride();
        registerAgentCommands(program);
        registerResultCommands(program);
        await program.parseAsync(['node', 'agentvm', ...args]);
      });
    } finally {
      process.stdout.isTTY = savedTTY;
      for (const [key, value] of Object.entries({
        AGENTVM_URL: saved.url,
        AGENTVM_TOKEN: saved.token,
      })) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  }

  it('`logs` shows every escape the agent printed, and no forged line starts a row', async () => {
    const { stdout, stderr } = await run(['logs', id]);

    assert.equal(stderr, '');
    assert.doesNotMatch(stdout, controlCharacter);
    assert.match(stdout, /│ \^\[\]0;pwned title\^G\^\[\]52;c;cm0gLXJmIH4K\^Ghello$/m);
    assert.match(stdout, /│ \^\[\[2K\^M\[00:00\.1\] state {4}done$/m);
    assert.match(stdout, /progress step\\x9b2K$/m);
    assert.doesNotMatch(stdout, invisibleCharacter);
    assert.match(stdout, /progress renamed report\\u202etxt\.exe\\u\{e0068\}\\u\{e0069\}$/m);
    const stateRows = stdout.split('\n').filter((line) => /^\[\d\d:\d\d\.\d\] state /.test(line));
    assert.deepEqual(stateRows, ['[00:00.0] state    done'], stdout);
  });

  it('`logs --json` keeps the messages as stored, with DEL, C1 controls and invisible format characters escaped as JSON', async () => {
    const { stdout } = await run(['logs', id, '--json']);

    assert.doesNotMatch(stdout, controlCharacter);
    assert.match(stdout, /\\u009b2K/);
    const events = JSON.parse(stdout) as AgentEvent[];
    assert.equal(events[0].message, `${setTitle}${writeClipboard}hello\n${forgedDone}\n`);
    assert.equal(events[1].message, `step${c1Erase}\n[00:00.1] state    done`);
    assert.doesNotMatch(stdout, invisibleCharacter);
    assert.match(stdout, /report\\u202etxt\.exe\\udb40\\udc68\\udb40\\udc69/);
    assert.equal(events[2].message, `renamed ${reversedName}${hiddenWord}`);
  });

  it('`logs --console` shows the console escapes and prints CRLF line ends as newlines', async () => {
    const { stdout } = await run(['logs', id, '--console']);

    assert.equal(stdout, '[    0.1] boot^[]0;pwned title^G\nok\n');
  });

  it('`ls` shows the escapes of the title', async () => {
    const { stdout } = await run(['ls']);

    assert.doesNotMatch(stdout, controlCharacter);
    assert.doesNotMatch(stdout, invisibleCharacter);
    assert.match(stdout, /title\^\[\]0;pwned title\^G report\\u202etxt\.exe/);
  });

  it('`diff` shows the escapes on a terminal and writes the exact patch to a pipe', async () => {
    const onTerminal = await run(['diff', id], true);
    const piped = await run(['diff', id], false);

    assert.doesNotMatch(onTerminal.stdout, controlCharacter);
    assert.match(onTerminal.stdout, /^\+\^\[\[2K\^M\[00:00\.1\] state {4}done$/m);
    assert.doesNotMatch(onTerminal.stdout, invisibleCharacter);
    assert.match(onTerminal.stdout, /^\+if \(role != "user\\u202e \\u2066\/\/ admin only/m);
    assert.equal(piped.stdout, patch);
  });
});

interface Captured {
  stdout: string;
  stderr: string;
}

function capture(work: () => void): Captured {
  const result = { stdout: '', stderr: '' };
  const restore = redirect(result);
  try {
    work();
  } finally {
    restore();
  }
  return result;
}

async function captureAsync(work: () => Promise<void>): Promise<Captured> {
  const result = { stdout: '', stderr: '' };
  const restore = redirect(result);
  try {
    await work();
  } finally {
    restore();
  }
  return result;
}

/** Sends what this process writes to stdout and stderr into `into`; returns the undo. */
function redirect(into: Captured): () => void {
  const saved = { out: process.stdout.write, err: process.stderr.write };
  process.stdout.write = ((chunk: string) => ((into.stdout += chunk), true)) as typeof saved.out;
  process.stderr.write = ((chunk: string) => ((into.stderr += chunk), true)) as typeof saved.err;
  return () => {
    process.stdout.write = saved.out;
    process.stderr.write = saved.err;
  };
}
