import { z } from 'zod';
import { AgentvmError } from '../../protocol/errors';

/** A repository on GitHub. */
export const repoRefSchema = z.object({ owner: z.string().min(1), repo: z.string().min(1) });
export type RepoRef = z.infer<typeof repoRefSchema>;

/** One issue on GitHub; stored with an agent delegated from it. */
export const issueRefSchema = repoRefSchema.extend({ number: z.number().int().positive() });
export type IssueRef = z.infer<typeof issueRefSchema>;

export interface IssueRefOptions {
  /** Web host of the GitHub instance; `github.com` unless GitHub Enterprise. */
  host?: string;
}

// GitHub's own limits: owners are letters, digits and single hyphens; repositories add `.` and `_`.
const ownerPattern = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})';
const repoPattern = '[A-Za-z0-9._-]{1,100}';
const shortForm = new RegExp(`^(${ownerPattern})/(${repoPattern})#(\\d+)$`);

/**
 * Reads an issue reference given as `OWNER/REPO#N` or as the issue's web address
 * (`https://github.com/OWNER/REPO/issues/N`, with or without scheme, query or fragment).
 */
export function parseIssueRef(input: string, options: IssueRefOptions = {}): IssueRef {
  const host = (options.host ?? 'github.com').toLowerCase();
  const text = input.trim();

  const short = shortForm.exec(text);
  if (short) return validated(input, short[1], short[2], short[3]);

  const url = parseUrl(text);
  if (!url) throw badRef(input, 'expected OWNER/REPO#N or an issue URL');

  const urlHost = url.hostname.toLowerCase().replace(/^www\./, '');
  if (urlHost !== host) throw badRef(input, `the URL is not on ${host}`);

  const segments = url.pathname.split('/').filter((segment) => segment.length > 0);
  if (segments.length === 4 && segments[2] === 'pull') {
    throw badRef(input, 'that is a pull request; pass the issue it is about');
  }

  if (segments.length !== 4 || segments[2] !== 'issues' || !/^\d+$/.test(segments[3])) {
    throw badRef(input, 'the URL does not point at an issue (…/OWNER/REPO/issues/N)');
  }

  return validated(input, segments[0], segments[1], segments[3]);
}

/** `OWNER/REPO#N`, the form GitHub itself links in markdown. */
export function formatIssueRef(ref: IssueRef): string {
  return `${ref.owner}/${ref.repo}#${ref.number}`;
}

/** The issue's web address on `host` (github.com by default). */
export function issueUrl(ref: IssueRef, host = 'github.com'): string {
  return `https://${host}/${ref.owner}/${ref.repo}/issues/${ref.number}`;
}

function validated(input: string, owner: string, repoName: string, numberText: string): IssueRef {
  const repo = repoName.replace(/\.git$/, '');
  if (!new RegExp(`^${ownerPattern}$`).test(owner) || owner.includes('--')) {
    throw badRef(input, `"${owner}" is not a valid owner name`);
  }

  if (!new RegExp(`^${repoPattern}$`).test(repo) || repo === '.' || repo === '..') {
    throw badRef(input, `"${repo}" is not a valid repository name`);
  }

  const number = Number(numberText);
  if (!Number.isSafeInteger(number) || number < 1)
    throw badRef(input, 'the issue number must be 1 or more');

  return { owner, repo, number };
}

function parseUrl(text: string): URL | null {
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text);
  // Without a scheme only `host.name/...` reads as a URL; `owner/repo` is a malformed short form.
  if (!hasScheme && !/^[^/]+\.[^/]+\//.test(text)) return null;

  const withScheme = hasScheme ? text : `https://${text}`;
  try {
    const url = new URL(withScheme);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url : null;
  } catch {
    return null;
  }
}

function badRef(input: string, reason: string): AgentvmError {
  return new AgentvmError('BAD_ISSUE_REF', `"${input}" is not a GitHub issue: ${reason}`);
}
