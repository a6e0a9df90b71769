import { githubResources } from '../../../protocol/policy';

export type GithubResource = (typeof githubResources)[number];
export type GithubAccess = 'read' | 'write';

/** What one REST call needs. `repository` is `owner/name` for calls under /repos. */
export interface GithubPermission {
  resource: GithubResource;
  access: GithubAccess;
  repository: string | null;
}

export interface GithubDecision {
  allowed: boolean;
  /** The permission the call needs; `null` for calls no scope can grant (GraphQL, unknown paths). */
  needed: GithubPermission | null;
  /** One sentence for the 403 body and the audit row. */
  reason: string;
}

/** Calls that reveal nothing about the token's owner or repositories, allowed for every grant. */
const alwaysAllowed = [/^\/rate_limit$/, /^\/meta$/, /^\/zen$/, /^\/octocat$/];

// Order matters: the first pattern that matches the path under /repos/{owner}/{name} wins, so label
// routes nested under issues and status routes nested under commits come before the general ones.
const repoRoutes: Array<[RegExp, GithubResource]> = [
  [/^\/labels(\/|$)/, 'labels'],
  [/^\/issues\/\d+\/labels(\/|$)/, 'labels'],
  [/^\/(statuses|commits\/[^/]+\/status(es)?)(\/|$)/, 'statuses'],
  [/^\/(check-runs|check-suites|commits\/[^/]+\/check-(runs|suites))(\/|$)/, 'checks'],
  [/^\/(issues|milestones|assignees)(\/|$)/, 'issues'],
  [/^\/pulls(\/|$)/, 'pulls'],
  [
    /^\/(contents|readme|git|commits|branches|compare|tarball|zipball|tags|releases)(\/|$)/,
    'contents',
  ],
  [/^\/actions(\/|$)/, 'actions'],
  [/^$/, 'metadata'],
  [/^\/(languages|topics|contributors)(\/|$)/, 'metadata'],
];

/**
 * The permission a GitHub REST call needs, from its method and path (query string ignored; a GitHub
 * Enterprise `/api/v3` prefix is stripped). Returns `null` for calls this table does not know,
 * which are refused: an unknown path is never guessed to be harmless.
 */
export function requiredGithubPermission(method: string, rawPath: string): GithubPermission | null {
  const path = normalizePath(rawPath);
  const access: GithubAccess = ['GET', 'HEAD', 'OPTIONS'].includes(method.toUpperCase())
    ? 'read'
    : 'write';

  const repo = /^\/repos\/([^/]+)\/([^/]+)(\/.*)?$/.exec(path);
  if (repo) {
    const repository = `${repo[1]}/${repo[2]}`.toLowerCase();
    const rest = repo[3] ?? '';
    const route = repoRoutes.find(([pattern]) => pattern.test(rest));
    // Writing repository metadata (rename, delete) is administration, which no scope grants.
    if (!route || (route[1] === 'metadata' && access === 'write')) return null;
    return { resource: route[1], access, repository };
  }

  if (access === 'read' && /^\/search\/(issues)$/.test(path)) {
    return { resource: 'issues', access, repository: null };
  }

  if (access === 'read' && /^\/search\/(code|commits)$/.test(path)) {
    return { resource: 'contents', access, repository: null };
  }
  return null;
}

/**
 * Decide a GitHub REST call against a profile's grant. `repositories`, when given, limits calls
 * under /repos to those `owner/name`s (case-insensitive).
 */
export function decideGithubCall(
  grant: { scopes: readonly string[]; repositories?: readonly string[] },
  method: string,
  rawPath: string,
): GithubDecision {
  const path = normalizePath(rawPath);
  if (/(^|\/)\.{1,2}(\/|$)|%2e|%2f|%5c|\\/i.test(path)) {
    return {
      allowed: false,
      needed: null,
      reason: `${path} has dot segments or encoded separators`,
    };
  }

  if (alwaysAllowed.some((pattern) => pattern.test(path))) {
    return { allowed: true, needed: null, reason: `${path} needs no permission` };
  }

  if (path === '/graphql') {
    return {
      allowed: false,
      needed: null,
      reason: 'GitHub GraphQL calls cannot be checked against scopes; use the REST API',
    };
  }

  const needed = requiredGithubPermission(method, path);
  if (!needed) {
    return {
      allowed: false,
      needed: null,
      reason: `${method.toUpperCase()} ${path} is not a GitHub API call agentvm knows how to scope`,
    };
  }

  const wanted = `${needed.resource}:${needed.access}`;
  if (!grantCovers(grant.scopes, needed)) {
    return {
      allowed: false,
      needed,
      reason: `${method.toUpperCase()} ${path} needs ${wanted}, which the profile does not grant`,
    };
  }

  const repositories = grant.repositories?.map((name) => name.toLowerCase());
  if (needed.repository && repositories && !repositories.includes(needed.repository)) {
    return {
      allowed: false,
      needed,
      reason: `repository ${needed.repository} is not among the profile's GitHub repositories`,
    };
  }
  return { allowed: true, needed, reason: `granted by ${grantingScope(grant.scopes, needed)}` };
}

function grantCovers(scopes: readonly string[], needed: GithubPermission): boolean {
  return grantingScope(scopes, needed) !== null;
}

function grantingScope(scopes: readonly string[], needed: GithubPermission): string | null {
  const candidates = [`${needed.resource}:write`];
  if (needed.access === 'read') candidates.push(`${needed.resource}:read`);

  // Any repository grant lets a client read the repository's basic metadata, as on GitHub itself.
  if (needed.resource === 'metadata' && needed.access === 'read' && scopes.length > 0)
    return scopes[0];
  return scopes.find((scope) => candidates.includes(scope)) ?? null;
}

function normalizePath(rawPath: string): string {
  const withoutQuery = rawPath.split(/[?#]/)[0];
  const withoutPrefix = withoutQuery.replace(/^\/api\/v3(?=\/|$)/, '');
  const collapsed = withoutPrefix.replace(/\/{2,}/g, '/').replace(/\/$/, '');
  return collapsed === '' ? '/' : collapsed;
}
