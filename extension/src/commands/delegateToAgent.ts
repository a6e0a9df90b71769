import path from 'node:path';
import * as vscode from 'vscode';
import type { Agent, Profile } from '../../../protocol/api';
import { AgentvmError } from '../../../protocol/errors';
import { bundleRepository, type RepoUpload } from '../../../client/repoBundle';
import { askInstruction, TaskDraft } from '../delegate/askInstruction';
import { askIssueTask } from '../delegate/askIssueTask';
import { describeUpload } from '../delegate/describeUpload';
import { pickProfile } from '../delegate/pickProfile';
import { selectionTaskText, taskTitle } from '../delegate/taskText';
import { collectVscodeSecrets, vscodeSecretKeys } from '../secrets/profileSecrets';
import { readSettings } from '../settings';
import type { Services } from '../services';
import { UserCancelled } from './wrapCommand';

/** Options for calling agentvm.delegateToAgent from code; each one given skips its prompt. */
export interface DelegateOptions {
  text?: string;
  title?: string;
  profile?: string;
  /** Directory inside the repository to send; default: the active editor's or first folder. */
  repoPath?: string;
  includeUncommitted?: boolean;
  allowDirty?: boolean;
  /** false skips the confirmation dialog (the caller has shown what is sent). */
  confirm?: boolean;
}

/**
 * agentvm.delegateToAgent: task (selection or typed text) → profile → what is sent → confirm →
 * upload and start under a progress notification → the agent selected in the tree. A typed task
 * that does not become an agent (cancelled at any step, refused by the broker) is offered again
 * the next time.
 */
export function delegateToAgent(services: Services) {
  return async (options?: DelegateOptions | vscode.Uri): Promise<Agent> => {
    const given = options instanceof vscode.Uri || !options ? {} : options;
    const client = await services.connection.getClient();
    services.store.start();

    const draft = new TaskDraft(services.context.workspaceState);
    const task = given.text
      ? { text: given.text, title: given.title, typed: false }
      : await askForTask(() => given.repoPath ?? defaultRepoPath(), services, draft);
    const profiles = await client.profiles();
    const profile =
      given.profile ?? (await pickProfile(profiles, readSettings().defaultProfile)).name;
    const secrets = await profileSecrets(
      profiles.find((candidate) => candidate.name === profile),
      services,
    );
    const repoPath = given.repoPath ?? defaultRepoPath();
    const repo = await bundle(repoPath, given);
    if (given.confirm !== false) {
      const choice = await vscode.window.showInformationMessage(
        `Delegate "${task.title ?? taskTitle(task.text)}" to an agent?`,
        { modal: true, detail: describeUpload(repo, profile) },
        'Delegate',
      );
      if (choice !== 'Delegate') throw new UserCancelled();
    }

    const agent = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'agentvm', cancellable: false },
      async (progress) => {
        progress.report({ message: `uploading ${repo.branch} and starting the agent…` });
        return client.createAgent({
          text: task.text,
          title: task.title ?? taskTitle(task.text),
          profile,
          repo,
          ...(Object.keys(secrets).length > 0 ? { secrets } : {}),
        });
      },
    );
    services.log.for('Delegate').info(`created agent ${agent.id} (${profile}) from ${repo.path}`);
    if (task.typed) await draft.clear();
    services.store.upsert(agent);
    await services.revealAgent(agent.id);
    return agent;
  };
}

async function askForTask(
  repoPath: () => string,
  services: Services,
  draft: TaskDraft,
): Promise<{ text: string; title?: string; typed: boolean }> {
  const editor = vscode.window.activeTextEditor;
  const selection = editor && !editor.selection.isEmpty ? editor.selection : undefined;
  const sources = [
    ...(selection ? [{ label: '$(selection) Editor selection', id: 'selection' }] : []),
    { label: '$(edit) Type a task', id: 'text' },
    { label: '$(issues) GitHub issue', id: 'issue' },
  ];
  const source = await vscode.window.showQuickPick(sources, {
    title: 'agentvm: what should the agent work on?',
  });
  if (!source) throw new UserCancelled();
  if (source.id === 'issue') {
    return { ...(await askIssueTask(repoPath(), services.log.for('GitHub'))), typed: false };
  }

  const instruction = await askInstruction(
    draft,
    source.id === 'selection' ? 'What should the agent do with the selected code?' : undefined,
  );
  if (source.id !== 'selection' || !editor || !selection) {
    return { text: instruction, typed: true };
  }

  const folder = vscode.workspace.getWorkspaceFolder(editor.document.uri);
  const relativePath = folder
    ? path.relative(folder.uri.fsPath, editor.document.uri.fsPath).split(path.sep).join('/')
    : path.basename(editor.document.uri.fsPath);
  const text = selectionTaskText(instruction, {
    relativePath,
    startLine: selection.start.line + 1,
    endLine: selection.end.line + 1,
    languageId: editor.document.languageId,
    text: editor.document.getText(selection),
  });
  return { text, title: taskTitle(instruction), typed: true };
}

/**
 * The profile's `{ vscode }` secrets from SecretStorage, asking for (and keeping) any not stored
 * yet. An unknown profile has none here; the broker names the problem.
 */
async function profileSecrets(
  profile: Profile | undefined,
  services: Services,
): Promise<Record<string, string>> {
  if (!profile) return {};

  const values = await collectVscodeSecrets(
    vscodeSecretKeys(profile),
    services.context.secrets,
    (key) =>
      Promise.resolve(
        vscode.window.showInputBox({
          title: `agentvm: secret "${key}" for profile ${profile.name}`,
          prompt:
            "Kept in VS Code's SecretStorage and sent to the broker when you delegate; the VM only sees a placeholder.",
          password: true,
          ignoreFocusOut: true,
        }),
      ),
  );
  if (!values) throw new UserCancelled();

  return values;
}

function defaultRepoPath(): string {
  const active = vscode.window.activeTextEditor?.document.uri;
  const folder =
    (active && active.scheme === 'file' && vscode.workspace.getWorkspaceFolder(active)) ||
    vscode.workspace.workspaceFolders?.find((candidate) => candidate.uri.scheme === 'file');
  if (!folder) {
    throw new AgentvmError(
      'NOT_A_GIT_REPOSITORY',
      'no folder is open to delegate from',
      'Open the folder of a git repository (File > Open Folder), then run "Delegate to agent" again.',
    );
  }

  return folder.uri.fsPath;
}

/** Bundles the repository; on a dirty work tree, asks what to do with the changes. */
async function bundle(repoPath: string, given: DelegateOptions): Promise<RepoUpload> {
  try {
    return await bundleRepository(repoPath, {
      includeUncommitted: given.includeUncommitted,
      allowDirty: given.allowDirty,
    });
  } catch (error) {
    if (!(error instanceof AgentvmError) || error.code !== 'DIRTY_WORKTREE') throw error;
    if (given.includeUncommitted !== undefined || given.allowDirty !== undefined) throw error;

    const include = 'Include uncommitted changes';
    const headOnly = 'Send committed work only';
    const choice = await vscode.window.showWarningMessage(
      'The work tree has uncommitted changes.',
      { modal: true, detail: error.message },
      include,
      headOnly,
    );
    if (!choice) throw new UserCancelled();

    return bundleRepository(repoPath, {
      includeUncommitted: choice === include,
      allowDirty: choice === headOnly,
    });
  }
}
