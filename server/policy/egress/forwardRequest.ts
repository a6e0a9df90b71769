import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { pipeline, type Readable } from 'node:stream';
import tls from 'node:tls';
import zlib from 'node:zlib';
import {
  scrubHeaders,
  scrubText,
  SecretScrubber,
  type ScrubbedSecret,
} from '../secrets/SecretScrubber';
import { guardedLookup } from './guardedLookup';
import { localAddressRefusal } from './localAddressRefusal';
import { refuse } from './refuse';

/** Where a request goes: the upstream server, and whether the proxy speaks TLS to it. */
export interface UpstreamTarget {
  host: string;
  port: number;
  tls: boolean;
  /** Connect to host-local addresses: only when the allowlist names this literal address. */
  allowLocal: boolean;
}

/** How long an upstream may stay silent, or take to accept a CONNECT, in milliseconds. */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 30_000;

export interface ForwardOptions {
  /** CA certificates (PEM) trusted for upstream TLS; system roots when absent. */
  upstreamCa?: string[];
  /** Give up on an upstream that has not answered within this many milliseconds. */
  upstreamTimeoutMs: number;
  /** Replace these secrets' real values in the answer; the answer passes untouched when absent. */
  scrub?: ResponseScrub;
}

/** How an answer is cleaned of real secret values before the guest sees it. */
export interface ResponseScrub {
  secrets: readonly ScrubbedSecret[];
  /**
   * Decode compressed bodies (gzip, deflate, br) so they can be scrubbed, and refuse any other
   * encoding: set for upstreams that may have received a value. Otherwise a compressed body
   * passes as it is (its headers are still scrubbed).
   */
  decode: boolean;
}

const hopByHop = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Headers without hop-by-hop ones (including any the Connection header names). */
export function endToEndHeaders(headers: http.IncomingHttpHeaders | http.OutgoingHttpHeaders) {
  const named = String(headers.connection ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter(Boolean);
  const result: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (
      value === undefined ||
      hopByHop.has(name.toLowerCase()) ||
      named.includes(name.toLowerCase())
    )
      continue;
    result[name] = typeof value === 'number' ? String(value) : value;
  }
  return result;
}

/**
 * Send the guest's request on to the upstream and stream the answer back. Resolves when the
 * response has been handed over or an error answer was written; `onUpstreamError` reports why.
 */
export function forwardRequest(
  request: http.IncomingMessage,
  response: http.ServerResponse,
  target: UpstreamTarget,
  path: string,
  headers: Record<string, string | string[]>,
  options: ForwardOptions,
  onUpstreamError: (error: Error) => void,
): void {
  const common = {
    host: target.host,
    port: target.port,
    method: request.method,
    path,
    headers,
    agent: false as const,
    lookup: guardedLookup(target.allowLocal) as never,
    timeout: options.upstreamTimeoutMs,
  };
  const upstream = target.tls
    ? https.request({
        ...common,
        servername: net.isIP(target.host) ? undefined : target.host,
        ca: options.upstreamCa ? [...tls.rootCertificates, ...options.upstreamCa] : undefined,
      })
    : http.request(common);

  upstream.on('response', (answer) => {
    if (options.scrub && options.scrub.secrets.length > 0) {
      return relayScrubbed(request, answer, response, options.scrub);
    }
    response.writeHead(
      answer.statusCode ?? 502,
      answer.statusMessage,
      endToEndHeaders(answer.headers),
    );
    answer.pipe(response);
    answer.on('error', () => response.destroy());
  });

  upstream.on('timeout', () =>
    upstream.destroy(new Error(`upstream ${target.host}:${target.port} did not answer in time`)),
  );
  let guestGone = false;
  upstream.on('error', (error) => {
    if (guestGone) return;

    onUpstreamError(error);
    if (response.headersSent) return response.destroy();

    const local = localAddressRefusal(error, target.host);
    if (local) return refuse(response, 502, local.reason);

    // The message may quote the upstream (a certificate's names): scrub it like the answer itself.
    const message = options.scrub ? scrubText(error.message, options.scrub.secrets) : error.message;
    const text = `agentvm egress proxy: cannot reach ${target.host}:${target.port}: ${message}\n`;
    response.writeHead(502, {
      'content-type': 'text/plain; charset=utf-8',
      'x-agentvm-egress': 'upstream-error',
    });
    response.end(text);
  });

  request.pipe(upstream);
  // A guest that stops sending after a complete request still wants the answer.
  request.on('error', () => {
    if (!request.complete) upstream.destroy();
  });
  // 'close' also follows a normal end, when there is nothing left to cut. Otherwise the guest's
  // side went away (it hung up, or `agentvm deny` cut it): the upstream would wait out its timeout.
  response.on('close', () => {
    if (response.writableFinished) return;

    guestGone = true;
    upstream.destroy();
  });
}

