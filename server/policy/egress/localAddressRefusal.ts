import net from 'node:net';
import { canonicalAddress } from './guardedLookup';

/** Which kind of host-local address a name resolved to, for the audit row and the refusal. */
export type HostLocalClass = 'loopback' | 'unspecified' | 'link-local' | 'host-interface';

/** A connection the proxy would not make because the name resolved to a host-local address. */
export interface LocalAddressRefusal {
  addressClass: HostLocalClass;
  /** The refused address. */
  address: string;
  /** One sentence for the audit row and the guest: what happened and how to allow it. */
  reason: string;
}

const descriptions: Record<HostLocalClass, string> = {
  loopback: 'a loopback address',
  unspecified: 'the unspecified address',
  'link-local': 'a link-local address (where cloud metadata services answer)',
  'host-interface': "an address of the broker host's own interfaces",
};

/**
 * The kind of a host-local address (one `isHostLocalAddress` refuses): loopback, unspecified and
 * link-local by their ranges, anything else by being an address of the host's interfaces.
 */
export function hostLocalClass(address: string): HostLocalClass {
  const ip = canonicalAddress(address);
  if (net.isIPv4(ip)) {
    const [first, second] = ip.split('.').map(Number);
    if (first === 127) return 'loopback';
    if (first === 0) return 'unspecified';
    if (first === 169 && second === 254) return 'link-local';
    return 'host-interface';
  }
  if (ip === '::1') return 'loopback';
  if (ip === '::') return 'unspecified';
  if (/^fe[89ab][0-9a-f]:/.test(ip)) return 'link-local';
  return 'host-interface';
}

/**
 * What a `guardedLookup` refusal (code `EGRESS_LOCAL_ADDRESS`) means for `host`, or null for any
 * other error. guardedLookup names the first refused address at the end of its message.
 */
export function localAddressRefusal(error: Error, host: string): LocalAddressRefusal | null {
  if ((error as NodeJS.ErrnoException).code !== 'EGRESS_LOCAL_ADDRESS') return null;

  const address = /\(([^()\s]+)\)$/.exec(error.message)?.[1] ?? 'unknown';
  const addressClass = hostLocalClass(address);
  return {
    addressClass,
    address,
    reason:
      `${host} resolves to ${descriptions[addressClass]} (${address}), a host-local address the ` +
      'proxy does not connect to by name; list the literal address in allowedHosts to reach it',
  };
}
