import { AgentvmError } from '../../../protocol/errors';

/** `error` itself when it already has a code; otherwise VM_FAILED with `context` in front. */
export function asAgentvmError(error: unknown, context: string): AgentvmError {
  if (error instanceof AgentvmError) return error;

  return new AgentvmError('VM_FAILED', `${context}: ${(error as Error).message}`);
}
