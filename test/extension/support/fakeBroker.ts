/**
 * A stand-in broker for developing the extension before the real one boots VMs: it speaks the
 * public API (protocol/api.ts) with the same schemas, and runs a scripted "agent" on the host in
 * a real git clone of the uploaded bundle, so file API, exec, changes and result bundles are real.
 * Usage: tsx fakeBroker.ts --port P --data DIR (writes DIR/token, or keeps the one there; prints
 * "listening P").
 *
 * Test hooks (POST, with the token), for the suites that take the event stream away:
 * - /v1/test/outage?ms=N: drops every connection and stops listening for N ms, as a broker that
 *   is down; agents go on meanwhile.
 * - /v1/test/after-list?agent=ID&state=S: right after the next agent list is sent, moves the
 *   agent to state S, as a change that lands between a client's list and its subscription.
 * - /v1/test/emit?agent=ID&count=N: appends N output events to the agent's timeline.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  clientStreamMessageSchema,
  createAgentRequestSchema,
  guestCallSchema,
  terminalStates,
  type Agent,
  type AgentEvent,
  type AgentState,
  type Profile,
  type ServerStreamMessage,
} from '../../../protocol/api';
import { AgentvmError, type ErrorCode } from '../../../protocol/errors';
import { handleGuestRequest } from '../../../guest/handleGuestRequest';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i], process.argv[i + 1]);
const port = Number(args.get('--port') ?? 0);
const dataDir = path.resolve(args.get('--data') ?? '.');
const stepDelayMs = 300;
fs.mkdirSync(dataDir, { recursive: true });
const tokenFile = path.join(dataDir, 'token');
const token = fs.existsSync(tokenFile)
  ? fs.readFileSync(tokenFile, 'utf8').trim()
  : randomBytes(16).toString('hex');
fs.writeFileSync(tokenFile, token, { mode: 0o600 });

const profiles: Profile[] = [
  {
    name: 'demo',
    description:
      'Scripted fake agent: writes NOTES.md, asks for review, commits the reviewer edits.',
    command: 'fake',
    image: 'default',
    memoryMiB: 256,
    vcpus: 1,
    timeLimitMs: 600_000,
    bootTimeoutMs: 60_000,
    env: {},
    files: {},
    onLimit: 'pause',
    allowedHosts: [],
    secrets: {},
    limits: { maxMemoryMiB: 0, maxVcpus: 0, costBudgetUnitSeconds: 0 },
  },
];
const agents = new Map<string, Agent>();
const events: AgentEvent[] = [];
const results = new Map<string, { bundle: Buffer; patch: string }>();
/** Subscribed sockets, with the one agent they follow (undefined: all), as the real broker. */
const sockets = new Map<WebSocket, { agentId?: string }>();
let nextEventId = 1;
/** Set by /v1/test/after-list: the change to make once the next agent list is sent. */
let afterList: { agentId: string; state: AgentState } | undefined;

function broadcast(message: ServerStreamMessage): void {
  const agentId =
    message.type === 'event'
      ? message.event.agentId
      : message.type === 'agent'
        ? message.agent.id
        : message.type === 'removed'
          ? message.agentId
          : undefined;
  for (const [socket, subscription] of sockets) {
    if (subscription.agentId === undefined || subscription.agentId === agentId)
      socket.send(JSON.stringify(message));
  }
}

/**
 * A client's subscribe message: which agents it follows, and the replay of events it asked for;
 * answered with `subscribed`, as the real broker does.
 */
function subscribe(socket: WebSocket, data: string): void {
  const parsed = clientStreamMessageSchema.safeParse(JSON.parse(data));
  if (!parsed.success) return;

  const { agentId, afterEventId } = parsed.data;
  sockets.set(socket, { agentId });
  const subscribed = events.filter((event) => agentId === undefined || event.agentId === agentId);
  if (afterEventId !== undefined) {
    for (const event of subscribed) {
      if (event.id > afterEventId) socket.send(JSON.stringify({ type: 'event', event }));
    }
  }

  const lastEventId = subscribed.at(-1)?.id ?? 0;
  const ack: ServerStreamMessage = { type: 'subscribed', agentId, afterEventId, lastEventId };
  socket.send(JSON.stringify(ack));
}

