import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { Octokit } from '@octokit/rest';
import Bottleneck from 'bottleneck';
import { registerSecret } from '../log';

const AgentvmOctokit = Octokit.plugin(retry, throttling);

/** The Octokit flavour agentvm uses: REST methods plus retry and throttling. */
export type GitHubClient = InstanceType<typeof AgentvmOctokit>;

export interface GitHubClientOptions {
  token: string;
  /** REST API root; `https://api.github.com` by default. Tests point it at a local fake. */
  baseUrl?: string;
  /** How many times a 5xx answer or a secondary rate limit is retried (default 3). */
  retries?: number;
  /**
   * Base unit of the retry back-off, in milliseconds (default 1000). A 5xx is retried after
   * 1, 4, 9 … units; a secondary rate limit after the `retry-after` seconds times units/1000.
   */
  retryBaseMs?: number;
  /** Minimum gap between two write requests, in milliseconds (default 1000, GitHub's guideline). */
  writeSpacingMs?: number;
}

/**
 * An Octokit client that retries 5xx answers and secondary rate limits with back-off. A primary
 * rate limit is not waited out (it may last an hour); it surfaces as an error that says so.
 * The token is registered with the log redactor and is never written anywhere.
 */
export function createGitHubClient(options: GitHubClientOptions): GitHubClient {
  registerSecret(options.token);

  const retries = options.retries ?? 3;
  const retryBaseMs = options.retryBaseMs ?? 1000;
  const writeSpacingMs = options.writeSpacingMs ?? 1000;
  const silent = () => undefined;

  return new AgentvmOctokit({
    auth: options.token,
    baseUrl: (options.baseUrl ?? 'https://api.github.com').replace(/\/+$/, ''),
    userAgent: 'agentvm',
    log: { debug: silent, info: silent, warn: silent, error: silent },
    retry: { retries, retryAfterBaseValue: retryBaseMs },
    throttle: {
      retryAfterBaseValue: retryBaseMs,
      // The plugin shares its default limiter groups across every client in the process; a
      // group of our own keeps the spacing per client and lets tests shorten it.
      write: new Bottleneck.Group({ maxConcurrent: 1, minTime: writeSpacingMs }),
      notifications: new Bottleneck.Group({ maxConcurrent: 1, minTime: writeSpacingMs * 3 }),
      onSecondaryRateLimit: (
        _retryAfterSeconds: number,
        _request: unknown,
        _octokit: unknown,
        retryCount: number,
      ) => retryCount < retries,
      onRateLimit: () => false,
    },
  });
}
