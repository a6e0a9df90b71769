import { githubResources } from '../../../protocol/policy';

export type GithubResource = (typeof githubResources)[number];
export type GithubAccess = 'read' | 'write';

/** What one REST call needs. `repository` is `owner/name` for calls under /repos. */
export interface GithubPermission {
  resource: GithubResource;
  access: GithubAccess;
  repository: string | null;
  /**
   * Further permissions the call needs, all of them: merging a pull request or updating its branch
   * writes the base or head branch, so GitHub wants contents:write next to pulls:write.
   */
  alsoNeeds?: Array<{ resource: GithubResource; access: GithubAccess }>;
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

/** Pull request calls that write a branch: GitHub gates them on contents:write too. */
const branchWritingPullRoutes = /^\/pulls\/\d+\/(merge|update-branch)$/;

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

    const permission: GithubPermission = { resource: route[1], access, repository };
    if (access === 'write' && branchWritingPullRoutes.test(rest)) {
      permission.alsoNeeds = [{ resource: 'contents', access: 'write' }];
    }
    return permission;
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

  const missing = [needed, ...(needed.alsoNeeds ?? [])]
    .filter((permission) => grantingScope(grant.scopes, permission) === null)
    .map((permission) => `${permission.resource}:${permission.access}`);
  if (missing.length > 0) {
    return {
      allowed: false,
      needed,
      reason: `${method.toUpperCase()} ${path} needs ${missing.join(' and ')}, which the profile does not grant`,
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
  const granting = [needed, ...(needed.alsoNeeds ?? [])].map((permission) =>
    grantingScope(grant.scopes, permission),
  );
  return { allowed: true, needed, reason: `granted by ${granting.join(' and ')}` };
}

function grantingScope(
  scopes: readonly string[],
  needed: Pick<GithubPermission, 'resource' | 'access'>,
): string | null {
  const candidates = [`${needed.resource}:write`];
  if (needed.access === 'read') candidates.push(`${needed.resource}:read`);
  // The repository object (GET /repos/o/r: default branch, visibility, topics...) is what a reader
  // of its code sees anyway; scopes on issues or pulls alone do not reveal it here, though GitHub
  // implies metadata for any scope. Grant metadata:read for such profiles (docs/permissions.md).
  if (needed.resource === 'metadata') candidates.push('contents:read', 'contents:write');

  return scopes.find((scope) => candidates.includes(scope)) ?? null;
}

function normalizePath(rawPath: string): string {
  const withoutQuery = rawPath.split(/[?#]/)[0];
  const withoutPrefix = withoutQuery.replace(/^\/api\/v3(?=\/|$)/, '');
  const collapsed = withoutPrefix.replace(/\/{2,}/g, '/').replace(/\/$/, '');
  return collapsed === '' ? '/' : collapsed;
}
