import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { endToEndHeaders, forwardRequest } from '../../../../server/policy/egress/forwardRequest';
import { closesWithin } from './egressTestClients';

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

describe('forwardRequest (unit)', () => {
  let upstream: http.Server;
  let proxy: http.Server;
  let proxyPort: number;
  /** The upstream's side of each request it received, by path, in arrival order. */
  let arrivals: Array<{ path: string; socket: net.Socket }>;
  let arrived: () => void;
  let upstreamErrors: Error[];
  let proxyConnections: number;
  const clients: net.Socket[] = [];

  beforeEach(async () => {
    arrivals = [];
    arrived = () => undefined;
    upstreamErrors = [];
    proxyConnections = 0;
    upstream = http.createServer((request, response) => {
      arrivals.push({ path: request.url ?? '', socket: request.socket });
      arrived();
      if (request.url === '/ok') return response.end(`answer to ${request.url}`);
      if (request.url === '/slow-body') {
        response.writeHead(200, { 'content-type': 'text/plain' });
        response.write('first part\n');
        return;
      }
      if (request.url === '/drop-mid-body') {
        response.writeHead(200, { 'content-length': '1000' });
        response.write('only ten b');
        setTimeout(() => request.socket.destroy(), 50);
      }
      // '/slow': never answers.
    });
    const upstreamPort = await listen(upstream);

    proxy = http.createServer((request, response) =>
      forwardRequest(
        request,
        response,
        { host: '127.0.0.1', port: upstreamPort, tls: false, allowLocal: true },
        request.url ?? '/',
        endToEndHeaders(request.headers),
        { upstreamTimeoutMs: 30_000 },
        (error) => upstreamErrors.push(error),
      ),
    );
    proxy.on('connection', () => proxyConnections++);
    proxyPort = await listen(proxy);
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.destroy();
    upstream.closeAllConnections();
    proxy.closeAllConnections();
    await Promise.all([upstream, proxy].map((s) => new Promise((done) => s.close(done))));
  });

  /** A raw guest connection to the proxy that has sent `GET path` and waits for it to arrive. */
  async function guestAsks(path: string): Promise<{ guest: net.Socket; upstreamSide: net.Socket }> {
    const guest = net.connect(proxyPort, '127.0.0.1');
    clients.push(guest);
    guest.on('error', () => undefined);
    guest.resume();
    const seen = new Promise<void>((resolve) => (arrived = resolve));
    guest.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await seen;
    return { guest, upstreamSide: (arrivals.at(-1) as { socket: net.Socket }).socket };
  }

  it('closes the upstream connection soon after the guest hangs up before any answer', async () => {
    const { guest, upstreamSide } = await guestAsks('/slow');

    guest.destroy();

    assert.equal(await closesWithin(upstreamSide, 5000), true, 'upstream still open');
    assert.deepEqual(upstreamErrors, [], 'a guest hanging up is not an upstream failure');
  });

  it('closes the upstream connection when the guest hangs up in the middle of the answer', async () => {
    const { guest, upstreamSide } = await guestAsks('/slow-body');
    await new Promise<void>((resolve) => guest.once('data', () => resolve()));

    guest.destroy();

    assert.equal(await closesWithin(upstreamSide, 5000), true, 'upstream still open');
  });

  it('closes the guest connection when the upstream drops in the middle of the answer', async () => {
    const { guest } = await guestAsks('/drop-mid-body');

    assert.equal(await closesWithin(guest, 5000), true, 'guest left waiting for the rest');
  });

  it('keeps the guest connection alive across complete answers', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const get = (path: string) =>
        new Promise<string>((resolve, reject) => {
          const request = http.get({ host: '127.0.0.1', port: proxyPort, path, agent });
          request.on('error', reject);
          request.on('response', (response) => {
            let body = '';
            response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
            response.on('end', () => resolve(body));
          });
        });

      assert.equal(await get('/ok'), 'answer to /ok');
      assert.equal(await get('/ok'), 'answer to /ok');
      assert.equal(proxyConnections, 1);
      assert.equal(arrivals.length, 2);
    } finally {
      agent.destroy();
    }
  });
});
