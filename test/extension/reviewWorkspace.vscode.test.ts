import assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { Agent } from '../../protocol/api';
import type { ExtensionApi } from '../../extension/src/extension';
import { ReviewWorkspace } from '../../extension/src/review/ReviewWorkspace';
import { repoDir, waitForState } from './support/extensionHostEnv';

const profile = process.env.AGENTVM_TEST_PROFILE ?? 'demo';

const folderUris = () =>
  (vscode.workspace.workspaceFolders ?? []).map((folder) => folder.uri.toString());

describe('Review folders of two agents at once (vscode)', () => {
  let api: ExtensionApi;
  const agents: Agent[] = [];

  before(async () => {
    const extension = vscode.extensions.getExtension<ExtensionApi>('agentvm.agentvm');
    assert.ok(extension, 'the agentvm extension is installed');
    api = await extension.activate();
  });

  afterEach(function () {
    if (this.currentTest?.state !== 'failed') return;

    for (const agent of agents) {
      console.error(
        `agent under test: ${agent.id} (last state ${api.services.store.get(agent.id)?.state})`,
      );
    }
    console.error(`workspace folders: ${folderUris().join(' ')}`);
  });

  after(async () => {
    for (const agent of agents) {
      await vscode.commands.executeCommand('agentvm.removeAgent', agent.id, true);
    }
  });

  it('opens both review folders when two agents are reviewed back to back', async () => {
    for (const text of ['Fix what fails (first reviewer)', 'Fix what fails (second reviewer)']) {
      const agent = await vscode.commands.executeCommand<Agent>('agentvm.delegateToAgent', {
        text,
        profile,
        repoPath: repoDir,
        confirm: false,
      });
      assert.ok(agent, 'the delegation returned the created agent');
      agents.push(agent);
    }
    await Promise.all(agents.map((agent) => waitForState(api, agent.id, ['awaiting_review'])));
    // Restored first, so the two review commands reach the folder change within milliseconds of
    // each other instead of one restore apart.
    const client = await api.services.connection.getClient();
    for (const agent of agents) api.services.store.upsert(await client.review(agent.id));

    const reviews = agents.map((agent) =>
      vscode.commands.executeCommand<{ path: string }[]>('agentvm.reviewAgent', agent.id),
    );
    const changes = await Promise.all(reviews);

    assert.ok(
      changes.every((list) => list && list.length > 0),
      'both reviews listed the changed files',
    );
    const roots = agents.map((agent) => ReviewWorkspace.rootUri(agent.id).toString());
    assert.deepEqual(
      roots.filter((root) => !folderUris().includes(root)),
      [],
      'both agents are workspace folders',
    );
    assert.equal(vscode.workspace.workspaceFolders?.[0]?.uri.fsPath, repoDir);
  });

  it('removes both review folders when both agents are resumed back to back', async () => {
    assert.equal(agents.length, 2);
    const resumes = agents.map((agent) =>
      vscode.commands.executeCommand<Agent>('agentvm.resumeAgent', agent.id, 'yes'),
    );
    const resumed = await Promise.all(resumes);

    assert.ok(
      resumed.every((agent) => agent !== undefined),
      'both resume commands succeeded',
    );
    const roots = agents.map((agent) => ReviewWorkspace.rootUri(agent.id).toString());
    assert.deepEqual(
      roots.filter((root) => folderUris().includes(root)),
      [],
      'no review folder is left',
    );
    assert.equal(vscode.workspace.workspaceFolders?.[0]?.uri.fsPath, repoDir);
  });
});
