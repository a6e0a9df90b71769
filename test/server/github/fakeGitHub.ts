import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeGitObjects, identity, type GitObject } from './fakeGitObjects';

/** One request the fake received, in arrival order. */
export interface RecordedCall {
  method: string;
  path: string;
  body: any;
}

/** A canned failure for the next matching request(s). */
export interface Fault {
  method: string;
  path: RegExp;
  status: number;
  message?: string;
  headers?: Record<string, string>;
  /** How many matching requests fail (default 1). */
  times?: number;
}

interface FakeIssue {
  number: number;
  title: string;
  body: string | null;
  labels: Array<string | { name: string }>;
  user: string;
  comments: Array<{ user: string; body: string; createdAt: string }>;
  /** ISO time of the last update; the list of open issues is sorted by it (default: creation order). */
  updatedAt?: string;
  state?: 'open' | 'closed';
}

interface FakeRepo {
  owner: string;
  name: string;
  defaultBranch: string;
  refs: Map<string, string>;
  issues: Map<number, FakeIssue>;
  pulls: Array<{
    number: number;
    head: string;
    base: string;
    title: string;
    body: string;
    draft: boolean;
    state: string;
  }>;
}

/**
 * A GitHub REST server on 127.0.0.1 for tests. It speaks the paths agentvm uses (repos, issues,
 * comments with pagination, git blobs/trees/commits/refs, pulls) with the shapes GitHub answers,
 * and keeps real git objects: blob, tree and commit ids are computed exactly as git does, so a
 * faithfully recreated commit gets the same id as the local one.
 */
export class FakeGitHub {
  readonly calls: RecordedCall[] = [];
  readonly git = new FakeGitObjects();
  private readonly repos = new Map<string, FakeRepo>();
  private readonly faults: Fault[] = [];
  private server: http.Server | null = null;
  private url = '';

  /** Requests must carry this token (`Authorization: token …`); null accepts any. */
  constructor(private readonly token: string | null = 'test-token') {}

  async start(): Promise<string> {
    this.server = http.createServer((request, response) => void this.handle(request, response));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  addRepo(owner: string, name: string, defaultBranch = 'main'): void {
    this.repos.set(`${owner}/${name}`.toLowerCase(), {
      owner,
      name,
      defaultBranch,
      refs: new Map(),
      issues: new Map(),
      pulls: [],
    });
  }

  addIssue(owner: string, name: string, issue: FakeIssue): void {
    this.repo(owner, name)!.issues.set(issue.number, issue);
  }

  /** Copies every object reachable from `commit` in a local repository and sets `branch` to it. */
  seedFromGit(owner: string, name: string, repoDir: string, commit: string, branch: string): void {
    const listing = execFileSync('git', ['-C', repoDir, 'rev-list', '--objects', commit], {
      encoding: 'utf8',
    });
    for (const line of listing.split('\n').filter((entry) => entry.length > 0)) {
      const sha = line.slice(0, 40);
      const type = execFileSync('git', ['-C', repoDir, 'cat-file', '-t', sha], {
        encoding: 'utf8',
      }).trim();
      const content = execFileSync('git', ['-C', repoDir, 'cat-file', type, sha]);
      this.git.store(type as GitObject['type'], content);
    }

    this.repo(owner, name)!.refs.set(`refs/heads/${branch}`, commit);
  }

  failNext(fault: Fault): void {
    this.faults.push({ ...fault, times: fault.times ?? 1 });
  }

  refOf(owner: string, name: string, branch: string): string | undefined {
    return this.repo(owner, name)?.refs.get(`refs/heads/${branch}`);
  }

  pullsOf(owner: string, name: string): FakeRepo['pulls'] {
    return this.repo(owner, name)?.pulls ?? [];
  }

  /** Calls whose method and path match, in order. */
  callsTo(method: string, path: RegExp): RecordedCall[] {
    return this.calls.filter((call) => call.method === method && path.test(call.path));
  }

  /** Parses a stored commit object. */
  commit(sha: string): { tree: string; parents: string[]; raw: string } {
    return this.git.commit(sha);
  }

  private repo(owner: string, name: string): FakeRepo | undefined {
    return this.repos.get(`${owner}/${name}`.toLowerCase());
  }

  private async handle(
    request: http.IncomingMessage,
    response: http.ServerResponse,
  ): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(request.url ?? '/', this.url);
    const method = request.method ?? 'GET';
    const body = text ? JSON.parse(text) : undefined;
    this.calls.push({ method, path: url.pathname + url.search, body });

    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      response.end(payload === undefined ? '' : JSON.stringify(payload));
    };

    const fault = this.faults.find(
      (entry) => entry.method === method && entry.path.test(url.pathname) && entry.times! > 0,
    );
    if (fault) {
      fault.times! -= 1;
      send(
        fault.status,
        {
          message: fault.message ?? http.STATUS_CODES[fault.status],
          documentation_url: 'https://docs.github.com/rest',
        },
        fault.headers,
      );
      return;
    }

