import { formatIssueRef, type IssueRef, type RepoRef } from './parseIssueRef';

/** One review request the agent made and the answer the reviewer gave. */
export interface ReviewAnswer {
  question: string;
  answer: string;
}

/** What a pull request body reports about the delegation behind it. */
export interface PullRequestBodyInput {
  agentId: string;
  /** The agent's title (the issue title when delegated from an issue). */
  title: string;
  /** The task text the agent was given. */
  task: string;
  /** Who delegated the task (the broker user). */
  delegatedBy: string;
  reviewAnswers: ReviewAnswer[];
  /** The issue the task came from; the body closes it when the PR is in the same repository. */
  issue: IssueRef | null;
  /** Subjects of the commits, oldest first. */
  commitSubjects: string[];
}

const maxTaskChars = 4000;

/**
 * The pull request body: the issue link (with `Fixes` so merging closes it), who delegated what,
 * every review question with its answer, and the commits. The task is quoted and cut at 4000
 * characters because GitHub bodies are limited and the issue holds the full text anyway.
 */
export function pullRequestBody(input: PullRequestBodyInput, target: RepoRef): string {
  const lines: string[] = [];
  if (input.issue) {
    const sameRepo =
      input.issue.owner.toLowerCase() === target.owner.toLowerCase() &&
      input.issue.repo.toLowerCase() === target.repo.toLowerCase();
    lines.push(`Fixes ${sameRepo ? `#${input.issue.number}` : formatIssueRef(input.issue)}`, '');
  }

  lines.push(
    `Delegated by @${input.delegatedBy} to agentvm agent \`${input.agentId}\`: **${input.title}**`,
    '',
    '<details><summary>Task given to the agent</summary>',
    '',
    quote(truncate(input.task.trim(), maxTaskChars)),
    '',
    '</details>',
  );

  lines.push('', '### Review');
  if (input.reviewAnswers.length === 0) {
    lines.push('', 'The agent did not ask for a review.');
  }

  for (const [index, item] of input.reviewAnswers.entries()) {
    lines.push('', `${index + 1}. The agent asked:`, quote(item.question.trim(), '   '));
    lines.push(
      '   The reviewer answered:',
      quote(item.answer.trim() || '(no message; resumed)', '   '),
    );
  }

  lines.push('', `### Commits (${input.commitSubjects.length})`, '');
  for (const subject of input.commitSubjects) lines.push(`- ${subject}`);

  return lines.join('\n') + '\n';
}

function quote(text: string, indent = ''): string {
  return text
    .split('\n')
    .map((line) => `${indent}> ${line}`.trimEnd())
    .join('\n');
}

function truncate(text: string, maxChars: number): string {
  return text.length <= maxChars
    ? text
    : `${text.slice(0, maxChars)}\n\n… (cut; the full task is ${text.length} characters)`;
}
