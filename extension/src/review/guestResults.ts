/** The guest's answers to file-API and exec requests; one definition in protocol/guestResults.ts. */
export {
  changesResultSchema,
  execInterruptResultSchema,
  execResultSchema,
  readdirResultSchema,
  readFileResultSchema,
  statResultSchema,
  type ChangesResult,
  type ExecResult,
} from '../../../protocol/guestResults';
import type { ChangesResult } from '../../../protocol/guestResults';

export type WorkspaceChange = ChangesResult[number];
