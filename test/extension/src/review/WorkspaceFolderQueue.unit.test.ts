import assert from 'node:assert/strict';
import type { ComponentLog } from '../../../../extension/src/log';
import {
  WorkspaceFolderQueue,
  type FolderHost,
} from '../../../../extension/src/review/WorkspaceFolderQueue';

type Folder = { uri: string; name?: string };

/**
 * Behaves like VS Code's extension host workspace: an accepted update shows at once in
 * `workspaceFolders` but stays unconfirmed until the window applies it, and while one is
 * unconfirmed every further update is refused.
 */
class FakeWorkspace implements FolderHost<string> {
  /** Every update asked for, in order: "add x", "remove x", or "refused ..." for a refusal. */
  readonly calls: string[] = [];
  private confirmed: Folder[];
  private unconfirmed: Folder[] | undefined;
  private readonly listeners = new Set<() => void>();

  constructor(...uris: string[]) {
    this.confirmed = uris.map((uri) => ({ uri }));
  }

  get workspaceFolders(): readonly Folder[] {
    return this.unconfirmed ?? this.confirmed;
  }

  get confirmedUris(): string[] {
    return this.confirmed.map((folder) => folder.uri);
  }

  get pending(): boolean {
    return this.unconfirmed !== undefined;
  }

  updateWorkspaceFolders(start: number, deleteCount: number, ...added: Folder[]): boolean {
    const current = this.workspaceFolders;
    const description = added.length
      ? `add ${added.map((folder) => folder.uri).join(',')}`
      : `remove ${current.slice(start, start + deleteCount).map((folder) => folder.uri)}`;
    if (this.unconfirmed) {
      this.calls.push(`refused ${description}`);
      return false;
    }

    const next = [...current];
    next.splice(start, deleteCount, ...added);
    this.unconfirmed = next;
    this.calls.push(description);
    return true;
  }

