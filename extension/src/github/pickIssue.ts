import * as vscode from 'vscode';
import { describeFailure, UserCancelled } from '../commands/wrapCommand';
import type { IssueRef, RepoRef } from '../../../server/github/parseIssueRef';
import type { ComponentLog } from '../log';
import { issueQuickPickItems, type IssuePickItem } from './issueQuickPickItems';
import type { OpenIssue } from './listOpenIssues';

/** What the user chose: an issue of the list, or to type a reference (with the filter text so far). */
export type IssueChoice = { issue: IssueRef } | { typed: string };

let active: vscode.QuickPick<IssuePickItem> | undefined;

/** The issue picker on screen, if any; tests read its items and accept one. */
export function activeIssuePicker(): vscode.QuickPick<IssuePickItem> | undefined {
  return active;
}

/**
 * A quick pick of `repo`'s open issues. It opens at once, busy, with the "enter a reference" row,
 * and fills in when `load` resolves; a failed load leaves that row and says why in the
 * placeholder. Throws UserCancelled when dismissed.
 */
export function pickIssue(
  repo: RepoRef,
  load: () => Promise<OpenIssue[]>,
  log: ComponentLog,
): Promise<IssueChoice> {
  const name = `${repo.owner}/${repo.repo}`;
  const picker = vscode.window.createQuickPick<IssuePickItem>();
  picker.title = `agentvm: GitHub issue of ${name}`;
  picker.placeholder = `Loading the open issues of ${name}…`;
  picker.matchOnDescription = true;
  picker.matchOnDetail = true;
  picker.ignoreFocusOut = true;
  picker.busy = true;
  picker.items = issueQuickPickItems([], repo, Date.now());
  active = picker;

  let settled = false;
  load().then(
    (issues) => {
      if (settled) return;

      picker.items = issueQuickPickItems(issues, repo, Date.now());
      picker.placeholder =
        issues.length > 0
          ? `${issues.length} open issue(s) of ${name}; type to filter`
          : `${name} has no open issues; enter a reference instead`;
      picker.busy = false;
      log.debug(`listed ${issues.length} open issue(s) of ${name}`);
    },
    (error: unknown) => {
      if (settled) return;

      picker.placeholder = `Could not list the open issues of ${name}: ${describeFailure(error)}`;
      picker.busy = false;
      log.warn(`listing the open issues of ${name} failed: ${describeFailure(error)}`);
    },
  );

  return new Promise<IssueChoice>((resolve, reject) => {
    const subscriptions = [
      picker.onDidAccept(() => {
        const [item] = picker.selectedItems;
        if (!item) return;

        finish();
        resolve(item.issue ? { issue: item.issue } : { typed: picker.value });
      }),
      picker.onDidHide(() => {
        finish();
        reject(new UserCancelled());
      }),
    ];
    const finish = () => {
      if (settled) return;

      settled = true;
      if (active === picker) active = undefined;
      for (const subscription of subscriptions) subscription.dispose();
      picker.dispose();
    };
    picker.show();
  });
}
