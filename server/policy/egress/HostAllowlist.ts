import net from 'node:net';

/** One parsed allowlist entry. */
export interface HostPattern {
  /** The entry as written in the profile. */
  source: string;
  /** Lower-case host without a trailing dot; for wildcards the suffix after `*.`. */
  host: string;
  wildcard: boolean;
  /** `null`: the default web ports (80 and 443); `'any'`: every port. */
  port: number | 'any' | null;
}

/** Ports an entry without `:port` allows: plain HTTP and HTTPS only, so a bare name is not a tunnel to SSH or SMTP. */
export const DEFAULT_ALLOWED_PORTS: readonly number[] = [80, 443];

/**
 * Parse one allowlist entry: `example.com`, `*.example.com` (subdomains at any depth, not the apex),
 * `host:8443`, `host:*`, `10.0.0.5`, `[::1]:8080`. Throws a readable error for anything else.
 */
export function parseHostPattern(source: string): HostPattern {
  const text = source.trim();
  let hostPart = text;
  let portPart: string | null = null;

  const bracketed = /^\[([0-9a-fA-F:.]+)\](?::(\d+|\*))?$/.exec(text);
  if (bracketed) {
    hostPart = bracketed[1];
    portPart = bracketed[2] ?? null;
  } else if (text.split(':').length === 2) {
    [hostPart, portPart] = text.split(':');
  } else if (text.includes(':') && net.isIPv6(text)) {
    hostPart = text;
  }

  const port = parsePort(portPart, source);
  const wildcard = hostPart.startsWith('*.');
  const host = normalizeHost(wildcard ? hostPart.slice(2) : hostPart);
  const validName = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;
  if (!net.isIP(host) && !validName.test(host)) {
    throw new Error(`allowlist entry "${source}" is not a host name, *.suffix or IP address`);
  }

  if (wildcard && (net.isIP(host) || !host.includes('.'))) {
    throw new Error(
      `allowlist entry "${source}": a wildcard needs a domain with a dot, e.g. *.example.com`,
    );
  }
  // No top-level domain is all digits: `*.0.1` could only ever match IP addresses (127.0.0.1).
  if (wildcard && /^\d+$/.test(host.slice(host.lastIndexOf('.') + 1))) {
    throw new Error(
      `allowlist entry "${source}": a wildcard must end in a domain name, not digits (it would match IP addresses); list each address on its own`,
    );
  }

  return { source, host, wildcard, port };
}

function parsePort(text: string | null, source: string): HostPattern['port'] {
  if (text === null) return null;
  if (text === '*') return 'any';

  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535) {
    throw new Error(`allowlist entry "${source}" has an invalid port "${text}"`);
  }
  return port;
}

/**
 * Lower-case, without brackets or a trailing dot, and an IPv6 address in one spelling (RFC 5952,
 * as the URL parser writes it: `0:0:0:0:0:0:0:1` is `::1`): the form every comparison uses.
 */
export function normalizeHost(host: string): string {
  const name = host
    .trim()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '')
    .toLowerCase();
  if (!net.isIPv6(name)) return name;

  try {
    return new URL(`http://[${name}]/`).hostname.slice(1, -1);
  } catch {
    // A zone index (`fe80::1%eth0`) has no URL form; such an address is compared as written.
    return name;
  }
}

/** Whether `pattern` admits a connection to `host`:`port`. */
export function patternMatches(pattern: HostPattern, host: string, port: number): boolean {
  const name = normalizeHost(host);
  // A wildcard names domains: an IP address is allowed only by an entry that names it.
  const hostMatches = pattern.wildcard
    ? !net.isIP(name) && name.endsWith('.' + pattern.host)
    : name === pattern.host;
  if (!hostMatches) return false;

  if (pattern.port === 'any') return true;
  if (pattern.port === null) return DEFAULT_ALLOWED_PORTS.includes(port);
  return pattern.port === port;
}

/** An agent's allowlist: parsed once, replaced as a whole when the profile or an admin changes it. */
export class HostAllowlist {
  readonly patterns: readonly HostPattern[];

  constructor(entries: readonly string[]) {
    this.patterns = entries.map(parseHostPattern);
  }

  /** The entry that admits `host`:`port`, or `null` when none does. */
  match(host: string, port: number): HostPattern | null {
    return this.patterns.find((pattern) => patternMatches(pattern, host, port)) ?? null;
  }

  allows(host: string, port: number): boolean {
    return this.match(host, port) !== null;
  }

  /** The entries as written, for events and the audit log. */
  get entries(): string[] {
    return this.patterns.map((pattern) => pattern.source);
  }
}
