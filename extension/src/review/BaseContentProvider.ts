import * as vscode from 'vscode';
import { AgentvmError } from '../../../protocol/errors';
import { shellQuote, workspaceRelativePath } from './agentUri';
import type { GuestApi } from './GuestApi';

/**
 * Read-only documents `agentvm-base://<agentId>/<path>?<commit>`: a file as of the base commit,
 * read inside the VM with `git show`, for the left side of review diffs.
 */
export class BaseContentProvider implements vscode.TextDocumentContentProvider {
  constructor(private readonly guest: GuestApi) {}

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const commit = uri.query;
    if (!/^[0-9a-f]{7,40}$/.test(commit)) {
      throw new AgentvmError('BAD_REQUEST', `not a commit id: ${commit}`);
    }

    const spec = `${commit}:${workspaceRelativePath(uri.path)}`;
    const result = await this.guest.exec(uri.authority, `git show ${shellQuote(spec)}`);
    // A file the agent added has no base version: the diff shows it against an empty side.
    return result.code === 0 ? result.stdout : '';
  }
}
