import net from 'node:net';
import { normalizeHost } from './HostAllowlist';

/** The upstream a request was checked against: its allowlisted name, port, and scheme. */
export interface AuthorityTarget {
  host: string;
  port: number;
  tls: boolean;
}

/** `host[:port]` as the Host header sent upstream (the port left out when it is the default). */
export function targetAuthority(target: AuthorityTarget): string {
  const host = net.isIPv6(target.host) ? `[${target.host}]` : target.host;
  return target.port === defaultPort(target) ? host : `${host}:${target.port}`;
}

/**
 * Why a request's Host header (or an absolute URL's authority) names another server than the
 * one the allowlist was checked for; null when it names the same one or is absent (HTTP/1.0).
 * The upstream must not be told a different name: it would route, redirect or reflect by it.
 */
export function hostHeaderMismatch(
  header: string | string[] | undefined,
  target: AuthorityTarget,
): string | null {
  if (header === undefined) return null;

  const expected = targetAuthority(target);
  if (Array.isArray(header)) return `more than one Host header; the target is ${expected}`;

  const refusal = `the Host header "${header.slice(0, 100)}" does not match the target ${expected}`;
  const parts = /^(\[[^\]]*\]|[^:@/\\[\]\s]+)(?::(\d{1,5}))?$/.exec(header.trim());
  if (!parts) return refusal;

  const port = parts[2] === undefined ? defaultPort(target) : Number(parts[2]);
  if (port !== target.port) return refusal;

  const spellings = [normalizeHost(parts[1])];
  try {
    // The URL parser's spelling, as the absolute URL of a plain request was read.
    spellings.push(normalizeHost(new URL(`http://${parts[1]}/`).hostname));
  } catch {
    return refusal;
  }
  return spellings.includes(target.host) ? null : refusal;
}

function defaultPort(target: AuthorityTarget): number {
  return target.tls ? 443 : 80;
}
