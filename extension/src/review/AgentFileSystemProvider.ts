import * as vscode from 'vscode';
import { AgentvmError } from '../../../protocol/errors';
import type { ComponentLog } from '../log';
import type { AgentStore } from '../model/AgentStore';
import { inertText } from '../model/inertText';
import { guestPath } from './agentUri';
import type { GuestApi } from './GuestApi';

/** How long a file operation waits for the agent list on first use, in milliseconds. */
const agentListTimeoutMs = 10_000;

const fileTypes = {
  file: vscode.FileType.File,
  directory: vscode.FileType.Directory,
  symlink: vscode.FileType.SymbolicLink,
  other: vscode.FileType.Unknown,
} as const;

/**
 * The `agentvm://<agentId>/...` file system: a reviewing agent's workspace, read and written
 * through the guest agent's file API. Writes are refused once the agent runs again.
 */
export class AgentFileSystemProvider implements vscode.FileSystemProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  readonly onDidChangeFile = this.changed.event;

  constructor(
    private readonly guest: GuestApi,
    private readonly store: AgentStore,
    private readonly log: ComponentLog,
  ) {}

  watch(): vscode.Disposable {
    // The guest offers no change notifications; edits made here are announced by this provider.
    return new vscode.Disposable(() => undefined);
  }

  async stat(uri: vscode.Uri): Promise<vscode.FileStat> {
    const stat = await this.run(uri, () => this.guest.stat(uri.authority, guestPath(uri.path)));
    return {
      type: fileTypes[stat.type],
      size: stat.size,
      mtime: Math.round(stat.mtimeMs),
      ctime: Math.round(stat.ctimeMs),
      permissions: (await this.writable(uri)) ? undefined : vscode.FilePermission.Readonly,
    };
  }

  async readDirectory(uri: vscode.Uri): Promise<[string, vscode.FileType][]> {
    const entries = await this.run(uri, () =>
      this.guest.readdir(uri.authority, guestPath(uri.path)),
    );
    return entries.map((entry) => [entry.name, fileTypes[entry.type]]);
  }

  readFile(uri: vscode.Uri): Promise<Uint8Array> {
    return this.run(uri, () => this.guest.readFile(uri.authority, guestPath(uri.path)));
  }

  async writeFile(
    uri: vscode.Uri,
    content: Uint8Array,
    options: { create: boolean; overwrite: boolean },
  ): Promise<void> {
    await this.assertWritable(uri);
    const path = guestPath(uri.path);
    await this.run(uri, () =>
      this.guest.writeFile(uri.authority, path, content, options.create, options.overwrite),
    );
    this.log.info(`wrote ${uri.toString()} (${content.byteLength} bytes)`);
    this.changed.fire([{ type: vscode.FileChangeType.Changed, uri }]);
  }

  async createDirectory(uri: vscode.Uri): Promise<void> {
    await this.assertWritable(uri);
    await this.run(uri, () => this.guest.mkdir(uri.authority, guestPath(uri.path)));
    this.changed.fire([{ type: vscode.FileChangeType.Created, uri }]);
  }

  async delete(uri: vscode.Uri, options: { recursive: boolean }): Promise<void> {
    await this.assertWritable(uri);
    await this.run(uri, () =>
      this.guest.delete(uri.authority, guestPath(uri.path), options.recursive),
    );
    this.changed.fire([{ type: vscode.FileChangeType.Deleted, uri }]);
  }

  async rename(
    oldUri: vscode.Uri,
    newUri: vscode.Uri,
    options: { overwrite: boolean },
  ): Promise<void> {
    await this.assertWritable(oldUri);
    if (oldUri.authority !== newUri.authority) throw vscode.FileSystemError.NoPermissions(newUri);

    await this.run(oldUri, () =>
      this.guest.rename(
        oldUri.authority,
        guestPath(oldUri.path),
        guestPath(newUri.path),
        options.overwrite,
      ),
    );
    this.changed.fire([
      { type: vscode.FileChangeType.Deleted, uri: oldUri },
      { type: vscode.FileChangeType.Created, uri: newUri },
    ]);
  }

  /**
   * Whether the agent is still paused for review, so its workspace may be edited. A window that
   * opens with a review folder (after a reload, or the extension host restart VS Code makes when
   * a single-folder window becomes a workspace) asks before the agent list has arrived: it waits
   * for the list rather than calling the files read-only.
   */
  private async writable(uri: vscode.Uri): Promise<boolean> {
    if (!this.store.get(uri.authority)) await this.store.whenLoaded(agentListTimeoutMs);

    return this.store.get(uri.authority)?.state === 'reviewing';
  }

  private async assertWritable(uri: vscode.Uri): Promise<void> {
    if (!(await this.writable(uri))) throw vscode.FileSystemError.NoPermissions(uri);
  }

  private async run<T>(uri: vscode.Uri, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw toFileSystemError(error, uri);
    }
  }

  dispose(): void {
    this.changed.dispose();
  }
}

/** Maps guest and broker failures onto the errors VS Code's explorer and editors understand. */
export function toFileSystemError(error: unknown, uri: vscode.Uri): Error {
  if (error instanceof vscode.FileSystemError) return error;
  if (!(error instanceof AgentvmError)) return error as Error;

  const message = error.message;
  if (/ENOENT|no such file/i.test(message)) return vscode.FileSystemError.FileNotFound(uri);
  if (/EEXIST|already exists/i.test(message)) return vscode.FileSystemError.FileExists(uri);
  if (/EISDIR/.test(message)) return vscode.FileSystemError.FileIsADirectory(uri);
  if (/ENOTDIR/.test(message)) return vscode.FileSystemError.FileNotADirectory(uri);
  if (/EACCES|EPERM/.test(message)) return vscode.FileSystemError.NoPermissions(uri);
  // No VM to read from: the agent left review (INVALID_STATE), or its VM or the broker is away
  // (or went away in the middle of the call).
  const away = [
    'GUEST_UNREACHABLE',
    'BROKER_UNREACHABLE',
    'BROKER_CONNECTION_LOST',
    'BROKER_TIMEOUT',
    'INVALID_STATE',
  ];
  if (away.includes(error.code)) {
    return vscode.FileSystemError.Unavailable(uri);
  }

  // VS Code shows this message in a notification, which turns links into commands; the guest's
  // words are made inert.
  return new AgentvmError(error.code, inertText(error.message), error.hint);
}
