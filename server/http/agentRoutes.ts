import fs from 'node:fs';
import type { Hono } from 'hono';
import { createAgentRequestSchema, guestCallSchema, resumeRequestSchema } from '../../protocol/api';
import { publicAgent } from '../store/Store';
import type { AgentAccess, Env } from './agentAccess';
import { agentVmTime } from './agentVmTime';
import type { AppDependencies } from './createApp';
import { guestChangeDetails } from './guestChangeDetails';
import { booleanQuery, integerQuery, parseBody } from './validation';

/**
 * An agent's life cycle: delegate, list, read (timeline, console), review (and work in its VM
 * meanwhile), resume, cancel, remove.
 */
export function registerAgentRoutes(
  app: Hono<Env>,
  deps: AppDependencies,
  { authorize, act }: AgentAccess,
): void {
  const { manager } = deps;
  const withVmTime = agentVmTime(deps.store, deps.liveVmMs);

  app.post('/v1/agents', async (context) => {
    const request = await parseBody(context, createAgentRequestSchema);
    const agent = await manager.create(context.var.user, request, request.issue);
    return context.json(withVmTime(agent), 201);
  });

  app.get('/v1/agents', (context) =>
    context.json(manager.list(context.var.user, context.var.admin).map(withVmTime)),
  );

  app.get('/v1/agents/:id', (context) => {
    const record = authorize(context, 'agent.read');
    return context.json(withVmTime(publicAgent(record)));
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
    const reviewing = await act(context, record.id, 'agent.review', {}, () =>
      manager.review(record.id),
    );
    return context.json(withVmTime(reviewing));
  });

  app.post('/v1/agents/:id/resume', async (context) => {
    const record = authorize(context, 'agent.resume');
    const { message } = await parseBody(context, resumeRequestSchema);
    const resumed = act(context, record.id, 'agent.resume', {}, () =>
      manager.resume(record.id, message),
    );
    return context.json(withVmTime(await resumed));
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

  app.post('/v1/agents/:id/cancel', async (context) => {
    const record = authorize(context, 'agent.cancel');
    const cancelled = await act(context, record.id, 'agent.cancel', {}, () =>
      manager.cancel(record.id),
    );
    return context.json(withVmTime(cancelled));
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
}
