import fs from 'node:fs';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import {
  type AgentState,
  createAgentRequestSchema,
  guestCallSchema,
  resumeRequestSchema,
  terminalStates,
} from '../../protocol/api';
import { MAX_GUEST_LINE_CHARS } from '../../protocol/control';
import { AgentvmError } from '../../protocol/errors';
import { egressUpdateRequestSchema } from '../../protocol/policy';
import type { AgentManager } from '../agents/AgentManager';
import { guestChangeDetails } from './guestChangeDetails';
import type { AgentPolicy } from '../agents/AgentPolicy';
import { stateHint } from '../agents/stateHint';
import type { Logger } from '../log';
import type { ProfileRegistry } from '../profiles/ProfileRegistry';
import { isDiskFullError, publicAgent, storeFullError, type Store } from '../store/Store';
import { integerQuery, parseBody } from './validation';

export interface AppDependencies {
  store: Store;
  manager: AgentManager;
  profiles: ProfileRegistry;
  policy: AgentPolicy;
  logger: Logger;
  version: string;
}

type Env = { Variables: { user: string; admin: boolean } };

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
  const { store, manager, profiles, policy, logger } = deps;
  const app = new Hono<Env>();

  /**
   * Audits a refusal that has already been decided. One that cannot be recorded (its disk is
   * full) is still a refusal, answered as it would be otherwise: the failure is logged, not thrown.
   */
  const recordRefusal = (
    context: Context<Env>,
    agentId: string,
    action: string,
    details: Record<string, unknown>,
  ) => {
    try {
      policy.record(context.var.user, agentId, action, 'deny', details);
    } catch (error) {
      logger.warn('audit.deny_unrecorded', { action, error: (error as Error).message });
    }
  };

  /**
   * The agent if the caller may act on it. Another user's agent is answered AGENT_NOT_FOUND, the
   * same answer as an id that does not exist (a DISK_FULL from its audit would tell the caller the
   * id exists), and the refusal is audited with the action it tried, so probing other users'
   * agents leaves a trace but learns nothing. The routes audit an allowed action before they run
   * it: one the audit log cannot record (its disk is full) is refused with DISK_FULL, not done
   * unrecorded.
   */
  const authorize = (context: Context<Env>, action: string, id = context.req.param('id') ?? '') =>
    manager.get(id, context.var.user, context.var.admin, () =>
      recordRefusal(context, id, action, { reason: 'agent belongs to another user' }),
    );

  /**
   * Audits a user's action on an agent, then runs it: what cannot be audited is not done. When the
   * broker then refuses it (the agent's state, say), the refusal is audited too, as a deny with
   * its code, so a reader of the log can tell which actions took effect.
   */
  const act = async <T>(
    context: Context<Env>,
    agentId: string,
    action: string,
    details: Record<string, unknown>,
    run: () => Promise<T>,
  ): Promise<T> => {
    policy.record(context.var.user, agentId, action, 'allow', details);
    try {
      return await run();
    } catch (error) {
      if (error instanceof AgentvmError) {
        recordRefusal(context, agentId, action, {
          ...details,
          refused: error.code,
          reason: error.message,
        });
      }
      throw error;
    }
  };

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

  app.post('/v1/agents', async (context) => {
    const request = await parseBody(context, createAgentRequestSchema);
    const agent = await manager.create(context.var.user, request, request.issue);
    return context.json(agent, 201);
  });

  app.get('/v1/agents', (context) =>
    context.json(manager.list(context.var.user, context.var.admin)),
  );

  app.get('/v1/agents/:id', (context) => {
    const record = authorize(context, 'agent.read');
    return context.json(publicAgent(record));
  });

  app.get('/v1/agents/:id/events', (context) => {
    const record = authorize(context, 'agent.read');
    return context.json(manager.timeline(record.id, integerQuery(context, 'after', 0)));
  });

  app.get('/v1/agents/:id/console', (context) => {
    const record = authorize(context, 'agent.read');
    const file = manager.consolePath(record.id);
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    return context.text(text);
  });

  app.post('/v1/agents/:id/review', async (context) => {
    const record = authorize(context, 'agent.review');
    return context.json(
      await act(context, record.id, 'agent.review', {}, () => manager.review(record.id)),
    );
  });

  app.post('/v1/agents/:id/resume', async (context) => {
    const record = authorize(context, 'agent.resume');
    const { message } = await parseBody(context, resumeRequestSchema);
    const resumed = act(context, record.id, 'agent.resume', {}, () =>
      manager.resume(record.id, message),
    );
    return context.json(await resumed);
  });

  app.post('/v1/agents/:id/cancel', async (context) => {
    const record = authorize(context, 'agent.cancel');
    return context.json(
      await act(context, record.id, 'agent.cancel', {}, () => manager.cancel(record.id)),
    );
  });

  // An agent that has not ended is removed only with ?force=true: it loses its VM and its work.
  app.delete('/v1/agents/:id', async (context) => {
    const force = booleanQuery(context, 'force');
    const record = authorize(context, 'agent.remove');
    await act(context, record.id, 'agent.remove', { force }, () =>
      manager.remove(record.id, { force }),
    );
    return context.body(null, 204);
  });

  app.get('/v1/agents/:id/result', (context) => {
    const record = authorize(context, 'agent.read');
    if (!record.result) {
      throw noResult(record);
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
    const record = authorize(context, 'agent.read');
    if (!record.result) {
      throw noResult(record);
    }

    const bundle = fs.readFileSync(manager.resultFiles(record.id).bundle);
    return context.body(bundle, 200, { 'content-type': 'application/octet-stream' });
  });

  app.post('/v1/agents/:id/guest', async (context) => {
    const record = authorize(context, 'agent.guest');
    const { request } = await parseBody(context, guestCallSchema);
    const call = () => manager.guestCall(record.id, request);
    // What the reviewer changes in the VM is audited; reads are not.
    const changes = guestChangeDetails(request);
    const result = changes
      ? await act(context, record.id, 'agent.guest', changes, call)
      : await call();
    return context.json({ result });
  });

  app.get('/v1/agents/:id/egress', (context) => {
    const record = authorize(context, 'agent.read');
    return context.json(policy.describe(record));
  });

  app.post('/v1/agents/:id/egress', async (context) => {
    const record = authorize(context, 'egress.allowlist');
    const { allowedHosts } = await parseBody(context, egressUpdateRequestSchema);
    // An ended agent never reaches out again: a change would be recorded and mean nothing.
    if (terminalStates.includes(record.state)) {
      throw new AgentvmError(
        'INVALID_STATE',
        `agent ${record.id} is ${record.state}: its allowlist no longer applies to anything`,
        stateHint(record.id, record.state),
      );
    }
    return context.json(policy.setAllowedHosts(record, allowedHosts, context.var.user));
  });

  // A user sees the rows of their own agents; only an admin sees everything, broker rows included.
  app.get('/v1/audit', (context) => {
    const agentId = context.req.query('agent') || undefined;
    if (agentId) authorize(context, 'audit.read', agentId);

    const query = {
      agentId,
      afterId: integerQuery(context, 'after', 0),
      limit: integerQuery(context, 'limit', 1000),
    };
    const own = context.var.admin
      ? undefined
      : new Set(manager.list(context.var.user, false).map((agent) => agent.id));
    return context.json(policy.auditRows(query, own));
  });

  // Verifying reads every row, including other users' agents: an admin's job.
  app.get('/v1/audit/verify', (context) => {
    if (!context.var.admin) {
      policy.record(context.var.user, null, 'audit.verify', 'deny', { reason: 'not an admin' });
      throw new AgentvmError(
        'FORBIDDEN',
        'only an admin token may verify the whole audit log',
        'Run it with an admin token: the broker writes one to its token file; `agentvm token create --user NAME --admin` makes more.',
      );
    }

    return context.json(policy.verifyAudit());
  });

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

/** A `true` / `false` query parameter; absent or empty is false, anything else VALIDATION_FAILED. */
function booleanQuery(context: Context<Env>, name: string): boolean {
  const value = context.req.query(name);
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;

  throw new AgentvmError(
    'VALIDATION_FAILED',
    `query parameter ${name} must be true or false, not "${value}"`,
  );
}

/** RESULT_NOT_READY for an agent without a result: "yet" only where one may still come. */
function noResult(record: { id: string; state: AgentState }): AgentvmError {
  const never = record.state === 'failed' || record.state === 'cancelled';
  return new AgentvmError(
    'RESULT_NOT_READY',
    never
      ? `agent ${record.id} ${record.state === 'failed' ? 'failed' : 'was cancelled'}, so it has no result and never will`
      : `agent ${record.id} has no result yet (state ${record.state})`,
    stateHint(record.id, record.state),
  );
}
