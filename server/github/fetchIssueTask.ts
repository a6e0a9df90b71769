import type { GitHubClient } from './createGitHubClient';
import { githubError } from './githubError';
import { formatIssueRef, parseIssueRef, type IssueRef } from './parseIssueRef';

/** A task built from a GitHub issue: what `delegate --issue` sends to the broker. */
export interface IssueTask {
  ref: IssueRef;
  /** The issue's title, used as the agent's title. */
  title: string;
  /** Markdown: a link back to the issue, its labels, body and every comment in order. */
  text: string;
  /** The issue's web address. */
  url: string;
}

interface IssueLabel {
  name?: string;
}

/**
 * Reads an issue with its labels and all of its comments (every page) and writes them up as the
 * agent's task. The first line links back to the issue so the result can point at it again.
 */
export async function fetchIssueTask(octokit: GitHubClient, ref: IssueRef): Promise<IssueTask> {
  const coordinates = { owner: ref.owner, repo: ref.repo, issue_number: ref.number };
  const subject = `issue #${ref.number}`;

  const issue = await octokit.rest.issues
    .get(coordinates)
    .then((response) => response.data)
    .catch((error: unknown) => {
      throw githubError(error, { repo: ref, action: `reading ${subject}`, subject });
    });

  const comments = await octokit
    .paginate(octokit.rest.issues.listComments, { ...coordinates, per_page: 100 })
    .catch((error: unknown) => {
      throw githubError(error, {
        repo: ref,
        action: `reading the comments of ${subject}`,
        subject,
      });
    });

  const labels = issue.labels
    .map((label: string | IssueLabel) => (typeof label === 'string' ? label : (label.name ?? '')))
    .filter((name: string) => name.length > 0);
  const author = issue.user?.login ? ` by @${issue.user.login}` : '';

  const lines = [
    `# ${issue.title}`,
    '',
    `Task from GitHub issue [${formatIssueRef(ref)}](${issue.html_url}), opened${author} (${issue.state}).`,
  ];
  if (labels.length > 0) lines.push(`Labels: ${labels.join(', ')}`);

  lines.push('', issue.body?.trim() || '_The issue has no description._');

  if (comments.length > 0) {
    lines.push('', `## Comments (${comments.length})`);
    for (const comment of comments) {
      const who = comment.user?.login ? `@${comment.user.login}` : 'someone';
      lines.push(
        '',
        `### ${who} on ${comment.created_at.slice(0, 10)}`,
        '',
        comment.body?.trim() ?? '',
      );
    }
  }

  return { ref, title: issue.title, text: lines.join('\n') + '\n', url: issue.html_url };
}

/**
 * The issue a task was built from, read back from the link {@link fetchIssueTask} puts on the
 * task's third line; null for tasks that did not come from an issue.
 */
export function issueRefFromTaskText(text: string, host = 'github.com'): IssueRef | null {
  const match = /^Task from GitHub issue \[[^\]]*\]\(([^)\s]+)\)/m.exec(text);
  if (!match) return null;

  try {
    return parseIssueRef(match[1], { host });
  } catch {
    return null;
  }
}
