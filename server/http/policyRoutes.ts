import type { Hono } from 'hono';
import { terminalStates } from '../../protocol/api';
import { AgentvmError } from '../../protocol/errors';
import { egressUpdateRequestSchema } from '../../protocol/policy';
import { stateHint } from '../agents/stateHint';
import type { AgentAccess, Env } from './agentAccess';
import type { AppDependencies } from './createApp';
import { integerQuery, parseBody } from './validation';

/** Permissions and their record: an agent's egress allowlist, the audit log. */
export function registerPolicyRoutes(
  app: Hono<Env>,
  deps: AppDependencies,
  { authorize }: AgentAccess,
): void {
  const { manager, policy } = deps;

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
}
