import type { Command } from 'commander';
import { AgentvmError } from '../../../protocol/errors';
import { createGitHubClient } from '../../github/createGitHubClient';
import {
  openAgentPullRequest,
  requireCommits,
  targetRepository,
} from '../../github/openAgentPullRequest';
import type { RepoRef } from '../../github/parseIssueRef';
import { resolveGitHubToken } from '../../github/resolveGitHubToken';
import {
  action,
  checkAgentIds,
  connect,
  note,
  out,
  printJson,
  type GlobalOptions,
} from '../context';
import { explainMissingResult } from './explainMissingResult';

interface PrOptions extends GlobalOptions {
  draft?: boolean;
  base?: string;
  branch?: string;
  branchOnly?: boolean;
  repo?: string;
  force?: boolean;
}

/**
 * `agentvm pr ID`: the agent's commits become a branch on GitHub (through the Git Data API, so no
 * git push credentials are needed) and a pull request that links the issue. GITHUB_API_URL points
 * it at GitHub Enterprise or a test server.
 */
export function registerPrCommand(program: Command): void {
  program
    .command('pr')
    .description("push the agent's commits to GitHub as a branch and open a pull request")
    .argument('<id>')
    .option('--draft', 'open the pull request as a draft')
    .option(
      '--base <branch>',
      'branch to merge into (default: the delegated branch, else the default branch)',
    )
    .option('--branch <name>', 'branch to push (default agentvm/<id>)')
    .option('--branch-only', 'push the branch without opening a pull request')
    .option(
      '--repo <owner/repo>',
      'target repository (default: the issue the task came from, else origin)',
    )
    .option('--force', 'replace the branch on GitHub even if it holds other commits')
    .option('--json', 'print the outcome as JSON')
    .action(
      action(async (id: string, options: PrOptions) => {
        // What the user typed and the agent's state are checked before any credential is looked
        // for, so a typo or an agent without a result is reported as such, not as a missing token.
        checkAgentIds('pr', [id]);
        const typedRepo = options.repo ? parseRepoOption(options.repo) : undefined;
        const client = connect(options);
        const [agent, events, result, bundle] = await explainMissingResult(client, id, () =>
          Promise.all([
            client.getAgent(id),
            client.events(id),
            client.result(id),
            client.resultBundle(id),
          ]),
        );
        requireCommits(agent, result);
        const repo = await targetRepository(agent, typedRepo);

        const github = resolveGitHubToken(process.env);
        if (!options.json)
          note(
            `using the GitHub token from ${github.source === 'gh' ? 'the gh login' : github.source}`,
          );
        const octokit = createGitHubClient({
          token: github.token,
          baseUrl: process.env.GITHUB_API_URL,
        });
        const outcome = await openAgentPullRequest(octokit, {
          agent,
          events,
          result,
          bundle,
          token: github.token,
          repo,
          branch: options.branch,
          base: options.base,
          draft: options.draft,
          branchOnly: options.branchOnly,
          force: options.force,
          cloneBaseUrl: process.env.GITHUB_SERVER_URL,
          onProgress: options.json ? undefined : note,
        });

        if (options.json) return printJson(outcome);

        const where = `${outcome.repo.owner}/${outcome.repo.repo}`;
        out(
          `pushed ${outcome.commitCount} commit(s) to ${where} branch ${outcome.branch} (${outcome.headSha.slice(0, 12)})`,
        );
        if (outcome.pullRequest) {
          const kind = outcome.pullRequest.existing
            ? 'updated'
            : outcome.pullRequest.draft
              ? 'opened draft'
              : 'opened';
          out(`${kind} pull request #${outcome.pullRequest.number}: ${outcome.pullRequest.url}`);
        }
      }),
    );
}

function parseRepoOption(value: string): RepoRef {
  const match = /^([A-Za-z0-9-]+)\/([A-Za-z0-9._-]+)$/.exec(value.trim());
  if (!match) {
    throw new AgentvmError(
      'VALIDATION_FAILED',
      `--repo must be OWNER/REPO, not "${value}"`,
      // `apply --repo` takes a directory; the same flag here names a GitHub repository.
      /^[./~]/.test(value.trim())
        ? `pr --repo names the GitHub repository (OWNER/REPO, e.g. octo/widgets), not a directory as apply --repo does; leave it out to use the issue the task came from, else the origin of the repository it was delegated from.`
        : 'Name the GitHub repository as OWNER/REPO, e.g. --repo octo/widgets, or leave --repo out to use the issue the task came from, else origin.',
    );
  }

  return { owner: match[1], repo: match[2].replace(/\.git$/, '') };
}