  onDidChangeWorkspaceFolders(listener: () => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** The window applies the unconfirmed update and tells the extension host. */
  confirm(): void {
    assert.ok(this.unconfirmed, 'an update is waiting for confirmation');
    this.confirmed = this.unconfirmed;
    this.unconfirmed = undefined;
    for (const listener of [...this.listeners]) listener();
  }
}

class RecordingLog implements ComponentLog {
  readonly lines: string[] = [];
  trace = (message: string) => this.lines.push(`trace ${message}`);
  debug = (message: string) => this.lines.push(`debug ${message}`);
  info = (message: string) => this.lines.push(`info ${message}`);
  warn = (message: string) => this.lines.push(`warn ${message}`);
  error = (message: string) => this.lines.push(`error ${message}`);
}

/** Lets queued promise callbacks run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('WorkspaceFolderQueue (unit)', () => {
  let workspace: FakeWorkspace;
  let log: RecordingLog;
  let warnings: string[];
  let queue: WorkspaceFolderQueue<string>;
  const makeQueue = (timeoutMs: number) =>
    new WorkspaceFolderQueue(workspace, log, {
      timeoutMs,
      warn: (message) => warnings.push(message),
    });

  beforeEach(() => {
    workspace = new FakeWorkspace('file:///repo');
    log = new RecordingLog();
    warnings = [];
    queue = makeQueue(60_000);
  });

  afterEach(() => queue.dispose());

  it('adds two folders asked for back to back, the second only once the first is confirmed', async () => {
    const first = queue.add('agentvm://a1/', 'agent: one');
    const second = queue.add('agentvm://a2/', 'agent: two');
    await settle();
    assert.deepEqual(workspace.calls, ['add agentvm://a1/']);

    workspace.confirm();
    assert.equal(await first, true);
    await settle();
    assert.deepEqual(workspace.calls, ['add agentvm://a1/', 'add agentvm://a2/']);

    workspace.confirm();
    assert.equal(await second, true);
    assert.deepEqual(workspace.confirmedUris, ['file:///repo', 'agentvm://a1/', 'agentvm://a2/']);
  });

  it('asks again for a change VS Code refused, once the pending change of another extension lands', async () => {
    assert.equal(workspace.updateWorkspaceFolders(1, 0, { uri: 'file:///other' }), true);
    const added = queue.add('agentvm://a1/', 'agent: one');
    await settle();
    assert.deepEqual(workspace.calls, ['add file:///other', 'refused add agentvm://a1/']);

    workspace.confirm();
    await settle();
    assert.deepEqual(workspace.calls.slice(2), ['add agentvm://a1/']);

    workspace.confirm();
    assert.equal(await added, true);
    assert.deepEqual(workspace.confirmedUris, ['file:///repo', 'file:///other', 'agentvm://a1/']);
  });

  it('removes a folder asked for while its addition is unconfirmed, after the addition lands', async () => {
    const added = queue.add('agentvm://a1/', 'agent: one');
    const removed = queue.remove('agentvm://a1/');
    await settle();
    assert.deepEqual(workspace.calls, ['add agentvm://a1/']);

    workspace.confirm();
    await settle();
    assert.deepEqual(workspace.calls, ['add agentvm://a1/', 'remove agentvm://a1/']);

    workspace.confirm();
    assert.deepEqual([await added, await removed], [true, true]);
    assert.deepEqual(workspace.confirmedUris, ['file:///repo']);
  });

  it('removes two folders asked for back to back, each by its index at the time', async () => {
    workspace = new FakeWorkspace('file:///repo', 'agentvm://a1/', 'agentvm://a2/');
    queue = makeQueue(60_000);
    const first = queue.remove('agentvm://a1/');
    const second = queue.remove('agentvm://a2/');
    await settle();
    workspace.confirm();
    await settle();
    workspace.confirm();

    assert.deepEqual([await first, await second], [true, true]);
    assert.deepEqual(workspace.calls, ['remove agentvm://a1/', 'remove agentvm://a2/']);
    assert.deepEqual(workspace.confirmedUris, ['file:///repo']);
  });

  it('joins a repeated removal of the same folder instead of asking VS Code twice', async () => {
    workspace = new FakeWorkspace('file:///repo', 'agentvm://a1/');
    queue = makeQueue(60_000);
    const first = queue.remove('agentvm://a1/');
    const second = queue.remove('agentvm://a1/');
    assert.equal(first, second);
    await settle();
    workspace.confirm();

    assert.equal(await second, true);
    assert.deepEqual(workspace.calls, ['remove agentvm://a1/']);
  });

  it('does not ask VS Code for a folder already as wanted, and never removes the first folder', async () => {
    workspace = new FakeWorkspace('agentvm://a0/', 'agentvm://a1/');
    queue = makeQueue(60_000);

    assert.equal(await queue.add('agentvm://a1/', 'agent: one'), true);
    assert.equal(await queue.remove('agentvm://a2/'), true);
    assert.equal(await queue.remove('agentvm://a0/'), false);
    assert.deepEqual(workspace.calls, []);
    assert.deepEqual(workspace.confirmedUris, ['agentvm://a0/', 'agentvm://a1/']);
  });

  it('gives up on a change never confirmed with an error and a warning, and the next change still lands', async () => {
    queue.dispose();
    queue = makeQueue(50);
    const first = queue.add('agentvm://a1/', 'agent: one');
    const second = queue.add('agentvm://a2/', 'agent: two');

    assert.equal(await first, false);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /"agent: one"/);
    assert.ok(
      log.lines.some((line) => /^error adding the workspace folder agentvm:\/\/a1\//.test(line)),
      log.lines.join('\n'),
    );
    await settle();
    assert.deepEqual(workspace.calls, ['add agentvm://a1/', 'refused add agentvm://a2/']);

    // The late confirmation of the first lets the second through.
    workspace.confirm();
    await settle();
    assert.equal(workspace.calls.at(-1), 'add agentvm://a2/');
    workspace.confirm();
    assert.equal(await second, true);
    assert.deepEqual(warnings.length, 1);
    assert.deepEqual(workspace.confirmedUris, ['file:///repo', 'agentvm://a1/', 'agentvm://a2/']);
  });

  it('resolves every change still waiting as not done once disposed', async () => {
    const first = queue.add('agentvm://a1/', 'agent: one');
    const second = queue.add('agentvm://a2/', 'agent: two');
    await settle();
    queue.dispose();

    assert.deepEqual([await first, await second], [false, false]);
    assert.deepEqual(workspace.calls, ['add agentvm://a1/']);
  });
});
