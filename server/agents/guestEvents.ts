import type { GuestEvent } from '../../protocol/control';
import type { NewEvent } from '../store/Store';

const maxOutputLines = 5;

/**
 * How one guest event appears in the agent's timeline. Pure: the manager persists the result and
 * applies its side effects (pause for review, finish).
 */
export function timelineEntry(event: GuestEvent): NewEvent {
  switch (event.kind) {
    case 'phase':
      return { kind: 'phase', message: phaseMessages[event.phase], data: { phase: event.phase } };
    case 'output':
      return { kind: 'output', message: event.text, data: { stream: event.stream } };
    case 'progress':
      return { kind: 'progress', message: event.message };
    case 'review':
      return { kind: 'review', message: event.message, data: { requestId: event.requestId } };
    case 'done':
      return { kind: 'done', message: event.message || 'agent reported done' };
    case 'exit':
      return {
        kind: 'exit',
        message: event.signal
          ? `agent command ended by ${event.signal}`
          : `agent command exited with code ${event.code}`,
        data: { code: event.code, signal: event.signal },
      };
    case 'result':
      return {
        kind: 'result',
        message: `${event.commits.length} commit(s) exported`,
        data: { headCommit: event.headCommit, commits: event.commits },
      };
    case 'error':
      return { kind: 'error', message: event.message };
  }
}

/** The agent's latest output lines after `text` arrived (kept short for list views). */
export function appendOutput(previous: string[], text: string): string[] {
  const lines = text.split('\n').filter((line) => line.trim().length > 0);
  return [...previous, ...lines].slice(-maxOutputLines).map((line) => line.slice(0, 300));
}

/** How the timeline says each phase of the task (its kind column already reads `phase`). */
const phaseMessages: Record<Extract<GuestEvent, { kind: 'phase' }>['phase'], string> = {
  checkout: 'writing the repository into the workspace',
  running: 'agent command started',
  exporting: 'exporting the commits',
};
