import type { Agent } from '../../../protocol/api';
import { inertText } from '../model/inertText';
import type { Settings } from '../settings';

/** A notification about one agent: what it says and the buttons it offers. */
export interface AgentNotice {
  severity: 'info' | 'error';
  message: string;
  /** Buttons in order; each runs `command` with the agent's id. */
  actions: { title: string; command: string }[];
}

type NoticeSettings = Pick<Settings, 'notifyReviewRequested' | 'notifyDone' | 'notifyFailed'>;

/**
 * The notification for an agent's state change seen live (none for an agent seen for the first
 * time, or when the setting for that kind is off). Agent and issue text is made inert: VS Code
 * turns `[label](command:…)` in a notification into a link that runs the command.
 */
export function agentNotice(
  agent: Agent,
  previous: Agent | undefined,
  settings: NoticeSettings,
): AgentNotice | undefined {
  if (!previous || previous.state === agent.state) return undefined;

  const title = inertText(agent.title);
  if (agent.state === 'awaiting_review' && settings.notifyReviewRequested) {
    return {
      severity: 'info',
      message: `Agent "${title}" asks for review: ${inertText(agent.review?.message ?? '')}`,
      actions: [
        { title: 'Review', command: 'agentvm.reviewAgent' },
        { title: 'Resume', command: 'agentvm.resumeAgent' },
        { title: 'Open', command: 'agentvm.openAgent' },
      ],
    };
  }

  if (agent.state === 'done' && settings.notifyDone) {
    return {
      severity: 'info',
      message: `Agent "${title}" is done.`,
      actions: [
        { title: 'Open result', command: 'agentvm.viewResult' },
        { title: 'Apply as branch', command: 'agentvm.applyResult' },
        { title: 'Open pull request', command: 'agentvm.openPullRequest' },
      ],
    };
  }

  if (agent.state === 'failed' && settings.notifyFailed) {
    const reason = agent.stateReason ? `: ${inertText(agent.stateReason)}` : '.';
    return {
      severity: 'error',
      message: `Agent "${title}" failed${reason}`,
      actions: [{ title: 'Show log', command: 'agentvm.showAgentLog' }],
    };
  }

  return undefined;
}
