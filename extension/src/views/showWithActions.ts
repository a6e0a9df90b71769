import * as vscode from 'vscode';

/** A button on a message: runs `command` with `args` when chosen. */
export interface MessageAction {
  title: string;
  command: string;
  args?: unknown[];
}

/**
 * Shows `message` as an error or an information message with one button per action, and runs the
 * command of the button chosen (nothing when the message is dismissed).
 */
export async function showWithActions(
  severity: 'info' | 'error',
  message: string,
  actions: readonly MessageAction[],
): Promise<void> {
  const show =
    severity === 'error' ? vscode.window.showErrorMessage : vscode.window.showInformationMessage;
  const choice = await show(message, ...actions.map((action) => action.title));
  const action = actions.find((candidate) => candidate.title === choice);
  if (action) await vscode.commands.executeCommand(action.command, ...(action.args ?? []));
}
