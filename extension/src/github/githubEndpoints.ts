/** Where GitHub is for this window: the REST API, the web host issues and remotes live on. */
export interface GitHubEndpoints {
  /** REST API root, without a trailing slash. */
  apiUrl: string;
  /** Host of issue links and git remotes: `github.com`, or the Enterprise server's. */
  webHost: string;
  /** Web root clones are made from when no local clone holds the base commit. */
  cloneBaseUrl: string;
  /** VS Code's authentication provider for that host. */
  authProviderId: 'github' | 'github-enterprise';
}

const PUBLIC_API_URL = 'https://api.github.com';

/**
 * Reads the GitHub endpoints: the `agentvm.github.apiUrl` setting, else GITHUB_API_URL, else
 * github.com's API. The web host comes from GITHUB_SERVER_URL when set; otherwise an Enterprise
 * server's `/api/v3` root names its own host and an `api.` host names the host without it. Any
 * other API root (a test server on loopback) keeps github.com as the web host.
 */
export function githubEndpoints(apiUrlSetting: string, env: NodeJS.ProcessEnv): GitHubEndpoints {
  const apiUrl = (apiUrlSetting.trim() || env.GITHUB_API_URL?.trim() || PUBLIC_API_URL).replace(
    /\/+$/,
    '',
  );
  const serverUrl = env.GITHUB_SERVER_URL?.trim().replace(/\/+$/, '');
  const webHost = serverUrl ? hostOf(serverUrl) : webHostOfApi(apiUrl);
  return {
    apiUrl,
    webHost,
    cloneBaseUrl: serverUrl || `https://${webHost}`,
    authProviderId: webHost === 'github.com' ? 'github' : 'github-enterprise',
  };
}

function webHostOfApi(apiUrl: string): string {
  let url: URL;
  try {
    url = new URL(apiUrl);
  } catch {
    return 'github.com';
  }

  const host = url.hostname.toLowerCase();
  if (/^\/api\/v3\/?$/.test(url.pathname)) return host;
  if (host.startsWith('api.')) return host.slice('api.'.length);

  return 'github.com';
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return 'github.com';
  }
}
