import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { MAX_GUEST_LINE_CHARS } from '../../protocol/control';
import { AgentvmError } from '../../protocol/errors';
import type { AgentManager } from '../agents/AgentManager';
import type { AgentPolicy } from '../agents/AgentPolicy';
import type { Logger } from '../log';
import type { ProfileRegistry } from '../profiles/ProfileRegistry';
import { isDiskFullError, storeFullError, type Store } from '../store/Store';
import { agentAccess, type Env } from './agentAccess';
import type { LiveVmMs } from './agentVmTime';
import { registerAgentRoutes } from './agentRoutes';
import { registerPolicyRoutes } from './policyRoutes';
import { registerResultRoutes } from './resultRoutes';

export interface AppDependencies {
  store: Store;
  manager: AgentManager;
  profiles: ProfileRegistry;
  policy: AgentPolicy;
  logger: Logger;
  version: string;
  /**
   * How long each agent's VM has run in its current segment, for the agents' `vmSeconds`; without
   * it, a running VM's current segment is not counted until it ends.
   */
  liveVmMs?: LiveVmMs;
}

/** Largest request body accepted, in bytes (a base64 repository bundle is the big one). */
export const MAX_BODY_BYTES = 400 * 1024 * 1024;

/**
 * Largest request body accepted by the routes other than delegation, in bytes: a guest call
 * (a file written into the VM) travels on as one control-channel line, which can be no longer.
 */
export const MAX_CALL_BODY_BYTES = MAX_GUEST_LINE_CHARS;

/** Refuses a body over `maxBytes` with PAYLOAD_TOO_LARGE, before or while it is read. */
function bodyLimitOf(maxBytes: number) {
  return bodyLimit({
    maxSize: maxBytes,
    onError: (context) => {
      const error = new AgentvmError(
        'PAYLOAD_TOO_LARGE',
        `the request body is over ${maxBytes / 1048576} MiB`,
      );
      return context.json(error.toBody(), 413);
    },
  });
}

/** The broker's HTTP API (routes listed in protocol/api.ts). */
export function createApp(deps: AppDependencies): Hono<Env> {
  const { store, profiles, logger } = deps;
  const app = new Hono<Env>();

  const access = agentAccess(deps);

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
    if (!identity)
      throw new AgentvmError('UNAUTHORIZED', 'the bearer token is not known to this broker');

    context.set('user', identity.user);
    context.set('admin', identity.admin);
    await next();
  });

  // Each body is read whole into memory: every route has a limit, not only delegation.
  const delegationBodyLimit = bodyLimitOf(MAX_BODY_BYTES);
  const callBodyLimit = bodyLimitOf(MAX_CALL_BODY_BYTES);
  app.use('/v1/*', (context, next) =>
    context.req.path === '/v1/agents'
      ? delegationBodyLimit(context, next)
      : callBodyLimit(context, next),
  );

  app.get('/v1/whoami', (context) =>
    context.json({ user: context.var.user, admin: context.var.admin }),
  );

  app.get('/v1/profiles', (context) => context.json(profiles.list()));
  app.get('/v1/profile-problems', (context) => context.json(profiles.problems()));

  registerAgentRoutes(app, deps, access);
  registerResultRoutes(app, deps, access);
  registerPolicyRoutes(app, deps, access);

  app.notFound((context) =>
    context.json(new AgentvmError('NOT_FOUND', 'no such API path').toBody(), 404),
  );

  app.onError((error, context) => {
    if (error instanceof AgentvmError) {
      return context.json(error.toBody(), error.status as ContentfulStatusCode);
    }
    // A write the store holds back never throws; others (the audit log's) still can.
    if (isDiskFullError(error)) {
      const full = storeFullError(store.db.name, error);
      logger.warn('http.disk_full', { path: context.req.path, error: error.message });
      return context.json(full.toBody(), full.status as ContentfulStatusCode);
    }

    logger.error('http.error', {
      path: context.req.path,
      error: error.message,
      stack: error.stack,
    });
    const internal = new AgentvmError('INTERNAL', `internal error: ${error.message}`);
    return context.json(internal.toBody(), 500);
  });

  return app;
}
