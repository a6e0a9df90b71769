import { AgentvmError, errorCatalog, type ErrorCode } from '../../../protocol/errors';
import { inertText } from '../model/inertText';
import type { MessageAction } from '../views/showWithActions';

/** A button on a failure message. */
export type FailureAction = MessageAction;

/** What a failed command shows: one line (message, code, what to do) and the buttons that help. */
export interface FailureNotice {
  text: string;
  actions: FailureAction[];
}

const showLog: FailureAction = { title: 'Show log', command: 'agentvm.showLog' };
const refresh: FailureAction = { title: 'Refresh agents', command: 'agentvm.refresh' };

/**
 * What to do, said for the editor, for codes whose registry hint speaks of the CLI's flags and
 * environment variables. Used only when the error carries the registry's hint, not its own.
 */
const editorAdvice: Partial<Record<ErrorCode, { hint: string; actions: FailureAction[] }>> = {
  BROKER_UNREACHABLE: {
    hint: 'Start it with `agentvm serve`, or set agentvm.brokerUrl to where it runs (with agentvm.autoStartBroker on, a broker on this machine is started for you).',
    actions: [
      { title: 'Open settings', command: 'workbench.action.openSettings', args: ['agentvm.'] },
    ],
  },
  BROKER_CONNECTION_LOST: {
    hint: 'The broker stopped while it handled this. Once it answers again, check in the Agents view whether the change took effect before you repeat it; the agentvm log says why it stopped.',
    actions: [refresh],
  },
  BROKER_TIMEOUT: {
    hint: 'The broker took this and gave no answer in time (busy, or stuck). Check in the Agents view whether the change took effect before you repeat it; the agentvm log says what it was doing.',
    actions: [refresh],
  },
  UNAUTHORIZED: {
    hint: 'Sign in with the token `agentvm serve` printed (or the one in its token file).',
    actions: [{ title: 'Sign in', command: 'agentvm.signIn' }],
  },
  AGENT_NOT_FOUND: {
    hint: 'It may have been removed elsewhere; refresh the Agents view.',
    actions: [refresh],
  },
  INVALID_STATE: {
    hint: 'The agent is not in a state that allows this; the Agents view shows its state.',
    actions: [refresh],
  },
  PROFILE_NOT_FOUND: {
    hint: "Delegate again and pick one of the broker's profiles (the list is read fresh each time).",
    actions: [],
  },
};

/**
 * The message for a failed command: the error's message, its code and the hint that says what to
 * do, with buttons where one helps; "Show log" always. The text is made inert, since an error can
 * carry an agent's or its VM's words and a notification turns links in it into commands.
 */
export function failureNotice(error: unknown): FailureNotice {
  if (!(error instanceof AgentvmError)) {
    const message = error instanceof Error ? error.message : String(error);
    return { text: inertText(`${message} (INTERNAL)`), actions: [showLog] };
  }

  const advice = editorAdvice[error.code];
  const useAdvice = advice !== undefined && error.hint === errorCatalog[error.code].hint;
  const hint = useAdvice ? advice.hint : error.hint;
  const text = `${error.message} (${error.code}).${hint ? ` ${hint}` : ''}`;
  return {
    text: inertText(text),
    actions: [...(useAdvice ? advice.actions : []), showLog],
  };
}
