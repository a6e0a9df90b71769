import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Forged leaf certificates are valid this long; clients reject leaves over 825 days. */
const LEAF_VALIDITY_DAYS = 397;
const CA_VALIDITY_DAYS = 3650;

/**
 * Limits on forging, so that a guest reaching ever new hosts under a bound `*.suffix` costs
 * bounded memory and processes.
 */
export interface ForgeLimits {
  /** Hosts whose forged context is kept; past this the least recently used is forgotten. */
  maxCachedHosts: number;
  /** `openssl` processes forging at once; further forges wait their turn. */
  maxConcurrentForges: number;
  /**
   * Forges that may wait for a turn; a new host past this is refused at once. A waiting forge
   * runs even when the guest that asked has gone, so a guest that opens and drops connections to
   * ever new names would otherwise queue `openssl` work without end.
   */
  maxQueuedForges: number;
}

const DEFAULT_FORGE_LIMITS: ForgeLimits = {
  maxCachedHosts: 1000,
  maxConcurrentForges: 2,
  maxQueuedForges: 64,
};

/**
 * The broker's own certificate authority for the egress proxy. It signs a certificate for each
 * host whose HTTPS traffic the proxy must read (to swap in secrets or check GitHub calls); guests
 * trust its certificate. Keys are created with the `openssl` CLI and kept in `dir` with mode 0600.
 *
 * Files: `ca.key` (0600), `ca.crt` (0644, what guests trust), `leaf.key` (0600, one key shared by
 * every forged leaf, so forging a host costs one signature, not a key generation).
 */
export class CertificateAuthority {
  readonly dir: string;
  readonly certPem: string;
  private readonly leafKeyPem: string;
  /** Forged contexts by host, least recently used first. */
  private readonly contexts = new Map<string, Promise<tls.SecureContext>>();
  private readonly limits: ForgeLimits;
  private forging = 0;
  /** Forges waiting for a free slot, each woken with the slot handed over. */
  private readonly waiting: Array<() => void> = [];

  private constructor(dir: string, certPem: string, leafKeyPem: string, limits: ForgeLimits) {
    this.dir = dir;
    this.certPem = certPem;
    this.leafKeyPem = leafKeyPem;
    this.limits = limits;
  }

  /** Path of the CA certificate (PEM) to install in guests. */
  get certPath(): string {
    return path.join(this.dir, 'ca.crt');
  }

  /** SHA-256 fingerprint of the CA certificate, for `agentvm doctor` and image keys. */
  get fingerprint(): string {
    return new crypto.X509Certificate(this.certPem).fingerprint256;
  }

  /** Load the CA in `dir`, creating it (and `dir`, mode 0700) on first use. */
  static async loadOrCreate(
    dir: string,
    commonName = 'agentvm egress proxy CA',
    limits: Partial<ForgeLimits> = {},
  ): Promise<CertificateAuthority> {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const caKey = path.join(dir, 'ca.key');
    const caCert = path.join(dir, 'ca.crt');
    const leafKey = path.join(dir, 'leaf.key');

    if (!fs.existsSync(caKey) || !fs.existsSync(caCert)) {
      // Written under temporary names and renamed, so a crash never leaves a key without its cert.
      const suffix = `.tmp-${process.pid}`;
      await run('openssl', [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-noenc',
        '-keyout',
        caKey + suffix,
        '-out',
        caCert + suffix,
        '-days',
        String(CA_VALIDITY_DAYS),
        '-subj',
        `/CN=${commonName} ${crypto.randomBytes(4).toString('hex')}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE,pathlen:0',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ]);
      fs.chmodSync(caKey + suffix, 0o600);
      fs.chmodSync(caCert + suffix, 0o644);
      fs.renameSync(caKey + suffix, caKey);
      fs.renameSync(caCert + suffix, caCert);
    }

    if (!fs.existsSync(leafKey)) {
      const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
      fs.writeFileSync(leafKey, pem, { mode: 0o600 });
    }

    for (const file of [caKey, leafKey]) {
      if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
    }
    return new CertificateAuthority(
      dir,
      fs.readFileSync(caCert, 'utf8'),
      fs.readFileSync(leafKey, 'utf8'),
      { ...DEFAULT_FORGE_LIMITS, ...limits },
    );
  }

  /** A certificate for `host` (DNS name or IP address) signed by this CA, PEM. */
  async issueCertificate(host: string): Promise<{ certPem: string; keyPem: string }> {
    const altName = net.isIP(host) ? `IP:${host}` : `DNS:${host}`;
    const serial =
      '0x' +
      crypto
        .randomBytes(16)
        .toString('hex')
        .replace(/^[89a-f]/, '1');
    const { stdout } = await run('openssl', [
      'req',
      '-new',
      '-key',
      path.join(this.dir, 'leaf.key'),
      '-CA',
      path.join(this.dir, 'ca.crt'),
      '-CAkey',
      path.join(this.dir, 'ca.key'),
      '-subj',
      `/CN=${host.replace(/[/\\,+=<>#;"]/g, '')}`,
      '-days',
      String(LEAF_VALIDITY_DAYS),
      '-set_serial',
      serial,
      '-addext',
      `subjectAltName=${altName}`,
      '-addext',
      'basicConstraints=critical,CA:FALSE',
      '-addext',
      'keyUsage=critical,digitalSignature',
      '-addext',
      'extendedKeyUsage=serverAuth',
    ]);
    return { certPem: stdout, keyPem: this.leafKeyPem };
  }

  /**
   * A TLS server context presenting a forged certificate for `host`; forged once, then cached (the
   * {@link ForgeLimits.maxCachedHosts} most recently used hosts). At most
   * {@link ForgeLimits.maxConcurrentForges} `openssl` processes run at once.
   */
  secureContextFor(host: string): Promise<tls.SecureContext> {
    const key = host.toLowerCase();
    let context = this.contexts.get(key);
    if (context) {
      // Moved to the end: the map's order is the order of last use.
      this.contexts.delete(key);
      this.contexts.set(key, context);
      return context;
    }

    context = this.withForgeSlot(() => this.issueCertificate(key)).then(({ certPem, keyPem }) =>
      tls.createSecureContext({ cert: certPem + this.certPem, key: keyPem }),
    );
    // A failed forge is not cached: the next connection tries again.
    context.catch(() => {
      if (this.contexts.get(key) === context) this.contexts.delete(key);
    });
    this.contexts.set(key, context);
    for (const oldest of this.contexts.keys()) {
      if (this.contexts.size <= this.limits.maxCachedHosts) break;
      this.contexts.delete(oldest);
    }
    return context;
  }

  /**
   * Runs `forge` once fewer than maxConcurrentForges others run; each hands its slot on. Refused
   * when maxQueuedForges already wait.
   */
  private async withForgeSlot<T>(forge: () => Promise<T>): Promise<T> {
    if (this.forging < this.limits.maxConcurrentForges) this.forging++;
    else if (this.waiting.length >= this.limits.maxQueuedForges) {
      throw new Error(
        `${this.waiting.length} certificates already wait to be made (maxQueuedForges); try again`,
      );
    } else await new Promise<void>((resolve) => this.waiting.push(resolve));

    try {
      return await forge();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.forging--;
    }
  }

  /** How many hosts have a forged certificate in the cache. */
  get cachedHostCount(): number {
    return this.contexts.size;
  }
}
