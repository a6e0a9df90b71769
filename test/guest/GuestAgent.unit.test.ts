import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { GuestMessage } from '../../protocol/control';
import {
  changesResultSchema,
  execResultSchema,
  readdirResultSchema,
} from '../../protocol/guestResults';
import { bundleGuest, gitEnv, GuestHarness, makeRepo, makeTask } from './guestHarness';

describe('GuestAgent (unit)', function () {
  this.timeout(60_000);
  let bundleDir: string;
  let bundle: { agent: string; agentctl: string };
  let harness: GuestHarness;

  before(async () => {
    bundleDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-guest-bundle-'));
    bundle = await bundleGuest(bundleDir);
  });

  after(() => fs.rmSync(bundleDir, { recursive: true, force: true }));

  beforeEach(async () => {
    harness = await GuestHarness.start(bundle);
    await harness.waitFor((m) => m.type === 'ready');
  });

  afterEach(async () => {
    assert.deepEqual(harness.badLines, [], 'every guest line matches guestMessageSchema');
    await harness.stop();
  });

  it('says ready on connect, answers hello with ready, and reports clock skew on sync', async () => {
    const ready = await harness.waitFor((m) => m.type === 'ready');
    assert.equal(ready.type === 'ready' && ready.hasTask, false);

    const from = harness.messages.length;
    harness.send({ type: 'hello', lastSeq: 0 });
    await harness.waitFor((m) => m.type === 'ready', { from });

    harness.send({
      type: 'sync',
      timeMs: Date.now() + 60_000,
      entropy: Buffer.from('seed').toString('base64'),
    });
    const synced = await harness.waitFor((m) => m.type === 'synced');
    assert.ok(
      synced.type === 'synced' && synced.clockSkewMs > 50_000 && synced.clockSkewMs <= 60_000,
    );
  });

  it('runs a task through review to a result bundle that fetches into the original repository', async () => {
    const repo = makeRepo(harness.dir);
    const command = [
      'echo "title=$AGENTVM_TASK_TITLE id=$AGENTVM_AGENT_ID"',
      'cat "$AGENTVM_TASK_FILE"',
      'agentctl progress "editing hello.txt"',
      'echo changed > hello.txt && git commit -qam "Change hello"',
      'answer=$(agentctl review "Is this right?")',
      'echo "answer was: $answer"',
      'echo leftover > notes.txt',
      'agentctl done "finished"',
      'echo to-stderr >&2',
    ].join(' && ');
    harness.send({ type: 'task', task: makeTask(harness, repo, { command }) });

    const review = await harness.waitForEvent('review');
    assert.equal(review.message, 'Is this right?');
    const progress = await harness.waitForEvent('progress');
    assert.equal(progress.message, 'editing hello.txt');

    harness.send({ type: 'review-answer', requestId: review.requestId, message: 'looks good' });
    const result = await harness.waitForEvent('result');
    const exit = await harness.waitForEvent('exit');
    assert.deepEqual(exit, { kind: 'exit', code: 0, signal: null });
    assert.equal((await harness.waitForEvent('done')).message, 'finished');

    const stdout = harness
      .events()
      .flatMap(({ event }) =>
        event.kind === 'output' && event.stream === 'stdout' ? [event.text] : [],
      )
      .join('');
    assert.match(stdout, /title=The thing id=a-test/);
    assert.match(stdout, /Do the thing\.\nSecond line\./);
    assert.match(stdout, /answer was: looks good/);
    const stderr = harness
      .events()
      .find(({ event }) => event.kind === 'output' && event.stream === 'stderr');
    assert.ok(stderr?.event.kind === 'output' && stderr.event.text === 'to-stderr\n');

    const phases = harness
      .events()
      .flatMap(({ event }) => (event.kind === 'phase' ? [event.phase] : []));
    assert.deepEqual(phases, ['checkout', 'running', 'exporting']);
    assert.deepEqual(
      result.commits.map((c) => c.subject),
      ['Change hello', 'agentvm: changes left uncommitted by the agent'],
    );
    assert.match(result.patch, /^Subject: \[PATCH 1\/2\] Change hello/m);

    const bundleFile = path.join(harness.dir, 'result.bundle');
    fs.writeFileSync(bundleFile, Buffer.from(result.bundle, 'base64'));
    execFileSync('git', ['fetch', '-q', bundleFile, 'agentvm-result:from-agent'], {
      cwd: repo.repo,
      env: gitEnv(),
    });
    const show = (spec: string) =>
      execFileSync('git', ['show', spec], { cwd: repo.repo }).toString();
    assert.equal(show('from-agent:hello.txt'), 'changed\n');
    assert.equal(show('from-agent:notes.txt'), 'leftover\n');
    assert.equal(
      execFileSync('git', ['rev-parse', 'from-agent'], { cwd: repo.repo }).toString().trim(),
      result.headCommit,
    );

    const seqs = harness.events().map(({ seq }) => seq);
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => i + 1),
      'events are numbered 1, 2, 3, ... in order',
    );
  });

  it('re-sends unacknowledged events after a reconnect and hello, and forgets acknowledged ones', async () => {
    const repo = makeRepo(harness.dir);
    const command = 'agentctl progress one && agentctl progress two && agentctl review wait';
    harness.send({ type: 'task', task: makeTask(harness, repo, { command }) });
    const review = await harness.waitForEvent('review');
    const before = harness.events();
    const progressSeq = before
      .filter(({ event }) => event.kind === 'progress')
      .map(({ seq }) => seq);
    assert.equal(progressSeq.length, 2);
    harness.send({ type: 'ack', seq: progressSeq[0] });

    await harness.reconnect();
    const from = harness.messages.length;
    harness.send({ type: 'hello', lastSeq: 0 });
    await harness.waitFor((m) => m.type === 'event' && m.event.kind === 'review', { from });

    const replayed = harness.messages.slice(from).filter((m) => m.type === 'event') as Extract<
      GuestMessage,
      { type: 'event' }
    >[];
    assert.deepEqual(
      replayed.map((m) => m.seq),
      before.filter(({ seq }) => seq > progressSeq[0]).map(({ seq }) => seq),
      'exactly the events after the acknowledged one come again',
    );
    assert.equal(harness.messages[from].type, 'ready', 'hello is answered with ready first');
    const ready = harness.messages[from];
    assert.ok(
      ready.type === 'ready' && ready.hasTask && ready.seq === before[before.length - 1].seq,
    );

    const later = harness.messages.length;
    harness.send({ type: 'hello', lastSeq: progressSeq[1] });
    await harness.waitFor((m) => m.type === 'event' && m.event.kind === 'review', { from: later });
    const partial = harness.messages.slice(later).filter((m) => m.type === 'event');
    assert.deepEqual(
      partial.map((m) => m.type === 'event' && m.seq),
      before.filter(({ seq }) => seq > progressSeq[1]).map(({ seq }) => seq),
      'hello with lastSeq skips what the host already has',
    );

    harness.send({ type: 'review-answer', requestId: review.requestId, message: 'ok' });
    await harness.waitForEvent('result');
  });

  it('stamps events with its clock only after a sync since the last hello; a replay keeps its stamps', async () => {
    const repo = makeRepo(harness.dir);
    const command =
      'agentctl progress one && agentctl review first && agentctl progress two && agentctl review second';
    harness.send({ type: 'task', task: makeTask(harness, repo, { command }) });
    const first = await harness.waitForEvent('review');
    const stamp = (message: string) =>
      harness.messages.find(
        (m) => m.type === 'event' && m.event.kind === 'progress' && m.event.message === message,
      ) as Extract<GuestMessage, { type: 'event' }>;
    assert.equal(stamp('one').at, undefined, 'no sync yet: the clock may be that of a snapshot');

    harness.send({ type: 'sync', timeMs: Date.now(), entropy: '' });
    await harness.waitFor((m) => m.type === 'synced');
    const before = Date.now();
    harness.send({ type: 'review-answer', requestId: first.requestId, message: 'go on' });
    await harness.waitFor(
      (m) => m.type === 'event' && m.event.kind === 'review' && m.event.message === 'second',
    );
    const two = stamp('two');
    assert.ok(two.at !== undefined && two.at >= before && two.at <= Date.now(), `at ${two.at}`);

    const from = harness.messages.length;
    harness.send({ type: 'hello', lastSeq: two.seq - 1 });
    await harness.waitFor((m) => m.type === 'event' && m.seq === two.seq, { from });
    const replayed = harness.messages
      .slice(from)
      .find((m) => m.type === 'event' && m.seq === two.seq) as typeof two;
    assert.equal(replayed.at, two.at);
    const second = harness.events().filter(({ event }) => event.kind === 'review')[1].event;
    harness.send({
      type: 'review-answer',
      requestId: second.kind === 'review' ? second.requestId : '',
      message: 'done',
    });
    await harness.waitForEvent('result');
    const afterHello = harness.messages
      .slice(from)
      .filter((m) => m.type === 'event' && m.seq > two.seq + 1);
    assert.ok(afterHello.length > 0);
    assert.ok(afterHello.every((m) => m.type === 'event' && m.at === undefined));
  });

  it('serves the file API, exec and changes while the agent waits for review', async () => {
    const repo = makeRepo(harness.dir);
    harness.send({
      type: 'task',
      task: makeTask(harness, repo, { command: 'agentctl review "have a look"' }),
    });
    const review = await harness.waitForEvent('review');

    const data = (text: string) => Buffer.from(text).toString('base64');
    let id = 0;
    const ok = async (request: Parameters<GuestHarness['request']>[1]) => {
      const response = await harness.request(++id, request);
      assert.equal(response.ok, true, JSON.stringify(response.error));
      return response.result;
    };
    const failure = async (request: Parameters<GuestHarness['request']>[1]) => {
      const response = await harness.request(++id, request);
      assert.equal(response.ok, false);
      return response.error?.code;
    };

    const stat = (await ok({ op: 'fs.stat', path: 'hello.txt' })) as { type: string; size: number };
    assert.deepEqual([stat.type, stat.size], ['file', 6]);
    assert.equal(await failure({ op: 'fs.stat', path: 'missing.txt' }), 'ENOENT');

    await ok({ op: 'fs.mkdir', path: 'docs' });
    assert.equal(await failure({ op: 'fs.mkdir', path: 'docs' }), 'EEXIST');
    await ok({
      op: 'fs.writeFile',
      path: 'docs/new.md',
      data: data('# new\n'),
      create: true,
      overwrite: true,
    });
    assert.equal(
      await failure({
        op: 'fs.writeFile',
        path: 'docs/new.md',
        data: data('x'),
        create: true,
        overwrite: false,
      }),
      'EEXIST',
    );
    assert.equal(
      await failure({
        op: 'fs.writeFile',
        path: 'nope.md',
        data: data('x'),
        create: false,
        overwrite: true,
      }),
      'ENOENT',
    );
    assert.equal(await failure({ op: 'fs.readFile', path: 'docs' }), 'EISDIR');
    const read = (await ok({ op: 'fs.readFile', path: 'docs/new.md' })) as { data: string };
    assert.equal(Buffer.from(read.data, 'base64').toString(), '# new\n');

    await ok({
      op: 'fs.writeFile',
      path: path.join(harness.workspace, 'hello.txt'),
      data: data('hi\n'),
      create: true,
      overwrite: true,
    });
    await ok({ op: 'fs.rename', from: 'docs/new.md', to: 'docs/renamed.md', overwrite: false });
    const entries = readdirResultSchema.parse(await ok({ op: 'fs.readdir', path: '.' }));
    assert.deepEqual(
      entries.filter((e) => e.name !== '.git').sort((a, b) => a.name.localeCompare(b.name)),
      [
        { name: 'docs', type: 'directory' },
        { name: 'hello.txt', type: 'file' },
      ],
    );

    const changes = changesResultSchema.parse(await ok({ op: 'changes' }));
    assert.deepEqual(
      changes.sort((a, b) => a.path.localeCompare(b.path)),
      [
        { path: 'docs/renamed.md', status: 'U' },
        { path: 'hello.txt', status: 'M' },
      ],
    );

    const exec = execResultSchema.parse(
      await ok({ op: 'exec', command: 'cat hello.txt; echo oops >&2; exit 3', timeoutMs: 10_000 }),
    );
    assert.deepEqual(
      [exec.code, exec.stdout, exec.stderr, exec.timedOut],
      [3, 'hi\n', 'oops\n', false],
    );
    // stdin reaches the command; one that stops reading early is not an error.
    const piped = execResultSchema.parse(
      await ok({
        op: 'exec',
        command: 'tr a-z A-Z',
        stdin: Buffer.from('piped in\n').toString('base64'),
        timeoutMs: 10_000,
      }),
    );
    assert.deepEqual([piped.code, piped.stdout], [0, 'PIPED IN\n']);
    const early = execResultSchema.parse(
      await ok({
        op: 'exec',
        command: 'head -c 1 >/dev/null; echo read one',
        stdin: Buffer.alloc(4 * 1024 * 1024, 'x').toString('base64'),
        timeoutMs: 10_000,
      }),
    );
    assert.deepEqual([early.code, early.stdout], [0, 'read one\n']);
    const empty = execResultSchema.parse(
      await ok({ op: 'exec', command: 'wc -c', timeoutMs: 10_000 }),
    );
    assert.equal(empty.stdout.trim(), '0');
    const slow = execResultSchema.parse(
      await ok({ op: 'exec', command: 'sleep 20', timeoutMs: 300 }),
    );
    assert.equal(slow.timedOut, true);

    assert.equal(await failure({ op: 'fs.delete', path: 'docs', recursive: false }), 'ENOTEMPTY');
    await ok({ op: 'fs.delete', path: 'docs', recursive: true });
    assert.equal(fs.existsSync(path.join(harness.workspace, 'docs')), false);

    harness.send({ type: 'review-answer', requestId: review.requestId, message: 'done' });
    const result = await harness.waitForEvent('result');
    assert.deepEqual(
      result.commits.map((c) => c.subject),
      ['agentvm: changes left uncommitted by the agent'],
    );
  });

  it('cancels the agent command with SIGTERM and still exports an empty result', async () => {
    const repo = makeRepo(harness.dir);
    harness.send({
      type: 'task',
      task: makeTask(harness, repo, { command: 'agentctl progress started; sleep 30' }),
    });
    await harness.waitForEvent('progress');

    harness.send({ type: 'cancel', graceMs: 2000 });
    const exit = await harness.waitForEvent('exit');
    assert.equal(exit.code, null);
    assert.equal(exit.signal, 'SIGTERM');
    const result = await harness.waitForEvent('result');
    assert.deepEqual([result.commits, result.bundle, result.patch], [[], '', '']);
    assert.equal(result.headCommit, repo.baseCommit);
  });

  it("sends the command's stdout and stderr in the order it wrote them", async () => {
    const repo = makeRepo(harness.dir);
    // Regression: the partial line "compiling " (held for its newline) came after the warning.
    const command =
      "printf 'compiling '; sleep 0.3; echo 'warning: unused' >&2; sleep 0.3; echo done";
    harness.send({ type: 'task', task: makeTask(harness, repo, { command }) });
    await harness.waitForEvent('result');

    const output = harness
      .events()
      .flatMap(({ event }) => (event.kind === 'output' ? [`${event.stream}:${event.text}`] : []));
    assert.deepEqual(output, ['stdout:compiling ', 'stderr:warning: unused\n', 'stdout:done\n']);
  });

  it('reports an agent command killed by a signal with that signal, not as exit code 137', async () => {
    const repo = makeRepo(harness.dir);
    harness.send({
      type: 'task',
      task: makeTask(harness, repo, { command: "sh -c 'kill -9 $$'" }),
    });

    const exit = await harness.waitForEvent('exit');
    assert.deepEqual([exit.code, exit.signal], [null, 'SIGKILL']);
    await harness.waitForEvent('result');
  });

  it('stops a command that outlives timeLimitMs and says which limit it hit', async () => {
    const repo = makeRepo(harness.dir);
    harness.send({
      type: 'task',
      task: makeTask(harness, repo, { command: 'sleep 30', timeLimitMs: 500 }),
    });

    const error = await harness.waitForEvent('error');
    assert.match(error.message, /timeLimitMs/);
    assert.match(error.message, /500 ms/);
    assert.notEqual(error.fatal, true, 'the command is stopped and its result still follows');
    assert.equal((await harness.waitForEvent('exit')).signal, 'SIGTERM');
  });

  it('logs a line it cannot parse and keeps serving the channel', async () => {
    const from = harness.messages.length;
    harness.send('this is not json');
    harness.send('{"type":"hello","lastSeq":"not a number"}');
    harness.send({ type: 'hello', lastSeq: 0 });

    await harness.waitFor((m) => m.type === 'ready', { from });
    const warnings = harness.messages
      .slice(from)
      .filter((m) => m.type === 'log' && m.level === 'warn' && /bad line/.test(m.message));
    assert.equal(warnings.length, 2);
  });

  it('reports a fatal error event when the bundle does not hold the base commit (no result follows)', async () => {
    const repo = makeRepo(harness.dir);
    const task = makeTask(harness, repo, { baseCommit: 'f'.repeat(40) });
    harness.send({ type: 'task', task });

    const error = await harness.waitForEvent('error');
    assert.match(
      error.message,
      /git checkout of the task's bundle failed: .*reference is not a tree/,
    );
    assert.equal(error.fatal, true);
  });

  it('runs the command, git and file writes as the agent user when started as root', async function () {
    const user = fs
      .readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .map((line) => line.split(':'))
      .find((fields) => fields[2] === '1000' && fs.existsSync(fields[5] ?? ''));
    if (process.getuid?.() !== 0 || !user) this.skip();

    await harness.stop();
    fs.chmodSync(bundleDir, 0o755);
    harness = await GuestHarness.start(bundle, { agentUser: user[0] });
    await harness.waitFor((m) => m.type === 'ready');
    const repo = makeRepo(harness.dir);
    const command = 'id -u > uid.txt && agentctl review "check uid"';
    harness.send({ type: 'task', task: makeTask(harness, repo, { command }) });
    const review = await harness.waitForEvent('review');

    const written = await harness.request(1, {
      op: 'fs.writeFile',
      path: 'by-reviewer.txt',
      data: Buffer.from('x').toString('base64'),
      create: true,
      overwrite: true,
    });
    assert.equal(written.ok, true);
    const owner = fs.statSync(path.join(harness.workspace, 'by-reviewer.txt')).uid;
    assert.equal(owner, 1000);
    assert.equal(fs.statSync(path.join(harness.workspace, '.git')).uid, 1000);

    harness.send({ type: 'review-answer', requestId: review.requestId, message: 'fine' });
    const result = await harness.waitForEvent('result');
    assert.equal(result.commits.length, 1);
    assert.equal(fs.readFileSync(path.join(harness.workspace, 'uid.txt'), 'utf8'), '1000\n');
  });
});
