import assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { Agent } from '../../protocol/api';
import type { ExtensionApi } from '../../extension/src/extension';
import { AgentStore } from '../../extension/src/model/AgentStore';
import { AgentFileSystemProvider } from '../../extension/src/review/AgentFileSystemProvider';
import { ReviewWorkspace } from '../../extension/src/review/ReviewWorkspace';
import { memoryLog, until } from './support/privateFakeBroker';
import { repoDir, waitForState } from './support/extensionHostEnv';

const profile = process.env.AGENTVM_TEST_PROFILE ?? 'demo';

const folderUris = () =>
  (vscode.workspace.workspaceFolders ?? []).map((folder) => folder.uri.toString());

/**
 * A review workspace while the agent's review ends or changes outside this window's commands:
 * resumed or removed with the CLI (here: the broker API the CLI uses), a window that opens before
 * its agent list, a save that cannot reach the VM.
 */
describe('The review workspace when the review ends outside it (vscode)', () => {
  let api: ExtensionApi;
  let edited: Agent;
  let removed: Agent;
  const logLines: string[] = [];

  before(async () => {
    const extension = vscode.extensions.getExtension<ExtensionApi>('agentvm.agentvm');
    assert.ok(extension);
    api = await extension.activate();
    const delegate = (text: string) =>
      vscode.commands.executeCommand<Agent>('agentvm.delegateToAgent', {
        text,
        profile,
        repoPath: repoDir,
        confirm: false,
      });
    edited = await delegate('Fix what fails (reviewer with unsaved edits)');
    removed = await delegate('Fix what fails (removed while reviewed)');
    assert.ok(edited && removed, 'both delegations returned their agent');
    await Promise.all(
      [edited, removed].map((agent) => waitForState(api, agent.id, ['awaiting_review'])),
    );
    for (const agent of [edited, removed]) {
      assert.ok(await vscode.commands.executeCommand('agentvm.reviewAgent', agent.id));
    }
  });

  afterEach(function () {
    if (this.currentTest?.state !== 'failed') return;

    for (const agent of [edited, removed]) {
      console.error(
        `agent under test: ${agent?.id} (last state ${api.services.store.get(agent?.id)?.state})`,
      );
    }
    console.error(`workspace folders: ${folderUris().join(' ')}\n${logLines.join('\n')}`);
  });

  after(async () => {
    for (const document of vscode.workspace.textDocuments) {
      if (document.uri.scheme !== 'agentvm' || !document.isDirty) continue;

      await vscode.window.showTextDocument(document);
      await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
    }
    for (const agent of [edited, removed]) {
      if (agent && api.services.store.get(agent.id)) {
        await vscode.commands.executeCommand('agentvm.removeAgent', agent.id, true);
      }
    }
  });

  it('serves the files writable to a window that asks before its agent list has arrived', async () => {
    // As after a reload: the folder is there, the store of the new window has not loaded yet.
    const store = new AgentStore(api.services.connection, memoryLog(logLines));
    try {
      const provider = new AgentFileSystemProvider(api.services.guest, store, memoryLog(logLines));
      const readme = vscode.Uri.joinPath(ReviewWorkspace.rootUri(edited.id), 'README.md');
      const stat = await provider.stat(readme);
      assert.equal(stat.permissions, undefined, 'README.md of a reviewing agent is writable');
    } finally {
      store.dispose();
    }
  });

  it('does not resume when an edit cannot be saved into the VM, and keeps the edit', async () => {
    const root = ReviewWorkspace.rootUri(edited.id);
    const note = vscode.Uri.joinPath(root, 'h10-notes', 'note.txt');
    await vscode.workspace.fs.writeFile(note, Buffer.from('first line\n'));
    const document = await vscode.workspace.openTextDocument(note);
    await vscode.window.showTextDocument(document);
    const edit = new vscode.WorkspaceEdit();
    edit.insert(note, new vscode.Position(1, 0), 'an edit that cannot be saved\n');
    assert.equal(await vscode.workspace.applyEdit(edit), true);
    // Inside the VM the folder becomes a file: no save can put note.txt there now.
    await api.services.guest.exec(edited.id, 'rm -rf h10-notes && echo in-the-way > h10-notes');

    const resumed = await vscode.commands.executeCommand('agentvm.resumeAgent', edited.id, 'go');
    assert.equal(resumed, undefined, 'the resume command failed');
    const client = await api.services.connection.getClient();
    assert.equal((await client.getAgent(edited.id)).state, 'reviewing', 'the agent still waits');
    assert.equal(document.isDirty, true, 'the edit is still in the editor');
    assert.match(document.getText(), /an edit that cannot be saved/);
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
  });

  it('keeps unsaved edits open, without a save attempt, when the agent is resumed elsewhere', async () => {
    const root = ReviewWorkspace.rootUri(edited.id);
    const readme = vscode.Uri.joinPath(root, 'README.md');
    const document = await vscode.workspace.openTextDocument(readme);
    await vscode.window.showTextDocument(document);
    const saves: string[] = [];
    const listener = vscode.workspace.onWillSaveTextDocument((event) => {
      if (event.document.uri.scheme === 'agentvm') saves.push(event.document.uri.toString());
    });
    // The web workbench saves after a second by default (desktop VS Code does not): the edit
    // must stay unsaved for this test.
    const files = vscode.workspace.getConfiguration('files');
    await files.update('autoSave', 'off', vscode.ConfigurationTarget.Workspace);

    try {
      const edit = new vscode.WorkspaceEdit();
      edit.insert(readme, new vscode.Position(0, 0), 'UNSAVED REVIEW EDIT\n');
      assert.equal(await vscode.workspace.applyEdit(edit), true);
      const client = await api.services.connection.getClient();
      await client.resume(edited.id, 'resumed with the CLI');
      await until('the review folder is gone', () => !folderUris().includes(root.toString()));
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      assert.deepEqual(saves, [], 'nothing tried to save the edit into a VM that runs again');
      assert.equal(document.isClosed, false, 'the edited document is still open');
      assert.equal(document.isDirty, true);
      assert.equal(document.lineAt(0).text, 'UNSAVED REVIEW EDIT');
    } finally {
      listener.dispose();
      await vscode.window.showTextDocument(document);
      await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
      await files.update('autoSave', undefined, vscode.ConfigurationTarget.Workspace);
    }
  });

  it('closes the review folder when the agent is removed elsewhere', async () => {
    const root = ReviewWorkspace.rootUri(removed.id).toString();
    assert.ok(folderUris().includes(root), 'the review folder is open');
    const client = await api.services.connection.getClient();
    await client.remove(removed.id, { force: true });

    await until(
      'the store saw the removal',
      () => api.services.store.get(removed.id) === undefined,
    );
    await until('the review folder is gone', () => !folderUris().includes(root), 10_000);
  });
});
