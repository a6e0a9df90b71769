import { clipAuditDetails } from './clipAuditDetails';
import type { EgressAuditor } from './EgressAgent';
import type { EgressProxyOptions } from './EgressProxy';

/** Refusals whose rows an agent's {@link DenialBudget} bounds. */
const coalescedActions = new Set(['egress.request', 'egress.connect', 'github.call']);

/**
 * The one way the egress proxy writes its audit rows: each row names the agent and the user who
 * delegated it, guest-chosen text is clipped ({@link clipAuditDetails}), refusals by policy are
 * counted past the agent's budget, and a debug log line follows. A failing write throws: the
 * callers decide whether that refuses a request or is only logged.
 */
export function createEgressAuditor(options: EgressProxyOptions): EgressAuditor {
  return (agent, action, decision, details) => {
    // Refusals by policy are counted past a budget; a refusal by address follows an allow row or
    // says where a name led, and the limits' own rows are already bounded: those are all written.
    const budgeted =
      decision === 'deny' && coalescedActions.has(action) && details.addressClass === undefined;
    if (budgeted && !agent.denials.admit(action, details.host, details.port)) return;

    const clipped = clipAuditDetails(details);
    options.audit?.({
      actor: agent.policy.actor,
      agentId: agent.id,
      action,
      decision,
      details: clipped,
    });
    options.log?.debug(action, { agentId: agent.id, decision, ...clipped });
  };
}
