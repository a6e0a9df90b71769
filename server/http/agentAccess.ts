import type { Context } from 'hono';
import { AgentvmError } from '../../protocol/errors';
import type { AgentManager } from '../agents/AgentManager';
import type { AgentPolicy } from '../agents/AgentPolicy';
import type { Logger } from '../log';
import type { AgentRecord } from '../store/Store';

/** What every route under /v1 knows of its caller (set by the bearer-token check). */
export type Env = { Variables: { user: string; admin: boolean } };

/** Who may act on an agent, and the audit trail of what they did (see {@link agentAccess}). */
export interface AgentAccess {
  /**
   * The agent if the caller may act on it. Another user's agent is answered AGENT_NOT_FOUND, the
   * same answer as an id that does not exist (a DISK_FULL from its audit would tell the caller the
   * id exists), and the refusal is audited with the action it tried, so probing other users'
   * agents leaves a trace but learns nothing. The routes audit an allowed action before they run
   * it: one the audit log cannot record (its disk is full) is refused with DISK_FULL, not done
   * unrecorded.
   */
  authorize(context: Context<Env>, action: string, id?: string): AgentRecord;
  /**
   * Audits a user's action on an agent, then runs it: what cannot be audited is not done. When the
   * broker then refuses it (the agent's state, say), the refusal is audited too, as a deny with
   * its code, so a reader of the log can tell which actions took effect.
   */
  act<T>(
    context: Context<Env>,
    agentId: string,
    action: string,
    details: Record<string, unknown>,
    run: () => Promise<T>,
  ): Promise<T>;
}

/** The access rules of the routes that act on one agent. */
export function agentAccess(deps: {
  manager: AgentManager;
  policy: AgentPolicy;
  logger: Logger;
}): AgentAccess {
  const { manager, policy, logger } = deps;

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

  const authorize: AgentAccess['authorize'] = (
    context,
    action,
    id = context.req.param('id') ?? '',
  ) =>
    manager.get(id, context.var.user, context.var.admin, () =>
      recordRefusal(context, id, action, { reason: 'agent belongs to another user' }),
    );

  const act: AgentAccess['act'] = async (context, agentId, action, details, run) => {
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

  return { authorize, act };
}
