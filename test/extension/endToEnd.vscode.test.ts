import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { Agent } from '../../protocol/api';
import type { ExtensionApi } from '../../extension/src/extension';
import type { AgentGroupTreeItem } from '../../extension/src/views/AgentGroupTreeItem';
import type { AgentTreeItem } from '../../extension/src/views/AgentTreeItem';
import { ReviewWorkspace } from '../../extension/src/review/ReviewWorkspace';
import { describeGitHub } from './githubSuite';
import { brokerUrl, repoDir, waitForState } from './support/extensionHostEnv';

const profile = process.env.AGENTVM_TEST_PROFILE ?? 'demo';

describe('Delegate, review and resume in a real VS Code (vscode)', () => {
  let api: ExtensionApi;
  let agent: Agent | undefined;

  before(async () => {
    const extension = vscode.extensions.getExtension<ExtensionApi>('agentvm.agentvm');
    assert.ok(extension, 'the agentvm extension is installed');
    api = await extension.activate();
    assert.equal(
      api.services.connection.url,
      brokerUrl,
      'agentvm.brokerUrl points at the test broker',
    );
    // The review folder must be added after the repository, never as the first folder.
    assert.equal(
      vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
      repoDir,
      `the window opened the test workspace (folders: ${JSON.stringify(
        vscode.workspace.workspaceFolders?.map((folder) => folder.uri.toString()) ?? null,
      )})`,
    );
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && agent) {
      console.error(
        `agent under test: ${agent.id} (last state ${api.services.store.get(agent.id)?.state})`,
      );
    }
  });

  after(async () => {
    if (agent) await vscode.commands.executeCommand('agentvm.removeAgent', agent.id, true);
  });

  it('shows the agents view and connects to the broker when the view opens', async () => {
    await vscode.commands.executeCommand('agentvm.agents.focus');
    await api.services.store.refresh();
    assert.equal(
      api.services.store.status === 'connected' || api.services.store.status === 'connecting',
      true,
    );
  });

  it('delegates a typed task and selects the new agent in the tree', async () => {
    agent = await vscode.commands.executeCommand<Agent>('agentvm.delegateToAgent', {
      text: 'Run the tests and fix what fails',
      profile,
      repoPath: repoDir,
      confirm: false,
    });
    assert.ok(agent, 'the command returned the created agent');
    assert.equal(agent.profile, profile);
    assert.equal(
      agent.repo.baseCommit,
      execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repoDir }).toString().trim(),
    );

    const groups = api.views.provider.getChildren() as AgentGroupTreeItem[];
    const items = groups.flatMap(
      (group) => api.views.provider.getChildren(group) as AgentTreeItem[],
    );
    const item = items.find((candidate) => candidate.agent.id === agent?.id);
    assert.ok(item, 'the tree lists the agent');
    assert.match(String(item.contextValue), /^agent:/);
  });

  it('moves the agent to "Needs review" when it asks for review, with the status bar counting it', async () => {
    assert.ok(agent);
    const paused = await waitForState(api, agent.id, ['awaiting_review']);
    assert.ok(paused.review?.message, 'the review request carries a message');

    const groups = api.views.provider.getChildren() as AgentGroupTreeItem[];
    assert.equal(groups[0].group, 'needsReview');
    const item = (api.views.provider.getChildren(groups[0]) as AgentTreeItem[]).find(
      (i) => i.agent.id === agent?.id,
    );
    assert.match(String(item?.contextValue), /:review\b/);
    assert.match(String(item?.contextValue), /:resume\b/);
    assert.ok(api.views.statusBar.count >= 1);
    // Saved for review, the VM does not run: its time is a final figure, not counted on. The
    // fake broker, like brokers older than vmSeconds, sends none: then the tooltip says nothing.
    const tooltip = (item?.tooltip as vscode.MarkdownString | undefined)?.value ?? '';
    if (paused.vmSeconds === undefined) assert.doesNotMatch(tooltip, /VM time/);
    else assert.match(tooltip, /^VM time: (\d+m)?\d+s {2}$/m, `tooltip: ${tooltip}`);
  });

  it('opens the agent panel and completes the webview ready handshake', async () => {
    assert.ok(agent);
    await vscode.commands.executeCommand('agentvm.openAgent', agent.id);
    const panel = api.panels.get(agent.id);
    assert.ok(panel, 'a panel exists for the agent');
    for (let i = 0; i < 100 && !panel.isReady; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(panel.isReady, true, 'the webview sent ready');
  });

  it('reviews the paused agent as a workspace folder with its files and a diff of its changes', async () => {
    assert.ok(agent);
    const changes = await vscode.commands.executeCommand<{ path: string }[]>(
      'agentvm.reviewAgent',
      agent.id,
    );
    assert.ok(changes && changes.length > 0, 'the agent changed at least one file');
    assert.equal(api.services.store.get(agent.id)?.state, 'reviewing');

    const root = ReviewWorkspace.rootUri(agent.id);
    const folder = vscode.workspace.workspaceFolders?.find(
      (f) => f.uri.toString() === root.toString(),
    );
    assert.ok(folder, 'the agent workspace is a workspace folder');
    const entries = await vscode.workspace.fs.readDirectory(root);
    assert.ok(
      entries.some(([name]) => name === 'README.md'),
      'the agent workspace holds the repository files',
    );

    const diffTabs = vscode.window.tabGroups.all
      .flatMap((group) => group.tabs)
      .filter((tab) => tab.input instanceof vscode.TabInputTextDiff);
    assert.ok(diffTabs.length > 0, 'changed files opened as diffs');
  });

  it('saves an edit made in the agent workspace into the VM', async () => {
    assert.ok(agent);
    const readme = vscode.Uri.joinPath(ReviewWorkspace.rootUri(agent.id), 'README.md');
    const document = await vscode.workspace.openTextDocument(readme);
    const marker = `Reviewed in VS Code ${randomBytes(4).toString('hex')}`;
    const edit = new vscode.WorkspaceEdit();
    edit.insert(readme, new vscode.Position(document.lineCount, 0), `\n${marker}\n`);
    assert.equal(await vscode.workspace.applyEdit(edit), true);
    assert.equal(await document.save(), true);

    const inVm = Buffer.from(await vscode.workspace.fs.readFile(readme)).toString('utf8');
    assert.ok(inVm.includes(marker), 'reading the file back from the VM shows the edit');
    (agent as Agent & { marker?: string }).marker = marker;
  });

  it('resumes in one call, closes the review folder, and the agent finishes with the edit', async () => {
    assert.ok(agent);
    const marker = (agent as Agent & { marker?: string }).marker;
    assert.ok(marker);
    await vscode.commands.executeCommand('agentvm.resumeAgent', agent.id, 'yes');
    const root = ReviewWorkspace.rootUri(agent.id).toString();
    assert.equal(
      vscode.workspace.workspaceFolders?.some((f) => f.uri.toString() === root),
      false,
      'the review folder is gone once the agent runs again',
    );

    const done = await waitForState(api, agent.id, ['done']);
    assert.ok(done.result && done.result.commits.length > 0, 'the agent committed its work');

    const branch = await vscode.commands.executeCommand<string>('agentvm.applyResult', agent.id);
    assert.equal(branch, `agentvm/${agent.id}`);
    const readme = execFileSync('git', ['show', `${branch}:README.md`], {
      cwd: repoDir,
    }).toString();
    assert.ok(readme.includes(marker), "the agent's result carries the reviewer's edit");
  });

  describeGitHub({ api: () => api, finishedAgent: () => agent, repoDir });
});
