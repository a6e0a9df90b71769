import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Agent, AgentEvent, AgentResult } from '../../protocol/api';
import { AgentvmError } from '../../protocol/errors';
import { parseRemoteUrl } from './checkRemoteMatches';
import { cloneRepository } from './cloneRepository';
import type { GitHubClient } from './createGitHubClient';
import { createPullRequest, type PullRequestOutcome } from './createPullRequest';
import { issueRefFromTaskText } from './fetchIssueTask';
import { requestStatus } from './githubError';
import { importResultBundle } from './importResultBundle';
import type { RepoRef } from './parseIssueRef';
import type { ReviewAnswer } from './pullRequestBody';
import { runGit } from './runGit';

export interface AgentPullRequestInput {
  agent: Agent;
  events: AgentEvent[];
  result: AgentResult;
  /** The result bundle (`baseCommit..headCommit`) from the broker. */
  bundle: Buffer;
  /** GitHub token, used only to clone when no local clone has the base commit. */
  token: string;
  /** Target repository; else the issue's, else the one `agent.repo.path`'s remotes point at. */
  repo?: RepoRef;
  /** Branch on GitHub; `agentvm/<agent id>` by default. */
  branch?: string;
  /** Base branch; the delegated branch when GitHub has it, else the default branch. */
  base?: string;
  draft?: boolean;
  branchOnly?: boolean;
  force?: boolean;
  /** Web root to clone from; `https://github.com` by default. */
  cloneBaseUrl?: string;
  onProgress?: (message: string) => void;
}

/** Where an agent's result went: the repository plus the branch and pull request. */
export interface AgentPullRequestOutcome extends PullRequestOutcome {
  repo: RepoRef;
}

/**
 * Delivers an agent's result to GitHub: finds the target repository and a clone holding the base
 * commit (the one delegated from, else a fresh clone), unpacks the result bundle on top of it in a
 * temporary directory, and pushes the commits as a branch with a pull request whose body reports
 * the task, the delegating user, the review answers and the issue.
 */
export async function openAgentPullRequest(
  octokit: GitHubClient,
  input: AgentPullRequestInput,
): Promise<AgentPullRequestOutcome> {
  const { agent, result } = input;
  requireCommits(agent, result);

  const issue = issueRefFromTaskText(agent.text);
  const repo = await targetRepository(agent, input.repo);
  const progress = input.onProgress ?? (() => undefined);
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'agentvm-pr-'));
  try {
    // A clone with the base commit: the thin result bundle only holds what the agent added.
    let baseClone = agent.repo.path ?? null;
    if (!baseClone || !(await hasCommit(baseClone, result.baseCommit))) {
      progress(`cloning ${repo.owner}/${repo.repo} for the base commit`);
      baseClone = path.join(workDir, 'clone');
      await cloneRepository(repo, baseClone, input.token, { baseUrl: input.cloneBaseUrl });
    }

    const resultRepo = await importResultBundle(
      input.bundle,
      baseClone,
      result.headCommit,
      workDir,
    );
    const base = input.base ?? (await delegatedBranch(octokit, repo, agent.repo.branch));

    const outcome = await createPullRequest(octokit, {
      repo,
      repoDir: resultRepo,
      baseCommit: result.baseCommit,
      headCommit: result.headCommit,
      branch: input.branch ?? `agentvm/${agent.id}`,
      base,
      delegation: {
        agentId: agent.id,
        title: agent.title,
        task: agent.text,
        delegatedBy: agent.owner,
        reviewAnswers: reviewAnswersFromEvents(input.events),
        issue,
        commitSubjects: result.commits.map((commit) => commit.subject),
      },
      draft: input.draft,
      branchOnly: input.branchOnly,
      force: input.force,
      onProgress: progress,
    });
    return { ...outcome, repo };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/**
 * The repository a pull request goes to: `repo` when given, else the issue the task came from,
 * else the one the delegated clone's remotes name (origin first); REMOTE_MISMATCH when none does.
 */
export async function targetRepository(agent: Agent, repo?: RepoRef): Promise<RepoRef> {
  if (repo) return repo;

  const issue = issueRefFromTaskText(agent.text);
  return issue ? { owner: issue.owner, repo: issue.repo } : repoFromClone(agent);
}

/** RESULT_NOT_READY when the agent's result holds no commit: there is nothing to push. */
export function requireCommits(agent: Agent, result: AgentResult): void {
  if (result.commits.length > 0) return;

  throw new AgentvmError(
    'RESULT_NOT_READY',
    `Agent ${agent.id} made no commits; there is nothing to push.`,
  );
}

/**
 * Pairs each review request in the timeline with the answer that resumed it (by request id when
 * the answer event carries one, else the oldest unanswered request). Unanswered requests are left out.
 */
export function reviewAnswersFromEvents(events: AgentEvent[]): ReviewAnswer[] {
  const pending: Array<{ requestId: unknown; question: string }> = [];
  const answers: ReviewAnswer[] = [];
  for (const event of [...events].sort((a, b) => a.id - b.id)) {
    if (event.kind === 'review') {
      pending.push({ requestId: event.data.requestId, question: event.message });
      continue;
    }

    if (event.kind !== 'answer') continue;

    const byId =
      event.data.requestId === undefined
        ? -1
        : pending.findIndex((item) => item.requestId === event.data.requestId);
    const index = byId >= 0 ? byId : 0;
    const [request] = pending.splice(index, 1);
    if (request) answers.push({ question: request.question, answer: event.message });
  }

  return answers;
}

async function repoFromClone(agent: Agent): Promise<RepoRef> {
  const clone = agent.repo.path;
  const urls =
    clone && existsSync(clone) ? await runGit(clone, ['remote', '-v']).catch(() => '') : '';
  const ordered = urls
    .split('\n')
    .map((line) => line.split(/\s+/))
    .sort((a, b) => Number(b[0] === 'origin') - Number(a[0] === 'origin'));
  for (const [, url] of ordered) {
    const repo = url ? parseRemoteUrl(url) : null;
    if (repo) return repo;
  }

  throw new AgentvmError(
    'REMOTE_MISMATCH',
    `Agent ${agent.id} was not delegated from an issue and ${clone ?? 'its repository'} has no GitHub remote, so the target repository is unknown.`,
    'Pass --repo OWNER/REPO.',
  );
}

async function hasCommit(repoDir: string, commit: string): Promise<boolean> {
  if (!existsSync(repoDir)) return false;

  return runGit(repoDir, ['cat-file', '-e', `${commit}^{commit}`]).then(
    () => true,
    () => false,
  );
}

async function delegatedBranch(
  octokit: GitHubClient,
  repo: RepoRef,
  branch: string,
): Promise<string | undefined> {
  const found = await octokit.rest.git
    .getRef({ owner: repo.owner, repo: repo.repo, ref: `heads/${branch}` })
    .then(
      () => true,
      (error: unknown) => {
        if (requestStatus(error) === 404) return false;

        throw error;
      },
    );
  return found ? branch : undefined;
}