function emit(
  agent: Agent,
  kind: AgentEvent['kind'],
  message: string,
  data: Record<string, unknown> = {},
) {
  const event: AgentEvent = {
    id: nextEventId++,
    agentId: agent.id,
    at: Date.now(),
    kind,
    message,
    data,
  };
  events.push(event);
  broadcast({ type: 'event', event });
}

function update(agent: Agent, changes: Partial<Agent>): void {
  const from = agent.state;
  Object.assign(agent, changes, { updatedAt: Math.max(Date.now(), agent.updatedAt + 1) });
  if (changes.state && changes.state !== from) {
    emit(agent, 'state', `${from} → ${changes.state}`, { from, to: changes.state });
  }
  broadcast({ type: 'agent', agent });
}

const workspaceOf = (id: string) => path.join(dataDir, 'agents', id, 'workspace');
const git = (cwd: string, gitArgs: string[]) =>
  execFileSync(
    'git',
    ['-c', 'user.name=agent', '-c', 'user.email=agent@agentvm.invalid', ...gitArgs],
    {
      cwd,
    },
  ).toString();
const later = (fn: () => void) => setTimeout(fn, stepDelayMs);

function startAgent(agent: Agent, bundle: Buffer): void {
  const workspace = workspaceOf(agent.id);
  fs.mkdirSync(path.dirname(workspace), { recursive: true });
  const bundleFile = path.join(path.dirname(workspace), 'repo.bundle');
  fs.writeFileSync(bundleFile, bundle);
  update(agent, { state: 'starting', bootPath: 'cold', accel: 'tcg' });
  later(() => {
    execFileSync('git', ['clone', '-q', bundleFile, workspace]);
    git(workspace, ['checkout', '-q', '-B', agent.repo.branch, agent.repo.baseCommit]);
    update(agent, { state: 'running' });
    emit(agent, 'phase', 'checkout done; running the agent', { phase: 'running' });
    later(() => {
      fs.writeFileSync(path.join(workspace, 'NOTES.md'), 'Notes by the agent.\n');
      emit(agent, 'progress', 'wrote NOTES.md');
      update(agent, { lastProgress: 'wrote NOTES.md' });
      const review = {
        requestId: randomBytes(4).toString('hex'),
        message: 'Please check NOTES.md',
        requestedAt: Date.now(),
      };
      emit(agent, 'review', review.message);
      update(agent, { state: 'pausing', review });
      later(() => update(agent, { state: 'awaiting_review' }));
    });
  });
}

function resumeAgent(agent: Agent, answer: string): void {
  emit(agent, 'answer', answer || '(no answer)');
  update(agent, { state: 'running', review: null });
  later(() => {
    const workspace = workspaceOf(agent.id);
    const notes = fs.readFileSync(path.join(workspace, 'NOTES.md'), 'utf8');
    const line = `agent sees NOTES.md: ${notes.trim().split('\n').join(' | ')}`;
    emit(agent, 'output', line, { stream: 'stdout' });
    update(agent, { lastOutput: [line] });
    git(workspace, ['add', '-A']);
    git(workspace, ['commit', '-q', '-m', 'Notes, with the reviewer edits']);
    const head = git(workspace, ['rev-parse', 'HEAD']).trim();
    const base = agent.repo.baseCommit;
    git(workspace, ['update-ref', 'refs/heads/agentvm-result', head]);
    const bundleFile = path.join(path.dirname(workspace), 'result.bundle');
    git(workspace, ['bundle', 'create', '-q', bundleFile, `${base}..agentvm-result`]);
    const patch = git(workspace, ['format-patch', '--stdout', `${base}..${head}`]);
    const commits = git(workspace, ['log', '--format=%H %s', `${base}..${head}`])
      .trim()
      .split('\n')
      .map((entry) => ({ sha: entry.slice(0, 40), subject: entry.slice(41) }));
    results.set(agent.id, { bundle: fs.readFileSync(bundleFile), patch });
    emit(agent, 'exit', 'agent exited with code 0', {});
    update(agent, {
      state: 'done',
      endedAt: Date.now(),
      result: { headCommit: head, commits, exitCode: 0 },
    });
  });
}

