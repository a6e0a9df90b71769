import type { IssueRef, RepoRef } from '../../../server/github/parseIssueRef';
import type { OpenIssue } from './listOpenIssues';

/** One row of the issue picker: an issue of the workspace repository, or "enter a reference". */
export interface IssuePickItem {
  label: string;
  description?: string;
  detail?: string;
  alwaysShow?: boolean;
  /** The issue this row picks; absent on the "enter a reference" row. */
  issue?: IssueRef;
}

/** The label of the row that asks for an issue URL or `OWNER/REPO#N` instead. */
export const ENTER_REFERENCE_LABEL = '$(link) Enter an issue URL or OWNER/REPO#N…';

/**
 * The picker's rows: one per open issue (`#N title`, labels, author, comments and age), then the
 * row to type a reference, always shown so it survives any filter text.
 */
export function issueQuickPickItems(
  issues: OpenIssue[],
  repo: RepoRef,
  nowMs: number,
): IssuePickItem[] {
  const rows: IssuePickItem[] = issues.map((issue) => {
    const comments = `${issue.commentCount} comment${issue.commentCount === 1 ? '' : 's'}`;
    const age = Number.isFinite(issue.updatedAtMs)
      ? `updated ${relativeAge(nowMs - issue.updatedAtMs)}`
      : undefined;
    return {
      label: `#${issue.number} ${issue.title}`,
      description: issue.labels.length > 0 ? issue.labels.join(', ') : undefined,
      detail: [issue.author ? `@${issue.author}` : undefined, comments, age]
        .filter((part) => part !== undefined)
        .join(' · '),
      issue: { owner: repo.owner, repo: repo.repo, number: issue.number },
    };
  });
  rows.push({ label: ENTER_REFERENCE_LABEL, alwaysShow: true });
  return rows;
}

/** "just now", "5 minutes ago", "3 hours ago", "12 days ago". */
export function relativeAge(ageMs: number): string {
  const minutes = Math.floor(Math.max(0, ageMs) / 60_000);
  if (minutes < 1) return 'just now';

  const [count, unit] =
    minutes < 60
      ? [minutes, 'minute']
      : minutes < 48 * 60
        ? [Math.floor(minutes / 60), 'hour']
        : [Math.floor(minutes / (24 * 60)), 'day'];
  return `${count} ${unit}${count === 1 ? '' : 's'} ago`;
}
