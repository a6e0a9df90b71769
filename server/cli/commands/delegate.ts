import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { bundleRepository, type RepoUpload } from '../../../client/repoBundle';
import { AgentvmError } from '../../../protocol/errors';
import { checkRemoteMatches } from '../../github/checkRemoteMatches';
import { cloneRepository } from '../../github/cloneRepository';
import { createGitHubClient } from '../../github/createGitHubClient';
import { fetchIssueTask } from '../../github/fetchIssueTask';
import { parseIssueRef } from '../../github/parseIssueRef';
import { resolveGitHubToken } from '../../github/resolveGitHubToken';
import { action, connect, note, printJson, type GlobalOptions } from '../context';
import { exitCodes } from '../exitCodes';
import { followAgent } from '../follow';
import { describeNextStep, pauseOrEndStates } from './nextStep';

interface DelegateOptions extends GlobalOptions {
  repo?: string;
  issue?: string;
  profile?: string;
  title?: string;
  allowDirty?: boolean;
  includeUncommitted?: boolean;
  detach?: boolean;
}

/** The profile of a delegation that names none (no --profile, no AGENTVM_PROFILE). */
const defaultProfile = 'demo';

/** Printed when the default profile was used without being asked for: it runs no model. */
export const defaultProfileNote = `note: no --profile given, so this is the scripted ${defaultProfile} agent (no model; it only knows the demo task); pick a real one with --profile NAME or AGENTVM_PROFILE=NAME (list them with \`agentvm profiles\`)`;

export function registerDelegateCommand(program: Command): void {
  program
    .command('delegate')
    .description(
      'hand a task to an agent in its own microVM and follow it until it needs review or ends',
    )
    .argument('[text...]', 'the task, in words (with --issue: extra instructions)')
    .option('--repo <dir>', 'repository the agent works on (default: the current directory)')
    .option('--issue <ref>', 'take the task from a GitHub issue: OWNER/REPO#N or its URL')
    .option(
      '--profile <name>',
      `agent profile (see \`agentvm profiles\`; default $AGENTVM_PROFILE, else ${defaultProfile}, the scripted demo agent)`,
    )
    .option('--title <title>', 'short title (default: the first line of the task)')
    .addOption(
      new Option(
        '--allow-dirty',
        'send HEAD even if the work tree has uncommitted changes (they are not sent)',
      ).conflicts('includeUncommitted'),
    )
    .option(
      '--include-uncommitted',
      'send uncommitted changes too, as a snapshot commit on top of HEAD',
    )
    .option('--detach', 'print the agent id and return at once')
    .option('--json', 'print the agent as JSON')
    .action(
      action(async (words: string[], options: DelegateOptions) => {
        const chosenProfile = options.profile ?? (process.env.AGENTVM_PROFILE || undefined);
        const client = connect(options);
        const task = options.issue
          ? await issueTask(options, words)
          : await plainTask(options, words);
        const repo = task.repo;
        if (repo.uncommitted.length > 0) {
          const what = repo.uncommittedIncluded
            ? 'included as a snapshot commit'
            : 'NOT included (only committed work is sent)';
          note(`note: ${repo.uncommitted.length} uncommitted change(s) ${what}`);
        }

        const agent = await client.createAgent({
          text: task.text,
          title: options.title ?? task.title,
          issue: task.issue,
          profile: chosenProfile ?? defaultProfile,
          repo,
        });
        if (!options.json) {
          note(
            `agent ${agent.id} queued (profile ${agent.profile}, ${repo.branch} at ${repo.baseCommit.slice(0, 12)})`,
          );
        }
        if (!chosenProfile) note(defaultProfileNote);
        if (options.detach) {
          if (options.json) printJson(agent);
          else process.stdout.write(agent.id + '\n');
          return exitCodes.ok;
        }

        // Progress goes to stderr: stdout holds the command's result alone (the id or JSON).
        const final = await followAgent(client, agent.id, {
          until: pauseOrEndStates,
          timeline: options.json ? 'none' : 'stderr',
        });
        if (options.json) printJson(final);
        else describeNextStep(final);
        return final.state === 'failed' || final.state === 'cancelled'
          ? exitCodes.agentFailed
          : exitCodes.ok;
      }),
    );
}

interface PreparedTask {
  text: string;
  issue?: string;
  title?: string;
  repo: RepoUpload;
}

async function plainTask(options: DelegateOptions, words: string[]): Promise<PreparedTask> {
  if (words.length === 0) {
    throw new AgentvmError(
      'VALIDATION_FAILED',
      'say what the agent should do',
      'agentvm delegate "Fix the failing test"',
    );
  }

  const repo = await bundleRepository(options.repo ?? '.', {
    allowDirty: options.allowDirty,
    includeUncommitted: options.includeUncommitted,
  });
  return { text: words.join(' '), repo };
}

/** The task from a GitHub issue; the repository is the local clone (its remote must match) or a fresh clone. */
async function issueTask(options: DelegateOptions, words: string[]): Promise<PreparedTask> {
  const ref = parseIssueRef(options.issue!);
  const bundleOptions = {
    allowDirty: options.allowDirty,
    includeUncommitted: options.includeUncommitted,
  };
  // What the user typed is checked before any credential or network: a clone of another
  // repository, or one with uncommitted work, is reported as that, not as a missing token.
  const localRepo = options.repo
    ? await checkRemoteMatches(options.repo, ref).then(() =>
        bundleRepository(options.repo!, bundleOptions),
      )
    : undefined;
  const github = resolveGitHubToken(process.env);
  const octokit = createGitHubClient({ token: github.token, baseUrl: process.env.GITHUB_API_URL });
  const issue = await fetchIssueTask(octokit, ref);
  const extra =
    words.length > 0 ? `\n\n## Instructions from the delegator\n\n${words.join(' ')}\n` : '';
  const issueName = `${ref.owner}/${ref.repo}#${ref.number}`;

  if (localRepo) {
    return { text: issue.text + extra, title: issue.title, issue: issueName, repo: localRepo };
  }

  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-clone-'));
  try {
    note(`cloning ${ref.owner}/${ref.repo} (no --repo given)...`);
    const clone = path.join(scratch, ref.repo);
    await cloneRepository(ref, clone, github.token, { baseUrl: process.env.GITHUB_SERVER_URL });
    const repo = await bundleRepository(clone, bundleOptions);
    return {
      text: issue.text + extra,
      title: issue.title,
      issue: issueName,
      repo: { ...repo, path: undefined },
    };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
