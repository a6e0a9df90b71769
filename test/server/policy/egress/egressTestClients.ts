import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';

/**
 * Test upstreams on 127.0.0.1 and clients that reach them through an agent's egress proxy socket,
 * for the egress proxy's tests.
 */

export interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Issuer CN of the certificate the client saw, for HTTPS. */
  issuer?: string;
}

/** A test upstream on 127.0.0.1 that records what it receives and answers with JSON. */
export async function startUpstream(cert?: { certPem: string; keyPem: string }) {
  const received: Received[] = [];
  const handler = (request: http.IncomingMessage, response: http.ServerResponse) => {
    request.resume();
    request.on('end', () => {
      received.push({ method: request.method!, url: request.url!, headers: request.headers });
      response.writeHead(request.method === 'POST' ? 201 : 200, {
        'content-type': 'application/json',
      });
      response.end(JSON.stringify({ ok: true, url: request.url }));
    });
  };
  const server = cert
    ? https.createServer({ cert: cert.certPem, key: cert.keyPem }, handler)
    : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, received, port: (server.address() as net.AddressInfo).port };
}

/** A plain-HTTP proxy request: absolute URL to the proxy. */
export function viaProxy(
  proxySocket: string,
  url: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request({
      socketPath: proxySocket,
      // One connection per request: a policy change closes kept-alive connections (tested apart).
      agent: false,
      path: url,
      headers: { host: new URL(url).host, ...headers },
    });
    request.on('response', (response) => collect(response).then(resolve, reject));
    request.on('error', reject);
    request.end();
  });
}

/** CONNECT through the proxy, then TLS trusting `ca`, then one request. */
export function viaConnect(
  proxySocket: string,
  target: string,
  ca: string,
  request: { method?: string; path?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const connect = http.request({
      socketPath: proxySocket,
      method: 'CONNECT',
      path: target,
    });
    connect.on('error', reject);
    connect.on('connect', (response, socket) => {
      if (response.statusCode !== 200) {
        collectSocket(response.statusCode!, response.headers, socket).then(resolve, reject);
        return;
      }

      const host = target.replace(/:\d+$/, '');
      const secure = tls.connect({
        socket,
        ca,
        servername: net.isIP(host) ? undefined : host,
        host,
      });
      secure.on('error', reject);
      secure.on('secureConnect', () => {
        const issuer = String(secure.getPeerCertificate().issuer.CN);
        const inner = https.request({
          method: request.method ?? 'GET',
          path: request.path ?? '/',
          headers: { host: target, ...request.headers },
          createConnection: () => secure,
        });
        inner.on('response', (answer) =>
          collect(answer).then((result) => resolve({ ...result, issuer }), reject),
        );
        inner.on('error', reject);
        inner.end();
      });
    });
    connect.end();
  });
}

export function collect(response: http.IncomingMessage): Promise<Answer> {
  return new Promise((resolve) => {
    let body = '';
    response.setEncoding('utf8');
    response.on('data', (chunk) => (body += chunk));
    response.on('end', () =>
      resolve({ status: response.statusCode!, headers: response.headers, body }),
    );
  });
}

export function collectSocket(
  status: number,
  headers: http.IncomingHttpHeaders,
  socket: net.Socket,
): Promise<Answer> {
  return new Promise((resolve) => {
    let body = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => (body += chunk));
    socket.on('end', () => resolve({ status, headers, body }));
    socket.on('close', () => resolve({ status, headers, body }));
  });
}

/** Resolves true when `socket` closes within `ms`, false otherwise. */
export function closesWithin(socket: net.Socket, ms: number): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true);

  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
