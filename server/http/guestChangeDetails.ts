import type { GuestRequest } from '../../protocol/control';

/** Longest command text kept in an audit row. */
const AUDITED_COMMAND_CHARS = 500;

/**
 * What an audit row says of a guest request that changes the VM (a command run or interrupted, a
 * file written, removed or moved), or null for one that only reads.
 */
export function guestChangeDetails(request: GuestRequest): Record<string, unknown> | null {
  switch (request.op) {
    case 'exec':
      return {
        op: request.op,
        command: request.command.slice(0, AUDITED_COMMAND_CHARS),
        ...(request.command.length > AUDITED_COMMAND_CHARS && {
          commandChars: request.command.length,
        }),
        ...(request.cwd !== undefined && { cwd: request.cwd }),
        ...(request.execId !== undefined && { execId: request.execId }),
      };
    case 'exec.interrupt':
      return { op: request.op, execId: request.execId };
    case 'fs.writeFile':
      return {
        op: request.op,
        path: request.path,
        bytes: Buffer.byteLength(request.data, 'base64'),
      };
    case 'fs.delete':
    case 'fs.mkdir':
      return { op: request.op, path: request.path };
    case 'fs.rename':
      return { op: request.op, from: request.from, to: request.to };
    case 'fs.stat':
    case 'fs.readdir':
    case 'fs.readFile':
    case 'changes':
      return null;
  }
}
