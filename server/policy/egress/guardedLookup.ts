import dns from 'node:dns';
import net from 'node:net';
import os from 'node:os';

/** How long the host's interface addresses are reused before being read again, in milliseconds. */
const INTERFACE_CACHE_MS = 1000;

let interfaceCache: { readAtMs: number; addresses: ReadonlySet<string> } | null = null;

/**
 * Every address of the host's own network interfaces (os.networkInterfaces()), in canonical form.
 * Read again after {@link INTERFACE_CACHE_MS}: an interface may come up while the broker runs.
 */
export function hostInterfaceAddresses(nowMs = Date.now()): ReadonlySet<string> {
  const ageMs = interfaceCache ? nowMs - interfaceCache.readAtMs : -1;
  if (interfaceCache && ageMs >= 0 && ageMs < INTERFACE_CACHE_MS) return interfaceCache.addresses;

  const addresses = new Set<string>();
  for (const entries of Object.values(os.networkInterfaces())) {
    for (const entry of entries ?? []) addresses.add(canonicalAddress(entry.address));
  }
  interfaceCache = { readAtMs: nowMs, addresses };
  return addresses;
}

/**
 * One spelling per address, so that interface addresses and resolved ones compare equal:
 * IPv4-mapped IPv6 becomes IPv4, IPv6 is compressed and lower-cased, a zone index is dropped.
 */
export function canonicalAddress(address: string): string {
  const unzoned = address.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(unzoned);
  if (mapped) return mapped[1];
  if (!net.isIPv6(unzoned)) return unzoned;

  // The URL parser is Node's own IPv6 serializer (RFC 5952 form), also for IPv4-mapped hex forms.
  const serialized = new URL(`http://[${unzoned}]/`).hostname.slice(1, -1);
  const hexMapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(serialized);
  if (!hexMapped) return serialized;

  const high = parseInt(hexMapped[1], 16);
  const low = parseInt(hexMapped[2], 16);
  return [high >> 8, high & 255, low >> 8, low & 255].join('.');
}

/**
 * Whether connecting to `address` would reach the broker's own machine or a cloud metadata
 * service: loopback, unspecified and link-local addresses (IPv4, IPv6 and IPv4-mapped IPv6), and
 * any address of the host's own interfaces (`interfaces`, read from the host by default).
 */
export function isHostLocalAddress(
  address: string,
  interfaces: ReadonlySet<string> = hostInterfaceAddresses(),
): boolean {
  const ip = canonicalAddress(address);
  if (interfaces.has(ip)) return true;

  if (net.isIPv4(ip)) {
    const [first, second] = ip.split('.').map(Number);
    return first === 127 || first === 0 || (first === 169 && second === 254);
  }
  return ip === '::1' || ip === '::' || /^fe[89ab][0-9a-f]:/.test(ip);
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | dns.LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for net/http/https that refuses host-local addresses, so an allowed name that
 * resolves to 127.0.0.1 (or 169.254.169.254) cannot lead a guest to the host's own services.
 * `allowLocal` lifts the rule for targets an allowlist names by their literal address.
 */
export function guardedLookup(allowLocal: boolean) {
  return (hostname: string, options: dns.LookupOptions, callback: LookupCallback): void => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, options.all ? [] : '', undefined);

      const usable = allowLocal
        ? addresses
        : addresses.filter((entry) => !isHostLocalAddress(entry.address));
      if (usable.length === 0) {
        const refused = Object.assign(
          new Error(`${hostname} resolves to a host-local address (${addresses[0]?.address})`),
          {
            code: 'EGRESS_LOCAL_ADDRESS',
          },
        );
        return callback(refused, options.all ? [] : '', undefined);
      }

      if (options.all) return callback(null, usable);
      callback(null, usable[0].address, usable[0].family);
    });
  };
}