    const authorization = request.headers.authorization ?? '';
    if (
      this.token !== null &&
      authorization !== `token ${this.token}` &&
      authorization !== `bearer ${this.token}`
    ) {
      send(401, {
        message: 'Bad credentials',
        documentation_url: 'https://docs.github.com/rest',
        status: '401',
      });
      return;
    }

    const match = /^\/repos\/([^/]+)\/([^/]+)(\/.*)?$/.exec(url.pathname);
    const repo = match
      ? this.repo(decodeURIComponent(match[1]), decodeURIComponent(match[2]))
      : undefined;
    if (!match || !repo) {
      send(404, {
        message: 'Not Found',
        documentation_url: 'https://docs.github.com/rest',
        status: '404',
      });
      return;
    }

    try {
      const [status, payload, headers] = this.route(repo, method, match[3] ?? '', url, body);
      send(status, payload, headers);
    } catch (error) {
      send(422, { message: (error as Error).message, status: '422' });
    }
  }

  private route(
    repo: FakeRepo,
    method: string,
    rest: string,
    url: URL,
    body: any,
  ): [number, unknown, Record<string, string>?] {
    const full = `${repo.owner}/${repo.name}`;
    const htmlBase = `https://github.com/${full}`;
    let m: RegExpExecArray | null;

    if (method === 'GET' && rest === '') {
      return [
        200,
        {
          id: 1,
          name: repo.name,
          full_name: full,
          owner: { login: repo.owner },
          default_branch: repo.defaultBranch,
          private: false,
          html_url: htmlBase,
        },
      ];
    }

    if (method === 'GET' && rest === '/issues') {
      // GitHub lists pull requests among issues, marked by a `pull_request` key.
      const state = url.searchParams.get('state') ?? 'open';
      const perPage = Number(url.searchParams.get('per_page') ?? 30);
      const issues = [...repo.issues.values()]
        .filter((issue) => state === 'all' || (issue.state ?? 'open') === state)
        .map((issue) => ({
          number: issue.number,
          title: issue.title,
          state: issue.state ?? 'open',
          html_url: `${htmlBase}/issues/${issue.number}`,
          user: { login: issue.user },
          labels: issue.labels.map((label) =>
            typeof label === 'string' ? label : { id: 1, name: label.name, color: 'ededed' },
          ),
          comments: issue.comments.length,
          updated_at: issue.updatedAt ?? new Date(Date.UTC(2024, 0, issue.number)).toISOString(),
        }));
      const pulls = repo.pulls
        .filter((pull) => state === 'all' || pull.state === state)
        .map((pull) => ({
          number: pull.number,
          title: pull.title,
          state: pull.state,
          html_url: `${htmlBase}/pull/${pull.number}`,
          user: { login: repo.owner },
          labels: [],
          comments: 0,
          updated_at: new Date(Date.UTC(2024, 0, pull.number)).toISOString(),
          pull_request: { html_url: `${htmlBase}/pull/${pull.number}` },
        }));
      const sorted = [...issues, ...pulls].sort((a, b) => b.updated_at.localeCompare(a.updated_at));
      return [200, sorted.slice(0, perPage)];
    }

    if (method === 'GET' && (m = /^\/issues\/(\d+)$/.exec(rest))) {
      const issue = repo.issues.get(Number(m[1]));
      if (!issue) return [404, { message: 'Not Found' }];

      return [
        200,
        {
          number: issue.number,
          title: issue.title,
          body: issue.body,
          state: 'open',
          html_url: `${htmlBase}/issues/${issue.number}`,
          user: { login: issue.user },
          labels: issue.labels.map((label) =>
            typeof label === 'string' ? label : { id: 1, name: label.name, color: 'ededed' },
          ),
          comments: issue.comments.length,
        },
      ];
    }

    if (method === 'GET' && (m = /^\/issues\/(\d+)\/comments$/.exec(rest))) {
      const issue = repo.issues.get(Number(m[1]));
      if (!issue) return [404, { message: 'Not Found' }];

      const perPage = Number(url.searchParams.get('per_page') ?? 30);
      const page = Number(url.searchParams.get('page') ?? 1);
      const slice = issue.comments.slice((page - 1) * perPage, page * perPage);
      const lastPage = Math.max(1, Math.ceil(issue.comments.length / perPage));
      const headers: Record<string, string> = {};
      if (page < lastPage) {
        const next = new URL(url.toString());
        next.searchParams.set('page', String(page + 1));
        headers.link = `<${next.toString()}>; rel="next"`;
      }

      const items = slice.map((comment, index) => ({
        id: (page - 1) * perPage + index + 1,
        body: comment.body,
        user: { login: comment.user },
        created_at: comment.createdAt,
        html_url: `${htmlBase}/issues/${issue.number}#issuecomment-${index}`,
      }));
      return [200, items, headers];
    }

    if (method === 'POST' && rest === '/git/blobs') {
      const content = Buffer.from(body.content, body.encoding === 'base64' ? 'base64' : 'utf8');
      const sha = this.git.store('blob', content);
      return [201, { sha, url: `${this.url}/repos/${full}/git/blobs/${sha}` }];
    }

    if (method === 'POST' && rest === '/git/trees') {
      const sha = this.git.createTree(body.base_tree ?? null, body.tree);
      return [
        201,
        { sha, url: `${this.url}/repos/${full}/git/trees/${sha}`, tree: [], truncated: false },
      ];
    }

    if (method === 'POST' && rest === '/git/commits') {
      if (this.git.objects.get(body.tree)?.type !== 'tree')
        throw new Error(`Tree SHA does not exist`);
      for (const parent of body.parents) {
        if (this.git.objects.get(parent)?.type !== 'commit')
          throw new Error(`Parent SHA does not exist or is not a commit object`);
      }

      const lines = [
        `tree ${body.tree}`,
        ...body.parents.map((parent: string) => `parent ${parent}`),
      ];
      lines.push(
        `author ${identity(body.author)}`,
        `committer ${identity(body.committer ?? body.author)}`,
      );
      const sha = this.git.store(
        'commit',
        Buffer.from(`${lines.join('\n')}\n\n${body.message}`, 'utf8'),
      );
      return [
        201,
        {
          sha,
          tree: { sha: body.tree },
          parents: body.parents.map((parent: string) => ({ sha: parent })),
          message: body.message,
        },
      ];
    }

    if (method === 'GET' && (m = /^\/git\/commits\/(\w+)$/.exec(rest))) {
      const object = this.git.objects.get(m[1]);
      if (object?.type !== 'commit') return [404, { message: 'Not Found' }];

      return [
        200,
        {
          sha: m[1],
          tree: { sha: this.commit(m[1]).tree },
          parents: this.commit(m[1]).parents.map((sha) => ({ sha })),
        },
      ];
    }

    if (method === 'GET' && (m = /^\/git\/ref\/(.+)$/.exec(rest))) {
      const name = `refs/${decodeURIComponent(m[1])}`;
      const sha = repo.refs.get(name);
      if (!sha) return [404, { message: 'Not Found' }];

      return [200, { ref: name, object: { sha, type: 'commit' } }];
    }

    if (method === 'POST' && rest === '/git/refs') {
      if (repo.refs.has(body.ref)) throw new Error('Reference already exists');
      if (this.git.objects.get(body.sha)?.type !== 'commit')
        throw new Error('Object does not exist');

      repo.refs.set(body.ref, body.sha);
      return [201, { ref: body.ref, object: { sha: body.sha, type: 'commit' } }];
    }

    if (method === 'PATCH' && (m = /^\/git\/refs\/(.+)$/.exec(rest))) {
      const name = `refs/${decodeURIComponent(m[1])}`;
      const current = repo.refs.get(name);
      if (!current) throw new Error('Reference does not exist');
      if (!body.force && !this.git.isAncestor(current, body.sha))
        throw new Error('Update is not a fast forward');

      repo.refs.set(name, body.sha);
      return [200, { ref: name, object: { sha: body.sha, type: 'commit' } }];
    }

    if (method === 'POST' && rest === '/pulls') {
      if (!repo.refs.has(`refs/heads/${body.head}`))
        throw new Error(`head: invalid "${body.head}"`);
      if (!repo.refs.has(`refs/heads/${body.base}`))
        throw new Error(`base: invalid "${body.base}"`);
      if (repo.pulls.some((pull) => pull.head === body.head && pull.state === 'open')) {
        throw new Error(`A pull request already exists for ${repo.owner}:${body.head}.`);
      }

      const pull = {
        number: 100 + repo.pulls.length,
        head: body.head,
        base: body.base,
        title: body.title,
        body: body.body,
        draft: body.draft === true,
        state: 'open',
      };
      repo.pulls.push(pull);
      return [
        201,
        {
          number: pull.number,
          html_url: `${htmlBase}/pull/${pull.number}`,
          draft: pull.draft,
          state: 'open',
        },
      ];
    }

    if (method === 'GET' && rest === '/pulls') {
      const head = url.searchParams.get('head')?.split(':')[1];
      const found = repo.pulls.filter(
        (pull) => pull.state === 'open' && (!head || pull.head === head),
      );
      return [
        200,
        found.map((pull) => ({
          number: pull.number,
          html_url: `${htmlBase}/pull/${pull.number}`,
          draft: pull.draft,
        })),
      ];
    }

    if (method === 'PATCH' && (m = /^\/pulls\/(\d+)$/.exec(rest))) {
      const pull = repo.pulls.find((entry) => entry.number === Number(m![1]));
      if (!pull) return [404, { message: 'Not Found' }];

      if (typeof body.body === 'string') pull.body = body.body;
      return [
        200,
        { number: pull.number, html_url: `${htmlBase}/pull/${pull.number}`, draft: pull.draft },
      ];
    }

    return [404, { message: 'Not Found' }];
  }
}
