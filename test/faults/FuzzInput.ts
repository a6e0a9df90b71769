/** What the fuzzer knows that is valid, so it can send near-misses as well as garbage. */
export interface FuzzSeeds {
  token: string;
  agentId: string;
  validBody: Record<string, unknown>;
}

export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

const methods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'];

const routes = [
  '/v1/health',
  '/v1/whoami',
  '/v1/profiles',
  '/v1/agents',
  '/v1/agents/:id',
  '/v1/agents/:id/events',
  '/v1/agents/:id/console',
  '/v1/agents/:id/review',
  '/v1/agents/:id/resume',
  '/v1/agents/:id/cancel',
  '/v1/agents/:id/result',
  '/v1/agents/:id/result/bundle',
  '/v1/agents/:id/guest',
  '/v1/agents/:id/egress',
  '/v1/audit',
  '/v1/audit/verify',
  '/v1/events',
  '/v2/agents',
  '/',
];

/**
 * A seeded generator of malformed broker input: HTTP requests (paths, ids, queries, headers,
 * tokens, bodies), WebSocket frames and raw bytes. The same seed gives the same sequence.
 */
export class FuzzInput {
  private state: number;

  constructor(
    seed: number,
    private readonly seeds: FuzzSeeds,
  ) {
    this.state = seed >>> 0 || 1;
  }

  request(): FuzzRequest {
    const method = this.pick(methods);
    const route = this.pick(routes);
    const query = this.chance(0.3) ? `?${this.query()}` : '';
    const headers: Record<string, string> = {};
    const authorization = this.authorization();
    if (authorization !== undefined) headers.authorization = authorization;
    if (this.chance(0.5))
      headers['content-type'] = this.pick([
        'application/json',
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        '',
        'application/json; charset=utf-16',
      ]);
    if (this.chance(0.1)) headers['x-' + this.word(8)] = this.printable(this.int(0, 2000));

    const request: FuzzRequest = { method, path: route.replace(':id', this.id()) + query, headers };
    if (!['GET', 'HEAD'].includes(method) && this.chance(0.8)) request.body = this.body();
    return request;
  }

  /** A token: the real one, a near miss, or garbage. */
  token(): string {
    return this.pick([
      () => this.seeds.token,
      () => this.seeds.token.slice(0, -1),
      () => this.seeds.token + 'x',
      () => this.seeds.token.toUpperCase(),
      () => '',
      () => this.printable(this.int(1, 300)),
      () => "' OR 1=1 --",
    ])();
  }

  /** One WebSocket frame: text or binary, valid shape with bad values, or not JSON at all. */
  frame(): string | Buffer {
    return this.pick([
      () => 'subscribe',
      () => '{',
      () => '',
      () => 'null',
      () => '[]',
      () => JSON.stringify({ type: 'subscribe', agentId: this.id() }),
      () =>
        JSON.stringify({ type: 'subscribe', afterEventId: this.pick([-1, 1.5, 'x', 1e308, null]) }),
      () => JSON.stringify({ type: this.word(6), agentId: this.seeds.agentId }),
      () => JSON.stringify({ type: 'subscribe', agentId: { $ne: null } }),
      () => JSON.stringify(this.json(4)),
      () => this.deepNesting(this.int(100, 5000)),
      () => Buffer.from(this.bytes(this.int(1, 512))),
      () => 'x'.repeat(this.int(60_000, 70_000)),
    ])();
  }

  /** Bytes for a raw TCP connection: broken request lines, bad headers, lying lengths. */
  rawHttp(): Buffer {
    return this.pick([
      () => Buffer.from(this.bytes(this.int(1, 4096))),
      () => Buffer.from('GET /v1/health HTTP/9.9\r\n\r\n'),
      () =>
        Buffer.from(
          `POST /v1/agents HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\nAuthorization: Bearer ${this.seeds.token}\r\n\r\n{"text":`,
        ),
      () =>
        Buffer.from(
          `POST /v1/agents HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n${this.printable(20)}\r\n`,
        ),
      () =>
        Buffer.from(`GET /v1/agents HTTP/1.1\r\n${'X-A: b\r\n'.repeat(this.int(100, 3000))}\r\n`),
      () => Buffer.from(`GET /${'a'.repeat(this.int(10_000, 90_000))} HTTP/1.1\r\nHost: x\r\n\r\n`),
      () => Buffer.from('\r\n\r\n\r\n'),
      () =>
        Buffer.from(
          `GET ${this.pick(['//[', '/v1/events?%', '//:99999/v1/events', '/v1/events/../x'])} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${this.pick(['dGhlIHNhbXBsZSBub25jZQ==', '', '!!'])}\r\n\r\n`,
        ),
    ])();
  }