function fail(res: http.ServerResponse, code: ErrorCode, message: string): void {
  const error = new AgentvmError(code, message);
  res
    .writeHead(error.status, { 'content-type': 'application/json' })
    .end(JSON.stringify(error.toBody()));
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function requireState(res: http.ServerResponse, agent: Agent, states: AgentState[]): boolean {
  if (states.includes(agent.state)) return true;

  fail(res, 'INVALID_STATE', `agent ${agent.id} is ${agent.state}`);
  return false;
}

async function readBody(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString();
  return text ? JSON.parse(text) : {};
}

async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const parts = url.pathname.split('/').filter(Boolean);
  if (url.pathname === '/v1/health') return send(res, 200, { ok: true, version: 'fake' });
  if (req.headers.authorization !== `Bearer ${token}`)
    return fail(res, 'UNAUTHORIZED', 'bad token');
  if (url.pathname === '/v1/whoami') return send(res, 200, { user: 'tester', admin: true });
  if (url.pathname === '/v1/profiles') return send(res, 200, profiles);

  if (url.pathname === '/v1/agents' && req.method === 'GET') {
    send(res, 200, [...agents.values()]);
    const change = afterList;
    afterList = undefined;
    const agent = change && agents.get(change.agentId);
    if (change && agent) update(agent, { state: change.state });
    return;
  }
  if (parts[0] === 'v1' && parts[1] === 'test' && req.method === 'POST') return testHook(url, res);
  if (url.pathname === '/v1/agents' && req.method === 'POST') {
    const parsed = createAgentRequestSchema.safeParse(await readBody(req));
    if (!parsed.success) return fail(res, 'VALIDATION_FAILED', parsed.error.message);

    const request = parsed.data;
    const now = Date.now();
    const { bundle, ...repo } = request.repo;
    const agent: Agent = {
      id: `a${randomBytes(4).toString('hex')}`,
      title: request.title ?? request.text.split('\n')[0],
      text: request.text,
      profile: request.profile,
      owner: 'tester',
      state: 'queued',
      stateReason: null,
      createdAt: now,
      updatedAt: now,
      endedAt: null,
      repo,
      review: null,
      lastProgress: null,
      lastOutput: [],
      result: null,
      bootPath: null,
      accel: null,
    };
    agents.set(agent.id, agent);
    broadcast({ type: 'agent', agent });
    startAgent(agent, Buffer.from(bundle, 'base64'));
    return send(res, 201, agent);
  }

  const agent = parts[0] === 'v1' && parts[1] === 'agents' ? agents.get(parts[2]) : undefined;
  if (!agent)
    return fail(res, parts[1] === 'agents' ? 'AGENT_NOT_FOUND' : 'NOT_FOUND', url.pathname);

  const action = parts.slice(3).join('/');
  if (action === '' && req.method === 'GET') return send(res, 200, agent);
  if (action === '' && req.method === 'DELETE') {
    // As the real broker: an agent that has not ended goes only with force=true.
    const live = !terminalStates.includes(agent.state);
    if (live && url.searchParams.get('force') !== 'true')
      return fail(res, 'INVALID_STATE', `agent ${agent.id} is ${agent.state}, not ended`);

    agents.delete(agent.id);
    broadcast({ type: 'removed', agentId: agent.id });
    res.writeHead(204).end();
    return;
  }
  if (action === 'events') {
    const after = Number(url.searchParams.get('after') ?? 0);
    return send(
      res,
      200,
      events.filter((event) => event.agentId === agent.id && event.id > after),
    );
  }
  if (action === 'console') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('fake broker: no serial console\n');
    return;
  }
  if (action === 'review') {
    if (!requireState(res, agent, ['awaiting_review', 'reviewing'])) return;

    update(agent, { state: 'restoring' });
    await new Promise((resolve) => setTimeout(resolve, stepDelayMs));
    update(agent, { state: 'reviewing' });
    return send(res, 200, agent);
  }
  if (action === 'resume') {
    if (!requireState(res, agent, ['awaiting_review', 'reviewing'])) return;

    const body = (await readBody(req)) as { message?: string };
    resumeAgent(agent, body.message ?? '');
    return send(res, 200, agent);
  }
  if (action === 'cancel') {
    if (terminalStates.includes(agent.state))
      return fail(res, 'INVALID_STATE', `cannot cancel agent ${agent.id}: it has already ended`);

    update(agent, { state: 'cancelled', endedAt: Date.now() });
    return send(res, 200, agent);
  }
  if (action === 'result' || action === 'result/bundle') {
    const result = results.get(agent.id);
    if (!result || !agent.result)
      return fail(res, 'RESULT_NOT_READY', `agent ${agent.id} is ${agent.state}`);
    if (action === 'result/bundle') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(result.bundle);
      return;
    }

    const { headCommit, commits, exitCode } = agent.result;
    return send(res, 200, {
      baseCommit: agent.repo.baseCommit,
      headCommit,
      commits,
      patch: result.patch,
      exitCode,
    });
  }
  if (action === 'guest') {
    if (!requireState(res, agent, ['reviewing'])) return;

    const parsed = guestCallSchema.safeParse(await readBody(req));
    if (!parsed.success) return fail(res, 'VALIDATION_FAILED', parsed.error.message);

    try {
      const result = await handleGuestRequest(parsed.data.request, {
        workspaceDir: workspaceOf(agent.id),
        user: null,
        baseCommit: agent.repo.baseCommit,
        env: {},
      });
      return send(res, 200, { result });
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'GUEST_ERROR';
      return fail(res, 'GUEST_ERROR', `${code}: ${(error as Error).message}`);
    }
  }

  return fail(res, 'NOT_FOUND', url.pathname);
}

