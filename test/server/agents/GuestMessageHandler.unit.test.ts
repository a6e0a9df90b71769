import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { GuestEvent } from '../../../protocol/control';
import type { AgentContext } from '../../../server/agents/AgentContext';
import { AgentJournal } from '../../../server/agents/AgentJournal';
import { AgentLocks } from '../../../server/agents/AgentLocks';
import { MAX_STORED_OUTPUT_ENV, OutputBudget } from '../../../server/agents/capGuestEvent';
import { GuestMessageHandler } from '../../../server/agents/GuestMessageHandler';
import type { LiveVms } from '../../../server/agents/LiveVms';
import type { ReviewSnapshots } from '../../../server/agents/ReviewSnapshots';
import { storePath } from '../../../server/config/paths';
import { silentLogger } from '../../../server/log';
import { Store, type AgentRecord } from '../../../server/store/Store';
import { anAgentRecord } from '../../helpers/anAgentRecord';

const VALUE = 'RTREALVALUE-s3cr3t-7d41c9';

function runningAgent(id: string): AgentRecord {
  return anAgentRecord({ id, title: id, text: id, profile: 'p', owner: 'alice' });
}

describe('GuestMessageHandler (unit)', () => {
  let dir: string;
  let store: Store;
  let journal: AgentJournal;
  let handler: GuestMessageHandler;
  let locks: AgentLocks;
  let stoppedVms: string[];
  let seq = 0;
  /** Just before the handler was made: no entry it stores for a guest is stamped earlier. */
  let handlerMadeAt: number;
  /** A handler on the same store, as a broker process started after a restart makes one. */
  let makeHandler: () => GuestMessageHandler;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-guest-messages-'));
    store = new Store(storePath(dir));
    store.insertAgent(runningAgent('a1'));
    journal = new AgentJournal(store, silentLogger, undefined, (id) =>
      id === 'a1' ? [VALUE] : [],
    );
    locks = new AgentLocks();
    const context = { store, log: silentLogger, journal, locks } as unknown as AgentContext;
    stoppedVms = [];
    const vms = {
      get: () => undefined,
      stop: async (id: string) => void stoppedVms.push(id),
    } as unknown as LiveVms;
    handlerMadeAt = Date.now();
    makeHandler = () =>
      new GuestMessageHandler(context, vms, {} as ReviewSnapshots, () => ({
        bundle: path.join(dir, 'result.bundle'),
        patch: path.join(dir, 'result.patch'),
      }));
    handler = makeHandler();
    seq = 0;
  });

  afterEach(() => {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const send = (event: GuestEvent) => handler.handle('a1', { type: 'event', seq: ++seq, event });
  const stored = () => JSON.stringify([store.events('a1'), store.getAgent('a1')]);
  const outputs = (stream = 'stdout') =>
    store
      .events('a1')
      .filter((event) => event.kind === 'output' && event.data?.stream === stream)
      .map((event) => event.message);
  /** Resolves once what the handler queued on the agent's lock has run. */
  const settled = () => locks.run('a1', async () => undefined);

  /** Sends an event the guest stamped `guestAt` and returns its timeline entry. */
  const stampedEntry = (guestAt: number | undefined, event?: GuestEvent) => {
    handler.handle('a1', {
      type: 'event',
      seq: ++seq,
      event: event ?? { kind: 'phase', phase: 'running' },
      at: guestAt,
    });
    return store.events('a1').at(-1)!;
  };

  it("stamps an event with the guest's time of it when that falls in the agent's life, else with its arrival", async () => {
    store.updateAgent('a1', { createdAt: Date.now() - 60_000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const guestAt = Date.now() - 10;
    assert.equal(stampedEntry(guestAt).at, guestAt);
    for (const outside of [Date.now() - 120_000, Date.now() + 60_000, undefined]) {
      const before = Date.now();
      const stamped = stampedEntry(outside).at;
      assert.ok(stamped >= before && stamped <= Date.now(), `${outside} gave ${stamped}`);
    }
  });

  it("never stores a time before the previous entry's: an older guest stamp is raised to it and kept in data.guestAt", async () => {
    store.updateAgent('a1', { createdAt: Date.now() - 60_000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const printedAt = Date.now() - 10;
    stampedEntry(printedAt, { kind: 'output', stream: 'stdout', text: 'one\n' });
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Regression: after a broker restart the broker's own entry came first, then the guest's
    // replay of output it printed before it, stamped 30 ms earlier: the times ran backwards.
    journal.append('a1', {
      kind: 'info',
      message: 'reattached to VM pid 1 after a broker restart',
    });
    const reattachedAt = store.events('a1').at(-1)!.at;
    const replayed = stampedEntry(printedAt + 1, {
      kind: 'output',
      stream: 'stdout',
      text: 'two\n',
    });

    assert.equal(replayed.at, reattachedAt);
    assert.equal(replayed.data.guestAt, printedAt + 1);
    const times = store.events('a1').map((event) => event.at);
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
    );
  });

  it('raises a guest stamp from before this broker process started to the start, for an agent it has not stored for', () => {
    const printedAt = handlerMadeAt - 5_000;
    store.updateAgent('a1', { createdAt: printedAt - 60_000 });
    const entry = stampedEntry(printedAt);
    assert.ok(entry.at >= handlerMadeAt && entry.at <= Date.now(), `stored at ${entry.at}`);
    assert.equal(entry.data.guestAt, printedAt);
  });

  it('stores an output line that contains a secret value redacted, in the timeline and the record', () => {
    send({ kind: 'output', stream: 'stdout', text: `token is ${VALUE}\n` });

    assert.equal(store.events('a1').at(-1)?.message, 'token is [redacted]\n');
    assert.deepEqual(store.getAgent('a1')?.lastOutput, ['token is [redacted]']);
    assert.ok(!stored().includes(VALUE));
  });

  it('redacts progress and error messages, and leaves placeholders and other text alone', () => {
    send({
      kind: 'progress',
      message: `PROBE {"key":"${VALUE}","placeholder":"agentvm-secret-K-ab12"}`,
    });
    send({ kind: 'error', message: `failed with Bearer ${VALUE}` });

    const messages = store.events('a1').map((event) => event.message);
    assert.ok(
      messages.includes('PROBE {"key":"[redacted]","placeholder":"agentvm-secret-K-ab12"}'),
    );
    assert.ok(messages.includes('failed with Bearer [redacted]'));
    assert.ok(!stored().includes(VALUE));
  });

  it('redacts a state reason built from guest text, such as console lines of a failed VM', () => {
    journal.fail('a1', `VM died; console: export K=${VALUE}`);

    assert.equal(store.getAgent('a1')?.stateReason, 'VM died; console: export K=[redacted]');
    assert.ok(!stored().includes(VALUE));
  });

  it('stores no secret value split across two output events, nor its first half, and loses no output', () => {
    send({ kind: 'output', stream: 'stdout', text: `token is ${VALUE.slice(0, 9)}` });
    send({ kind: 'output', stream: 'stderr', text: 'warning: something\n' });
    send({ kind: 'output', stream: 'stdout', text: `${VALUE.slice(9)} and more\n` });

    assert.equal(outputs().join(''), 'token is [redacted] and more\n');
    assert.deepEqual(outputs('stderr'), ['warning: something\n']);
    assert.ok(!stored().includes(VALUE.slice(0, 9)), 'the first half was stored in clear');
    assert.ok(!stored().includes(VALUE.slice(9)), 'the second half was stored in clear');
  });

  it('stores output that cannot begin a secret value at once', () => {
    send({ kind: 'output', stream: 'stdout', text: 'building step 1 of 3' });

    assert.deepEqual(outputs(), ['building step 1 of 3']);
  });

  it('stores what a stream held back when the command exits, before the exit', () => {
    send({ kind: 'output', stream: 'stdout', text: 'cut short: RTREAL' });
    assert.deepEqual(outputs(), ['cut short: ']);

    send({ kind: 'exit', code: 1, signal: null });

    assert.deepEqual(outputs(), ['cut short: ', 'RTREAL']);
    assert.deepEqual(
      store.events('a1').map((event) => event.kind),
      ['output', 'output', 'exit'],
    );
  });

  it('stores held output and held progress when the agent ends, before its state, and forgets it', () => {
    send({ kind: 'output', stream: 'stdout', text: 'last words RTRE' });
    for (let index = 1; index <= 8; index++) send({ kind: 'progress', message: `step ${index}` });

    journal.transition('a1', 'done', { endedAt: Date.now() });

    const kinds = store.events('a1').map((event) => `${event.kind} ${event.message}`);
    assert.deepEqual(kinds.slice(-3), ['output RTRE', 'progress step 8', 'state done']);
    assert.equal(store.getAgent('a1')?.lastProgress, 'step 8');
    const throttle = (handler as unknown as { progress: { windows: Map<string, unknown> } })
      .progress;
    assert.equal(throttle.windows.size, 0, 'the ended agent still has a progress window');
  });

  it("forgets a removed agent's held progress", () => {
    for (let index = 1; index <= 8; index++) send({ kind: 'progress', message: `step ${index}` });
    store.deleteAgent('a1');

    journal.removed('a1', 'tester');

    const throttle = (handler as unknown as { progress: { windows: Map<string, unknown> } })
      .progress;
    assert.equal(throttle.windows.size, 0);
  });

  it('stores output up to the per-agent cap, then counts it: one notice, and at exit how much was dropped (regression: a stdout flood grew broker.db by 10 MB in 20 s)', () => {
    (handler as unknown as { outputBudget: OutputBudget }).outputBudget = new OutputBudget(2 ** 20);
    const chunk = 'x'.repeat(64 * 1024);
    for (let index = 0; index < 40; index++)
      send({ kind: 'output', stream: 'stdout', text: chunk });
    send({ kind: 'exit', code: 0, signal: null });

    const storedChars = outputs().reduce((sum, text) => sum + text.length, 0);
    assert.equal(storedChars, 2 ** 20);
    const limits = store.events('a1').filter((event) => event.kind === 'limit');
    assert.equal(limits.length, 2);
    assert.match(limits[0].message, /^output passed the 1 MiB stored per agent/);
    assert.match(limits[1].message, /^1.5 MiB of output \(24 write\(s\)\) past the 1 MiB cap/);
    assert.deepEqual(
      store.events('a1').map((event) => event.kind),
      [...Array<string>(16).fill('output'), 'limit', 'limit', 'exit'],
    );
    assert.equal(store.getAgent('a1')?.guestSeq, seq);
  });

  it("takes up an agent's output count after a broker restart instead of starting it again (regression: each restart gave a running agent another full allowance)", () => {
    const previous = process.env[MAX_STORED_OUTPUT_ENV];
    process.env[MAX_STORED_OUTPUT_ENV] = '1';
    try {
      const output = (target: GuestMessageHandler, text: string) =>
        target.handle('a1', {
          type: 'event',
          seq: ++seq,
          event: { kind: 'output', stream: 'stdout', text },
        });
      const chunk = 'x'.repeat(64 * 1024);
      const before = makeHandler();
      for (let index = 0; index < 12; index++) output(before, chunk);

      const after = makeHandler();
      for (let index = 0; index < 8; index++) output(after, chunk);

      const storedChars = outputs().reduce((sum, text) => sum + text.length, 0);
      assert.equal(storedChars, 2 ** 20);
      const limits = store.events('a1').filter((event) => event.kind === 'limit');
      assert.equal(limits.length, 1);
      assert.match(limits[0].message, /^output passed the 1 MiB stored per agent/);

      // A third process finds the notice: the agent stays capped, without a second notice.
      output(makeHandler(), 'y\n');
      assert.equal(outputs().join('').includes('y'), false);
      assert.equal(store.events('a1').filter((event) => event.kind === 'limit').length, 1);
    } finally {
      if (previous === undefined) delete process.env[MAX_STORED_OUTPUT_ENV];
      else process.env[MAX_STORED_OUTPUT_ENV] = previous;
    }
  });

  it('says how much output went past the cap when the agent ends without an exit, before its state', () => {
    (handler as unknown as { outputBudget: OutputBudget }).outputBudget = new OutputBudget(1024);
    send({ kind: 'output', stream: 'stdout', text: 'y'.repeat(1000) });
    send({ kind: 'output', stream: 'stdout', text: 'y'.repeat(2048) });

    journal.transition('a1', 'cancelled', { endedAt: Date.now() });

    const tail = store.events('a1').map((event) => `${event.kind} ${event.message.slice(0, 34)}`);
    assert.deepEqual(tail.slice(-3), [
      'limit output passed the 1 KiB stored per',
      'limit 2 KiB of output (1 write(s)) past ',
      'state cancelled',
    ]);
  });

  it("fails the agent with the guest's reason on a fatal error and stops its VM", async () => {
    send({ kind: 'error', message: 'the result is too large to send to the host', fatal: true });
    await settled();

    const record = store.getAgent('a1');
    assert.equal(record?.state, 'failed');
    assert.equal(record?.stateReason, 'the result is too large to send to the host');
    assert.deepEqual(stoppedVms, ['a1']);
  });

  it('fails an agent whose command a signal ended with a reason that says so, not "code null"', async () => {
    send({ kind: 'exit', code: null, signal: 'SIGKILL' });
    const head = 'a'.repeat(40);
    send({
      kind: 'result',
      baseCommit: head,
      headCommit: head,
      commits: [],
      bundle: '',
      patch: '',
    });
    await settled();

    const record = store.getAgent('a1');
    assert.equal(record?.state, 'failed');
    assert.equal(record?.stateReason, 'agent command was ended by a signal');
  });

  it('stores the result with its files before it acknowledges it, so a broker killed before the agent ends still has it (regression: the agent stayed running with no result)', async () => {
    const acks: number[] = [];
    const channelVms = {
      get: () => ({ vm: { channel: { send: (m: { seq: number }) => acks.push(m.seq) } } }),
      // The broker is killed while it stops the VM: this never settles.
      stop: () => new Promise(() => undefined),
    } as unknown as LiveVms;
    const context = { store, log: silentLogger, journal, locks } as unknown as AgentContext;
    const files = {
      bundle: path.join(dir, 'result.bundle'),
      patch: path.join(dir, 'result.patch'),
    };
    handler = new GuestMessageHandler(context, channelVms, {} as ReviewSnapshots, () => files);
    send({ kind: 'exit', code: 0, signal: null });
    const head = 'b'.repeat(40);
    send({
      kind: 'result',
      baseCommit: 'a'.repeat(40),
      headCommit: head,
      commits: [{ sha: head, subject: 'Work' }],
      bundle: Buffer.from('# v2 git bundle\n').toString('base64'),
      patch: 'the patch',
    });
    await new Promise((resolve) => setTimeout(resolve, 20));

    assert.deepEqual(acks, [1, 2], 'the guest was told the result arrived');
    assert.deepEqual(store.getAgent('a1')?.result, {
      headCommit: head,
      commits: [{ sha: head, subject: 'Work' }],
      exitCode: 0,
    });
    assert.equal(fs.readFileSync(files.patch, 'utf8'), 'the patch');
    assert.equal(fs.readFileSync(files.bundle, 'utf8'), '# v2 git bundle\n');
  });

  it('neither stores nor acknowledges a result whose files cannot be written, so the guest sends it again', () => {
    const acks: number[] = [];
    const channelVms = {
      get: () => ({ vm: { channel: { send: (m: { seq: number }) => acks.push(m.seq) } } }),
      stop: async () => undefined,
    } as unknown as LiveVms;
    const context = { store, log: silentLogger, journal, locks } as unknown as AgentContext;
    const missing = path.join(dir, 'no-such-dir');
    handler = new GuestMessageHandler(context, channelVms, {} as ReviewSnapshots, () => ({
      bundle: path.join(missing, 'result.bundle'),
      patch: path.join(missing, 'result.patch'),
    }));
    const head = 'c'.repeat(40);
    send({
      kind: 'result',
      baseCommit: head,
      headCommit: head,
      commits: [],
      bundle: '',
      patch: '',
    });

    assert.deepEqual(acks, []);
    const record = store.getAgent('a1');
    assert.equal(record?.result, null);
    assert.equal(record?.guestSeq, 0);
    assert.equal(record?.state, 'running');
    assert.match(store.events('a1').at(-1)?.message ?? '', /could not write the result files/);
  });

  it('keeps the agent running after an error that is not fatal', async () => {
    send({ kind: 'error', message: 'time limit reached; stopping the command' });
    await settled();

    assert.equal(store.getAgent('a1')?.state, 'running');
    assert.deepEqual(stoppedVms, []);
  });
});
