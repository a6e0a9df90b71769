import { posix } from 'node:path';

/** URI scheme of a reviewed agent's workspace: `agentvm://<agentId>/<path in the workspace>`. */
export const AGENT_SCHEME = 'agentvm';

/** URI scheme of a file's base-commit version: `agentvm-base://<agentId>/<path>?<commit>`. */
export const AGENT_BASE_SCHEME = 'agentvm-base';

/**
 * The guest path for a URI path: relative, which the guest agent resolves against the agent's
 * workspace. Paths are confined to the workspace: `..` cannot climb out, because the reviewer's
 * view of the VM is its workspace, nothing else.
 */
export function guestPath(uriPath: string): string {
  return workspaceRelativePath(uriPath) || '.';
}

/** The workspace-relative path for a URI path (no leading slash), as git names files. */
export function workspaceRelativePath(uriPath: string): string {
  return posix
    .normalize('/' + uriPath)
    .replace(/^\/+/, '')
    .replace(/\/$/, '');
}

/** Single-quotes a string for `sh -c`. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