function testHook(url: URL, res: http.ServerResponse): void {
  const hook = url.pathname.slice('/v1/test/'.length);
  const agent = agents.get(url.searchParams.get('agent') ?? '');
  if (hook === 'outage') {
    const ms = Number(url.searchParams.get('ms') ?? 1000);
    res.writeHead(204).end(() => outage(ms));
    return;
  }
  if (hook === 'after-list' && agent) {
    afterList = { agentId: agent.id, state: url.searchParams.get('state') as AgentState };
    res.writeHead(204).end();
    return;
  }
  if (hook === 'emit' && agent) {
    const count = Number(url.searchParams.get('count') ?? 1);
    for (let i = 1; i <= count; i++) emit(agent, 'output', `line ${i} of ${count}`);
    res.writeHead(204).end();
    return;
  }

  fail(res, 'NOT_FOUND', url.pathname);
}

/** Down for `ms`: every connection dropped, nothing listening; then up again on the same port. */
function outage(ms: number): void {
  const address = server.address() as { port: number };
  for (const socket of wss.clients) socket.terminate();
  server.close();
  server.closeAllConnections();
  process.stdout.write(`down for ${ms} ms\n`);
  setTimeout(() => {
    server.listen(address.port, '127.0.0.1', () => process.stdout.write('up again\n'));
  }, ms);
}

const server = http.createServer((req, res) => {
  route(req, res).catch((error: Error) => fail(res, 'INTERNAL', error.message));
});
const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  if (req.headers.authorization !== `Bearer ${token}`) {
    socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on('message', (data) => subscribe(ws, data.toString()));
    ws.on('close', () => sockets.delete(ws));
  });
});
server.listen(port, '127.0.0.1', () => {
  const address = server.address() as { port: number };
  process.stdout.write(`listening ${address.port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
