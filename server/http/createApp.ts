import fs from 'node:fs';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { createAgentRequestSchema, guestCallSchema, resumeRequestSchema } from '../../protocol/api';
import { AgentvmError } from '../../protocol/errors';
import type { AgentManager } from '../agents/AgentManager';
import type { Logger } from '../log';
import type { ProfileRegistry } from '../profiles/ProfileRegistry';
import { publicAgent, type Store } from '../store/Store';
import { integerQuery, parseBody } from './validation';

export interface AppDependencies {
  store: Store;
  manager: AgentManager;
  profiles: ProfileRegistry;
  logger: Logger;
  version: string;
}

type Env = { Variables: { user: string; admin: boolean } };

/** Largest request body accepted, in bytes (a base64 repository bundle is the big one). */
export const MAX_BODY_BYTES = 400 * 1024 * 1024;

/** The broker's HTTP API (routes listed in protocol/api.ts). */
export function createApp(deps: AppDependencies): Hono<Env> {
  const { store, manager, profiles, logger } = deps;
  const app = new Hono<Env>();

  app.use('*', async (context, next) => {
    const startedAt = performance.now();
    await next();
    logger.info('http.request', {
      method: context.req.method,
      path: context.req.path,
      status: context.res.status,
      durationMs: Math.round(performance.now() - startedAt),
    });
  });

  app.get('/v1/health', (context) => context.json({ ok: true as const, version: deps.version }));

  app.use('/v1/*', async (context, next) => {
    const header = context.req.header('authorization') ?? '';
    const token = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    if (!token) throw new AgentvmError('UNAUTHORIZED', 'missing bearer token');

    const identity = store.userForToken(token);
    if (!identity) throw new AgentvmError('UNAUTHORIZED', 'the bearer token is not known to this broker');

    context.set('user', identity.user);
    context.set('admin', identity.admin);
    await next();
  });

  app.use(
    '/v1/agents',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (context) => {
        const error = new AgentvmError('PAYLOAD_TOO_LARGE', `the request body is over ${MAX_BODY_BYTES / 1048576} MiB`);
        return context.json(error.toBody(), 413);
      },
    }),
  );

  app.get('/v1/whoami', (context) => context.json({ user: context.var.user, admin: context.var.admin }));

  app.get('/v1/profiles', (context) => context.json(profiles.list()));

  app.post('/v1/agents', async (context) => {
    const request = await parseBody(context, createAgentRequestSchema);
    const agent = await manager.create(context.var.user, request, request.issue);
    return context.json(agent, 201);
  });

  app.get('/v1/agents', (context) => context.json(manager.list(context.var.user, context.var.admin)));

  app.get('/v1/agents/:id', (context) => {
    const record = manager.get(context.req.param('id'), context.var.user, context.var.admin);
    return context.json(publicAgent(record));
  });

  app.get('/v1/agents/:id/events', (context) => {
    const record = manager.get(context.req.param('id'), context.var.user, context.var.admin);
    return context.json(manager.timeline(record.id, integerQuery(context, 'after', 0)));
  });

  app.get('/v1/agents/:id/console', (context) => {
    const record = manager.get(context.req.param('id'), context.var.user, context.var.admin);
    const file = manager.consolePath(record.id);
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    return context.text(text);
  });

  app.post('/v1/agents/:id/review', async (context) => {
    const record = manager.get(context.req.param('id'), context.var.user, context.var.admin);
    return context.json(await manager.review(record.id));
  });

  app.post('/v1/agents/:id/resume', async (context) => {
    const record = manager.get(context.req.param('id'), context.var.user, context.var.admin);
    const { message } = await parseBody(context, resumeRequestSchema);
    return context.json(await manager.resume(record.id, message));
  });

  app.post('/v1/agents/:id/cancel', async (context) => {
    const record = manager.get(context.req.param('id'), context.var.user, context.var.admin);
    return context.json(await manager.cancel(record.id));
  });

  app.delete('/v1/agents/:id', async (context) => {
    const record = manager.get(context.req.param('id'), context.var.user, context.var.admin);
    await manager.remove(record.id);
    return context.body(null, 204);
  });

  app.get('/v1/agents/:id/result', (context) => {
    const record = manager.get(context.req.param('id'), context.var.user, context.var.admin);
    if (!record.result) {
      throw new AgentvmError('RESULT_NOT_READY', `agent ${record.id} has no result yet (state ${record.state})`);
    }

    const files = manager.resultFiles(record.id);
    return context.json({
      baseCommit: record.repo.baseCommit,
      headCommit: record.result.headCommit,
      commits: record.result.commits,
      patch: fs.readFileSync(files.patch, 'utf8'),
      exitCode: record.result.exitCode,
    });
  });

  app.get('/v1/agents/:id/result/bundle', (context) => {
    const record = manager.get(context.req.param('id'), context.var.user, context.var.admin);
    if (!record.result) {
      throw new AgentvmError('RESULT_NOT_READY', `agent ${record.id} has no result yet (state ${record.state})`);
    }

    const bundle = fs.readFileSync(manager.resultFiles(record.id).bundle);
    return context.body(bundle, 200, { 'content-type': 'application/octet-stream' });
  });

  app.post('/v1/agents/:id/guest', async (context) => {
    const record = manager.get(context.req.param('id'), context.var.user, context.var.admin);
    const { request } = await parseBody(context, guestCallSchema);
    return context.json({ result: await manager.guestCall(record.id, request) });
  });

  app.notFound((context) => context.json(new AgentvmError('NOT_FOUND', 'no such API path').toBody(), 404));

  app.onError((error, context) => {
    if (error instanceof AgentvmError) {
      return context.json(error.toBody(), error.status as ContentfulStatusCode);
    }

    logger.error('http.error', { path: context.req.path, error: error.message, stack: error.stack });
    const internal = new AgentvmError('INTERNAL', `internal error: ${error.message}`);
    return context.json(internal.toBody(), 500);
  });

  return app;
}