const decoders: Record<string, () => zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress> = {
  gzip: () => zlib.createGunzip(),
  'x-gzip': () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
};

/**
 * Content and transfer codings in IANA's HTTP registries. A refusal names only these: any other
 * name is the upstream's free text, which could carry a value it received (lower-cased, as
 * {@link codings} reads it, so the scrubber would not recognise it).
 */
const registeredCodings = new Set([
  'aes128gcm',
  'br',
  'chunked',
  'compress',
  'dcb',
  'dcz',
  'deflate',
  'exi',
  'gzip',
  'identity',
  'pack200-gzip',
  'x-compress',
  'x-gzip',
  'zstd',
]);

/** How a refusal names a coding the upstream sent: registered names as they are, others not. */
function describeCoding(name: string): string {
  return registeredCodings.has(name)
    ? name
    : `of an unregistered name (${name.length} characters, not shown)`;
}

/** The comma-separated coding names of a header, lower-cased, without empty entries. */
function codings(header: string | string[] | undefined): string[] {
  return String(header ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '');
}

/**
 * Hands an answer to the guest with every real secret value replaced by its placeholder, in the
 * status line's reason phrase, the headers and (streaming, through {@link SecretScrubber}) the
 * body. The body's length changes when a value is replaced, so Content-Length is dropped and the
 * answer goes chunked.
 */
function relayScrubbed(
  request: http.IncomingMessage,
  answer: http.IncomingMessage,
  response: http.ServerResponse,
  scrub: ResponseScrub,
): void {
  const status = answer.statusCode ?? 502;
  const statusMessage = scrubText(answer.statusMessage ?? '', scrub.secrets);
  const headers = scrubHeaders(endToEndHeaders(answer.headers), scrub.secrets);
  const bodiless = request.method === 'HEAD' || status === 204 || status === 304 || status < 200;
  const encodings = codings(answer.headers['content-encoding']).filter(
    (name) => name !== 'identity',
  );

  // Node takes the chunking off but leaves any other transfer-coding on the body, so a gzipped
  // value would pass the scrubber unrecognised (and the guest, told nothing, could still gunzip it).
  const transfer = codings(answer.headers['transfer-encoding']).find((name) => name !== 'chunked');
  if (!bodiless && transfer) {
    answer.destroy();
    return refuse(
      response,
      502,
      `the upstream answered with transfer-encoding ${describeCoding(transfer)}, which the proxy cannot check for secret values`,
    );
  }

  if (bodiless || (encodings.length > 0 && !scrub.decode)) {
    response.writeHead(status, statusMessage, headers);
    answer.pipe(response);
    answer.on('error', () => response.destroy());
    return;
  }

  const unknown = encodings.find((name) => !(name in decoders));
  if (unknown) {
    answer.destroy();
    return refuse(
      response,
      502,
      `the upstream answered with content-encoding ${describeCoding(unknown)}, which the proxy cannot check for secret values`,
    );
  }

  const stages: NodeJS.ReadWriteStream[] = encodings.reverse().map((name) => decoders[name]());
  delete headers['content-encoding'];
  delete headers['content-length'];
  response.writeHead(status, statusMessage, headers);
  const source: Readable = answer;
  pipeline([source, ...stages, new SecretScrubber(scrub.secrets), response], (error) => {
    if (error) response.destroy();
  });
}
