import * as vscode from 'vscode';
import type { ComponentLog } from '../log';
import { showWithActions } from '../views/showWithActions';
import { failureNotice } from './failureNotice';

/** Thrown (or use vscode.CancellationError) when the user backs out; never shown. */
export class UserCancelled extends Error {
  constructor() {
    super('cancelled by the user');
    this.name = 'UserCancelled';
  }
}

/** Whether an error is the user backing out of a prompt. */
export function isCancellation(error: unknown): boolean {
  return error instanceof UserCancelled || error instanceof vscode.CancellationError;
}

/** The one-line text shown for a failed command: message, code and the hint that says what to do. */
export function describeFailure(error: unknown): string {
  return failureNotice(error).text;
}

/**
 * Wraps a command handler once: logs enter / done / failed, shows one error message with code,
 * hint and the buttons that help on failure, shows nothing on cancellation. Returns the handler's
 * value, or undefined.
 */
export function wrapCommand<A extends unknown[], R>(
  id: string,
  log: ComponentLog,
  handler: (...args: A) => Promise<R> | R,
): (...args: A) => Promise<R | undefined> {
  return async (...args: A) => {
    log.debug(`${id} - enter`);
    try {
      const result = await handler(...args);
      log.debug(`${id} - done`);
      return result;
    } catch (error) {
      if (isCancellation(error)) {
        log.debug(`${id} - cancelled`);
        return undefined;
      }

      const notice = failureNotice(error);
      log.error(`${id} - failed: ${notice.text}`);
      void showWithActions('error', notice.text, notice.actions);
      return undefined;
    }
  };
}
