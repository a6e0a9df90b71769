import type { ComponentLog } from '../log';

/** A folder as the queue needs to know it: only its URI's string form is compared. */
interface FolderUri {
  toString(): string;
}

/**
 * The part of `vscode.workspace` the queue drives. `vscode.workspace` itself fits; unit tests pass
 * a fake with string URIs.
 */
export interface FolderHost<U extends FolderUri> {
  readonly workspaceFolders: readonly { readonly uri: U }[] | undefined;
  updateWorkspaceFolders(
    start: number,
    deleteCount: number,
    ...foldersToAdd: { uri: U; name?: string }[]
  ): boolean;
  onDidChangeWorkspaceFolders(listener: () => void): { dispose(): void };
}

/** Options of {@link WorkspaceFolderQueue}. */
export interface WorkspaceFolderQueueOptions {
  /** How long one change may wait for VS Code's confirmation, in milliseconds. */
  timeoutMs: number;
  /** Shows the user a warning (a change that was never confirmed). */
  warn(message: string): void;
}

type FolderChange<U> = { kind: 'add'; uri: U; name: string } | { kind: 'remove'; uri: U };

/**
 * Every workspace folder change the extension makes, one at a time. VS Code refuses an update
 * while an earlier one is unconfirmed, so each change is requested only once the previous one was
 * confirmed (or timed out); a change VS Code still refuses (another extension in this host has
 * one pending) is requested again when that one lands.
 */
export class WorkspaceFolderQueue<U extends FolderUri> {
  private tail: Promise<unknown> = Promise.resolve();
  /** The last queued change per folder URI, so a repeated request joins it instead of queueing. */
  private readonly latest = new Map<
    string,
    { kind: FolderChange<U>['kind']; done: Promise<boolean> }
  >();
  private cancelCurrent: (() => void) | undefined;
  private disposed = false;

  constructor(
    private readonly host: FolderHost<U>,
    private readonly log: ComponentLog,
    private readonly options: WorkspaceFolderQueueOptions,
  ) {}

  /**
   * Appends a folder (never replacing the first one, which would restart the extension host).
   * Resolves true once VS Code has confirmed it (or it was there already), false on timeout.
   */
  add(uri: U, name: string): Promise<boolean> {
    return this.enqueue({ kind: 'add', uri, name });
  }

  /**
   * Removes a folder. Resolves true once VS Code has confirmed it gone (or it was not there),
   * false on timeout or when it is the first folder, which is never removed.
   */
  remove(uri: U): Promise<boolean> {
    return this.enqueue({ kind: 'remove', uri });
  }

  /** Stops waiting: the change in progress and every queued one resolve false. */
  dispose(): void {
    this.disposed = true;
    this.cancelCurrent?.();
  }

  private enqueue(change: FolderChange<U>): Promise<boolean> {
    const key = change.uri.toString();
    const latest = this.latest.get(key);
    if (latest?.kind === change.kind) return latest.done;

    // Nothing queued for this folder: `workspaceFolders` shows its confirmed state.
    if (!latest && this.isDone(change)) return Promise.resolve(true);
    if (!latest && change.kind === 'remove' && this.indexOf(change.uri) === 0) {
      return Promise.resolve(false);
    }

    const done = this.tail.then(() => this.apply(change));
    const entry = { kind: change.kind, done };
    this.tail = done;
    this.latest.set(key, entry);
    void done.then(() => {
      if (this.latest.get(key) === entry) this.latest.delete(key);
    });
    return done;
  }

  private apply(change: FolderChange<U>): Promise<boolean> {
    if (this.disposed) return Promise.resolve(false);

    const what = `${change.kind === 'add' ? 'adding' : 'removing'} the workspace folder ${change.uri.toString()}`;
    return new Promise<boolean>((resolve) => {
      let requested = false;
      const finish = (confirmed: boolean) => {
        clearTimeout(timer);
        listener.dispose();
        this.cancelCurrent = undefined;
        resolve(confirmed);
      };
      const request = () => {
        if (this.isDone(change)) return finish(true);

        const folders = this.host.workspaceFolders ?? [];
        if (change.kind === 'add') {
          requested = this.host.updateWorkspaceFolders(folders.length, 0, {
            uri: change.uri,
            name: change.name,
          });
        } else {
          const at = this.indexOf(change.uri);
          if (at === 0) {
            this.log.info(
              `not ${what}: it is the first folder, and removing that restarts the extension host`,
            );
            return finish(false);
          }
          requested = this.host.updateWorkspaceFolders(at, 1);
        }
        this.log.info(
          requested
            ? what
            : `${what}: VS Code refused while another change is pending; asking again when it lands`,
        );
      };
      const timer = setTimeout(() => {
        const seconds = Math.round(this.options.timeoutMs / 1000);
        this.log.error(
          `${what}: VS Code did not confirm it within ${seconds} s; going on with the next folder change`,
        );
        const folder = change.kind === 'add' ? `"${change.name}"` : change.uri.toString();
        this.options.warn(
          `agentvm: VS Code did not confirm ${change.kind === 'add' ? 'adding' : 'removing'} the workspace folder ${folder} within ${seconds} s. See the agentvm log.`,
        );
        finish(false);
      }, this.options.timeoutMs);
      // Inside this event `workspaceFolders` is the state VS Code confirmed. A change we requested
      // is never requested twice: a repeated index could name another folder by then.
      const listener = this.host.onDidChangeWorkspaceFolders(() => {
        if (this.isDone(change)) finish(true);
        else if (!requested) request();
      });
      this.cancelCurrent = () => finish(false);
      request();
    });
  }

  private isDone(change: FolderChange<U>): boolean {
    const present = this.indexOf(change.uri) >= 0;
    return change.kind === 'add' ? present : !present;
  }

  private indexOf(uri: U): number {
    const key = uri.toString();
    return (this.host.workspaceFolders ?? []).findIndex((folder) => folder.uri.toString() === key);
  }
}
