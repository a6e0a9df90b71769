import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The address the guest uses as its HTTP(S) proxy; QEMU forwards it to the agent's listener. */
export const GUEST_PROXY_ADDRESS = '10.0.2.100';
export const GUEST_PROXY_PORT = 3128;

/** Where the guest keeps the broker's CA certificate (Debian's local CA directory). */
export const GUEST_CA_PATH = '/usr/local/share/ca-certificates/agentvm-egress.crt';

/** Candidates for the per-connection relay QEMU runs (Debian's `socat`). */
const relayCandidates = ['/usr/bin/socat', '/bin/socat'];

/**
 * Seconds the relay keeps a connection open after the guest half-closed it, for the rest of the
 * proxy's answer; socat restarts this wait whenever data moves. A connection whose proxy side ended
 * first is not kept at all (see {@link egressNetdevArgs}).
 */
const RELAY_LINGER_SECONDS = 300;

/** The longest unix socket path the kernel accepts (`sun_path` is 108 bytes with its NUL). */
const MAX_SOCKET_PATH_BYTES = 107;

/**
 * Characters a socket path may hold: it passes through QEMU's option parser, glib's argv splitting
 * and socat's address syntax, which give `,` `:` `!` quotes and spaces meanings.
 */
const SAFE_SOCKET_PATH = /^[A-Za-z0-9._/+-]+$/;

/**
 * Where an agent's egress listener (a unix socket) lives: `<agentDir>/egress/proxy.sock`, or, when
 * that path is too long for a socket or holds characters the relay command cannot carry,
 * `<tmpDir>/agentvm-egress-<hash of agentDir>/proxy.sock`, which is stable across broker restarts.
 * The directory is made 0700 by {@link EgressProxy.addAgent}: only the broker's user can connect.
 */
export function egressSocketPath(agentDirectory: string, tmpDir = os.tmpdir()): string {
  const resolved = path.resolve(agentDirectory);
  const preferred = path.join(resolved, 'egress', 'proxy.sock');
  if (usableSocketPath(preferred)) return preferred;

  const hash = crypto.createHash('sha256').update(resolved).digest('hex').slice(0, 16);
  const fallback = path.join(path.resolve(tmpDir), `agentvm-egress-${hash}`, 'proxy.sock');
  if (usableSocketPath(fallback)) return fallback;

  throw new Error(
    `no usable path for the egress socket of ${resolved}: ${fallback} is too long or holds characters other than letters, digits and ._/+- (set TMPDIR to a short plain directory)`,
  );
}

function usableSocketPath(candidate: string): boolean {
  return SAFE_SOCKET_PATH.test(candidate) && Buffer.byteLength(candidate) <= MAX_SOCKET_PATH_BYTES;
}

/**
 * The QEMU user-network arguments that give a guest exactly one way out: `restrict=on` cuts it
 * off from the host and the outside, and `guestfwd` turns each guest connection to
 * {@link GUEST_PROXY_ADDRESS}:{@link GUEST_PROXY_PORT} into a `socat` process connected to the
 * agent's proxy listener, the unix socket at `socketPath` (see {@link egressSocketPath}).
 * (`guestfwd` to a chardev instead of `cmd:` would carry only one guest connection at a time.)
 */
export function egressNetdevArgs(
  socketPath: string,
  netdevId = 'net0',
  relay = findRelay(),
): string[] {
  if (!SAFE_SOCKET_PATH.test(socketPath) || !SAFE_SOCKET_PATH.test(relay))
    throw new Error(`cannot pass ${socketPath} (or ${relay}) through QEMU's guestfwd command`);

  // The two sides of a relay end differently, so that a guest holds no more relays (host
  // processes) than the proxy holds its connections, whatever it does with its side:
  // - the proxy ends (it refused the connection over the agent's limit, or answered): the relay
  //   exits at once. slirp hands socat one socket as both stdin and stdout, and `FD:0,shut-close`
  //   closes that one descriptor, which ends its read part too, so socat does not wait (-t applies
  //   only where read and write parts close apart); its exit shows the guest the end. With
  //   `STDIO,shut-down` socat waited the whole -t for a guest that never closed.
  // - the guest ends first (it half-closed after its request): socat shuts down the write part of
  //   the unix socket and waits for the answer, which may stay silent up to -t; the proxy counts
  //   that connection until it closes it.
  // socat 1.7.4 logs that closed descriptor as a failed poll, a line in qemu.log for every
  // connection the proxy ends, which a guest could grow without end; -lf /dev/null drops it with
  // socat's other messages (a failed connect). The comma is doubled for QEMU's option parser.
  const command = `${relay} -t ${RELAY_LINGER_SECONDS} -lf /dev/null FD:0,,shut-close UNIX-CONNECT:${socketPath}`;
  const netdev = [
    'user',
    `id=${netdevId}`,
    'restrict=on',
    `guestfwd=tcp:${GUEST_PROXY_ADDRESS}:${GUEST_PROXY_PORT}-cmd:${command}`,
  ].join(',');
  return ['-netdev', netdev, '-device', `virtio-net-device,netdev=${netdevId}`];
}

/** The socat binary QEMU runs per connection; throws with the package to install when missing. */
export function findRelay(): string {
  const found = relayCandidates.find((candidate) => fs.existsSync(candidate));
  if (!found)
    throw new Error('socat is missing on the host; install socat (`agentvm doctor --fix`)');
  return found;
}

/**
 * Environment for processes in the guest: the proxy for every common client, and the broker CA for
 * runtimes that do not read the system store (Node, Python requests, git, curl).
 */
export function guestProxyEnvironment(): Record<string, string> {
  const proxy = `http://${GUEST_PROXY_ADDRESS}:${GUEST_PROXY_PORT}`;
  const caBundle = '/etc/ssl/certs/ca-certificates.crt';
  return {
    http_proxy: proxy,
    https_proxy: proxy,
    HTTP_PROXY: proxy,
    HTTPS_PROXY: proxy,
    no_proxy: 'localhost,127.0.0.1',
    NO_PROXY: 'localhost,127.0.0.1',
    NODE_EXTRA_CA_CERTS: GUEST_CA_PATH,
    NODE_USE_ENV_PROXY: '1',
    REQUESTS_CA_BUNDLE: caBundle,
    SSL_CERT_FILE: caBundle,
    GIT_SSL_CAINFO: caBundle,
    CURL_CA_BUNDLE: caBundle,
  };
}
