import fs from 'node:fs';

/** The address the guest uses as its HTTP(S) proxy; QEMU forwards it to the agent's listener. */
export const GUEST_PROXY_ADDRESS = '10.0.2.100';
export const GUEST_PROXY_PORT = 3128;

/** Where the guest keeps the broker's CA certificate (Debian's local CA directory). */
export const GUEST_CA_PATH = '/usr/local/share/ca-certificates/agentvm-egress.crt';

/** Candidates for the per-connection relay QEMU runs; busybox-static is already a host requirement. */
const relayCandidates = ['/usr/bin/busybox', '/bin/busybox'];

/**
 * The QEMU user-network arguments that give a guest exactly one way out: `restrict=on` cuts it
 * off from the host and the outside, and `guestfwd` turns each guest connection to
 * {@link GUEST_PROXY_ADDRESS}:{@link GUEST_PROXY_PORT} into a `busybox nc` process connected to the
 * agent's proxy listener on the host. (`guestfwd` to a chardev instead of `cmd:` would carry only one
 * guest connection at a time.)
 */
export function egressNetdevArgs(
  hostPort: number,
  netdevId = 'net0',
  relay = findRelay(),
): string[] {
  const command = `${relay} nc 127.0.0.1 ${hostPort}`;
  const netdev = [
    'user',
    `id=${netdevId}`,
    'restrict=on',
    `guestfwd=tcp:${GUEST_PROXY_ADDRESS}:${GUEST_PROXY_PORT}-cmd:${command}`,
  ].join(',');
  return ['-netdev', netdev, '-device', `virtio-net-device,netdev=${netdevId}`];
}

/** The busybox binary QEMU runs per connection; throws with the package to install when missing. */
export function findRelay(): string {
  const found = relayCandidates.find((candidate) => fs.existsSync(candidate));
  if (!found)
    throw new Error(
      'busybox is missing on the host; install busybox-static (`agentvm doctor --fix`)',
    );
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