  private authorization(): string | undefined {
    return this.pick([
      () => `Bearer ${this.seeds.token}`,
      () => `Bearer ${this.seeds.token}`,
      () => `Bearer ${this.seeds.token}`,
      () => undefined,
      () => `Bearer ${this.token()}`,
      () => `bearer ${this.seeds.token}`,
      () => `Basic ${Buffer.from('a:b').toString('base64')}`,
      () => `Bearer ${this.seeds.token} extra`,
      () => 'Bearer',
    ])();
  }

  private id(): string {
    return this.pick([
      () => this.seeds.agentId,
      () => this.seeds.agentId,
      () => this.seeds.agentId.toUpperCase(),
      () => this.word(10),
      () => '',
      () => '..',
      () => '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      () => '%',
      () => '%zz',
      () => '%00',
      () => '%F0%9F%92%A9',
      () => encodeURIComponent('\u0000\u202e'),
      () => 'a'.repeat(this.int(200, 20_000)),
      () => "1' OR '1'='1",
      () => '-1',
    ])();
  }

  private query(): string {
    const name = this.pick(['after', 'limit', 'agent', 'token', this.word(4)]);
    const value = this.pick([
      '-1',
      '1.5',
      'abc',
      '1e999',
      '99999999999999999999',
      '',
      '%',
      '0x10',
      this.seeds.agentId,
      '%00',
    ]);
    return `${name}=${value}`;
  }

  private body(): string {
    return this.pick([
      () => '',
      () => '{',
      () => 'null',
      () => '[]',
      () => '"string"',
      () => this.printable(this.int(1, 500)),
      () => JSON.stringify(this.json(5)),
      () => this.deepNesting(this.int(1000, 20_000)),
      () => JSON.stringify(this.mutatedCreateRequest()),
      () => JSON.stringify(this.mutatedCreateRequest()),
      () =>
        JSON.stringify({ message: this.pick([null, 1, {}, [], 'x'.repeat(this.int(0, 100_000))]) }),
      () => JSON.stringify({ request: this.json(3) }),
      () =>
        JSON.stringify({
          request: {
            op: this.pick(['exec', 'fs.readFile', 'fs.writeFile', 'nope']),
            path: '../../etc/passwd',
            command: 'true',
          },
        }),
      () =>
        JSON.stringify({
          allowedHosts: this.pick([null, ['*'], [''], ['a'.repeat(5000)], 'x', [1]]),
        }),
      () =>
        JSON.stringify({ __proto__: { admin: true }, constructor: { prototype: { admin: true } } }),
    ])();
  }

  /** The valid create request with one field broken: wrong type, out of range or missing. */
  private mutatedCreateRequest(): unknown {
    const body = structuredClone(this.seeds.validBody) as Record<string, unknown>;
    const repo = body.repo as Record<string, unknown>;
    const target = this.chance(0.5) ? body : repo;
    const keys = Object.keys(target);
    const key = this.pick([...keys, this.word(5)]);
    const value = this.pick([
      () => undefined,
      () => null,
      () => 42,
      () => -1,
      () => true,
      () => [],
      () => ({}),
      () => '',
      () => 'x'.repeat(this.int(1, 50_000)),
      () => this.printable(40),
      () => Buffer.from(this.bytes(64)).toString('base64'),
      () => '# v2 git bundle\n' + this.printable(100),
      () => ({ [this.word(3)]: this.json(2) }),
    ])();
    if (value === undefined) delete target[key];
    else target[key] = value;
    return body;
  }

  private json(depth: number): unknown {
    if (depth <= 0) return this.pick([null, true, 0, -0.5, 1e308, '', 'x', '\u0000']);

    return this.pick([
      () => this.int(-1e9, 1e9),
      () => this.printable(this.int(0, 40)),
      () => Array.from({ length: this.int(0, 5) }, () => this.json(depth - 1)),
      () =>
        Object.fromEntries(
          Array.from({ length: this.int(0, 5) }, () => [
            this.word(this.int(1, 8)),
            this.json(depth - 1),
          ]),
        ),
      () => null,
    ])();
  }

  private deepNesting(depth: number): string {
    return this.chance(0.5)
      ? '['.repeat(depth) + ']'.repeat(depth)
      : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
  }

  private printable(length: number): string {
    let text = '';
    for (let index = 0; index < length; index++) text += String.fromCharCode(this.int(32, 0x2fff));
    return text;
  }

  private word(length: number): string {
    let text = '';
    for (let index = 0; index < length; index++) text += String.fromCharCode(this.int(97, 122));
    return text;
  }

  private bytes(length: number): number[] {
    return Array.from({ length }, () => this.int(0, 255));
  }

  private chance(probability: number): boolean {
    return this.next() < probability;
  }

  private int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  /** xorshift32: small, seedable, good enough to spread inputs. */
  private next(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state / 0x100000000;
  }
}
