import * as vscode from 'vscode';
import { UserCancelled } from '../commands/wrapCommand';

const draftKey = 'agentvm.unsentTask';

/**
 * The task text typed for a delegation that did not go out (cancelled at a later step, refused by
 * the broker), kept in the workspace's state until an agent is made from it.
 */
export class TaskDraft {
  constructor(private readonly state: vscode.Memento) {}

  get text(): string {
    return this.state.get<string>(draftKey) ?? '';
  }

  keep(text: string): Thenable<void> {
    return this.state.update(draftKey, text.trim() ? text : undefined);
  }

  clear(): Thenable<void> {
    return this.state.update(draftKey, undefined);
  }
}

/**
 * Asks for the task in an input box that starts with the unsent task of an earlier attempt (all
 * selected, so typing replaces it) and keeps what is typed, even when the box is dismissed.
 */
export function askInstruction(draft: TaskDraft, prompt: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const box = vscode.window.createInputBox();
    const earlier = draft.text;
    box.title = 'agentvm: task for the agent';
    box.placeholder = 'e.g. Add input validation to the parser and a test for it';
    box.ignoreFocusOut = true;
    box.value = earlier;
    if (earlier) box.valueSelection = [0, earlier.length];
    const restoredNote = earlier
      ? 'Your last task did not go out: it is filled in (type to replace it).'
      : undefined;
    box.prompt = [prompt, restoredNote].filter(Boolean).join(' ') || undefined;
    let accepted = false;
    box.onDidChangeValue(() => (box.validationMessage = undefined));
    box.onDidAccept(() => {
      if (!box.value.trim()) {
        box.validationMessage = 'Describe the task';
        return;
      }

      accepted = true;
      resolve(box.value);
      box.hide();
    });
    box.onDidHide(() => {
      void draft.keep(box.value);
      box.dispose();
      if (!accepted) reject(new UserCancelled());
    });
    box.show();
  });
}
