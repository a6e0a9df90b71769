import dns from 'node:dns';
import net from 'node:net';

/**
 * Whether connecting to `address` would reach the broker's own machine or a cloud metadata
 * service: loopback, unspecified, and link-local addresses (IPv4, IPv6 and IPv4-mapped IPv6).
 */
export function isHostLocalAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const ip = mapped ? mapped[1] : address;

  if (net.isIPv4(ip)) {
    const [first, second] = ip.split('.').map(Number);
    return first === 127 || first === 0 || (first === 169 && second === 254);
  }
  const lower = ip.toLowerCase();
  return lower === '::1' || lower === '::' || /^fe[89ab][0-9a-f]:/.test(lower);
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
