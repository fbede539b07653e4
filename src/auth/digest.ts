/**
 * HTTP Digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760): MD5 and SHA-256,
 * qop=auth, plus the qop-less RFC 2069 form that some old phones still send.
 *
 * Pure: no I/O, no logging. The registrar/proxy owns the policy around it, in particular
 * which digest `uri` values it accepts. That is deliberately not checked here: SIPp sends
 * `uri="sip:<proxy ip>:<port>"` whatever the Request-URI says, so the registrar accepts a
 * uri naming the proxy or its domain, as Kamailio does.
 *
 * Order of checks the caller should use (so that unauthenticated garbage cannot burn the
 * nc counter of a nonce that a real phone is using):
 *   1. parseDigestCredentials → undefined: 400/401
 *   2. verifyResponse(creds, password, method) → false: 401/407 with a fresh challenge
 *   3. nonces.check(creds.nonce, creds.nc) → 'stale': re-challenge with stale=true (the
 *      password was right, RFC 7616 §3.3); 'invalid': re-challenge without stale
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';

export interface DigestCredentials {
  username: string;
  realm: string;
  nonce: string;
  uri: string;
  response: string;
  /** As sent; 'MD5' when the client omitted it (RFC 7616 §3.4: MD5 is the default). */
  algorithm: 'MD5' | 'SHA-256' | string;
  qop?: string;
  nc?: string;
  cnonce?: string;
  opaque?: string;
}

/** Far above any real header (a SHA-256 Authorization is ~400 bytes); bounds parse work. */
const MAX_HEADER_LENGTH = 4096;

// Character codes (a plain object, not a const enum, so any TS transpiler handles it).
const Ch = {
  Tab: 0x09,
  Lf: 0x0a,
  Cr: 0x0d,
  Space: 0x20,
  Quote: 0x22,
  Comma: 0x2c,
  Equals: 0x3d,
  Backslash: 0x5c,
  Del: 0x7f,
} as const;

/** RFC 3261 §25.1 token characters, as a lookup table so the scanner stays a plain loop. */
const TOKEN = new Uint8Array(128);
for (const c of "-.!%*_+`'~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TOKEN[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TOKEN[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TOKEN[c] = 1;

function isLws(c: number): boolean {
  // CR and LF count as LWS so a header that reaches us still folded (RFC 3261 §7.3.1)
  // parses too; the SIP parser normally unfolds before we see it.
  return c === Ch.Space || c === Ch.Tab || c === Ch.Cr || c === Ch.Lf;
}

function isToken(c: number): boolean {
  return c < 128 && TOKEN[c] === 1;
}

/**
 * Parses an Authorization / Proxy-Authorization value. Returns undefined on anything that is
 * not a well-formed Digest credential with username, realm, nonce, uri and response; never
 * throws. Linear in the input length: one pass, no regular expressions.
 */
export function parseDigestCredentials(value: string): DigestCredentials | undefined {
  if (typeof value !== 'string' || value.length > MAX_HEADER_LENGTH) return undefined;
  const n = value.length;
  let i = 0;
  while (i < n && isLws(value.charCodeAt(i))) i++;

  // Scheme: "Digest", case-insensitive (RFC 7235 §2.1), followed by at least one LWS.
  const schemeStart = i;
  while (i < n && isToken(value.charCodeAt(i))) i++;
  if (value.slice(schemeStart, i).toLowerCase() !== 'digest') return undefined;
  if (i >= n || !isLws(value.charCodeAt(i))) return undefined;

  const params = new Map<string, string>();
  while (i < n) {
    while (i < n && isLws(value.charCodeAt(i))) i++;
    if (i >= n) break;
    // Empty list elements ("a=1, , b=2") are allowed by the #rule (RFC 7230 §7).
    if (value.charCodeAt(i) === Ch.Comma) {
      i++;
      continue;
    }

    const nameStart = i;
    while (i < n && isToken(value.charCodeAt(i))) i++;
    if (i === nameStart) return undefined;
    const name = value.slice(nameStart, i).toLowerCase();

    while (i < n && isLws(value.charCodeAt(i))) i++;
    if (i >= n || value.charCodeAt(i) !== Ch.Equals) return undefined;
    i++;
    while (i < n && isLws(value.charCodeAt(i))) i++;
    if (i >= n) return undefined;

    let paramValue: string;
    if (value.charCodeAt(i) === Ch.Quote) {
      // quoted-string with quoted-pair (RFC 3261 §25.1). Collected in slices between escapes.
      i++;
      let out = '';
      let chunkStart = i;
      let closed = false;
      while (i < n) {
        const c = value.charCodeAt(i);
        if (c === Ch.Quote) {
          out += value.slice(chunkStart, i);
          i++;
          closed = true;
          break;
        }
        if (c === Ch.Backslash) {
          if (i + 1 >= n) return undefined;
          out += value.slice(chunkStart, i);
          i++; // the escaped character is taken literally
          chunkStart = i;
          i++;
          continue;
        }
        // Control characters have no business in a credential; refusing them keeps them
        // out of logs and of anything the registrar echoes.
        if ((c < Ch.Space && c !== Ch.Tab) || c === Ch.Del) return undefined;
        i++;
      }
      if (!closed) return undefined;
      paramValue = out;
    } else {
      // Unquoted value. Lenient on purpose: RFC 7616 wants tokens here (algorithm, qop, nc),
      // but some UAs send e.g. an unquoted base64 cnonce containing '/' or '='. Stop at the
      // delimiters; anything else up to them is the value.
      const valueStart = i;
      while (i < n) {
        const c = value.charCodeAt(i);
        if (c === Ch.Comma || isLws(c)) break;
        if (c === Ch.Quote || c < Ch.Space || c === Ch.Del) return undefined;
        i++;
      }
      if (i === valueStart) return undefined;
      paramValue = value.slice(valueStart, i);
    }

    // A repeated parameter is ambiguous (which one did the client hash?): refuse.
    if (params.has(name)) return undefined;
    params.set(name, paramValue);

    while (i < n && isLws(value.charCodeAt(i))) i++;
    if (i < n) {
      if (value.charCodeAt(i) !== Ch.Comma) return undefined;
      i++;
    }
  }

  const username = params.get('username');
  const realm = params.get('realm');
  const nonce = params.get('nonce');
  const uri = params.get('uri');
  const response = params.get('response');
  if (
    username === undefined ||
    realm === undefined ||
    nonce === undefined ||
    uri === undefined ||
    response === undefined
  ) {
    return undefined;
  }
  const creds: DigestCredentials = {
    username,
    realm,
    nonce,
    uri,
    response,
    algorithm: params.get('algorithm') ?? 'MD5',
  };
  const qop = params.get('qop');
  const nc = params.get('nc');
  const cnonce = params.get('cnonce');
  const opaque = params.get('opaque');
  if (qop !== undefined) creds.qop = qop;
  if (nc !== undefined) creds.nc = nc;
  if (cnonce !== undefined) creds.cnonce = cnonce;
  if (opaque !== undefined) creds.opaque = opaque;
  return creds;
}

/** node:crypto hash name for a digest algorithm; undefined for unsupported ones (incl. -sess). */
function hashName(algorithm: string): 'md5' | 'sha256' | undefined {
  const a = algorithm.toUpperCase();
  if (a === 'MD5') return 'md5';
  if (a === 'SHA-256') return 'sha256';
  // MD5-sess / SHA-256-sess need the cnonce of the first request kept per session; SIP
  // phones do not use them. SHA-512-256 (RFC 8760) is not offered, so not accepted either.
  return undefined;
}

/**
 * Checks the client's response against the password (RFC 7616 §3.4.1; RFC 2069 when there
 * is no qop). Says nothing about the nonce: see NonceManager.check and the order above.
 */
export function verifyResponse(creds: DigestCredentials, password: string, method: string): boolean {
  const alg = hashName(creds.algorithm);
  if (alg === undefined) return false;
  const h = (s: string): string => createHash(alg).update(s, 'utf8').digest('hex');

  const ha1 = h(`${creds.username}:${creds.realm}:${password}`);
  const ha2 = h(`${method}:${creds.uri}`);
  let expected: string;
  if (creds.qop === undefined) {
    expected = h(`${ha1}:${creds.nonce}:${ha2}`);
  } else if (creds.qop.toLowerCase() === 'auth') {
    // nc and cnonce are mandatory with qop (RFC 7616 §3.4); without them there is no
    // replay protection, so the credential is refused rather than guessed at.
    if (creds.nc === undefined || creds.cnonce === undefined) return false;
    expected = h(`${ha1}:${creds.nonce}:${creds.nc}:${creds.cnonce}:${creds.qop}:${ha2}`);
  } else {
    return false; // auth-int would need the body; we never offer it
  }

  // Hex is case-insensitive; lower-case the client's side so 'ABCD' matches.
  const got = Buffer.from(creds.response.toLowerCase(), 'utf8');
  const want = Buffer.from(expected, 'utf8');
  // The length of a hex digest is public (it follows from the algorithm), so checking it
  // first leaks nothing; timingSafeEqual requires equal lengths.
  return got.length === want.length && timingSafeEqual(got, want);
}

function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, '\\$&')}"`;
}

/**
 * The value of a WWW-Authenticate (401) or Proxy-Authenticate (407) header, e.g.
 * `Digest realm="pbx.example.test", nonce="…", algorithm=MD5, qop="auth"`.
 * Send one header per algorithm, most preferred first (RFC 8760 §2.4).
 */
export function challenge(
  realm: string,
  algorithm: string,
  nonce: string,
  opts?: { stale?: boolean; opaque?: string },
): string {
  // These come from config and from NonceManager, never from the network; a CR or LF here
  // would be a programming error that splits the header, so fail loudly.
  for (const s of [realm, algorithm, nonce, opts?.opaque ?? '']) {
    if (/[\r\n\0]/.test(s)) throw new TypeError('digest challenge parameter contains CR, LF or NUL');
  }
  let out = `Digest realm=${quote(realm)}, nonce=${quote(nonce)}`;
  if (opts?.opaque !== undefined) out += `, opaque=${quote(opts.opaque)}`;
  out += `, algorithm=${algorithm}, qop="auth"`;
  if (opts?.stale) out += ', stale=true';
  return out;
}

export type NonceCheck = 'ok' | 'stale' | 'invalid';

export interface NonceManagerOptions {
  /** HMAC key. Instances sharing it accept each other's nonces. Default: random per process. */
  secret?: Buffer;
  /** Seconds a nonce is accepted before 'stale'. Default 300. */
  lifetimeSec?: number;
  /** Clock in ms since epoch; injectable for tests. */
  now?: () => number;
  /** Most nonces whose nc is remembered at once (memory bound). Default 100,000. */
  maxTracked?: number;
}

const TS_BYTES = 6; // ms since epoch, 48 bits: good until the year 10889
const RANDOM_BYTES = 10;
// HMAC-SHA256 truncated to 128 bits (RFC 2104 §5 allows truncation to >= half the output):
// keeps the nonce at 43 characters, which matters in a 401 sent over UDP with two challenges.
const MAC_BYTES = 16;
const NONCE_BYTES = TS_BYTES + RANDOM_BYTES + MAC_BYTES; // 32 bytes
const NONCE_CHARS = Math.ceil((NONCE_BYTES * 4) / 3); // 43, base64url without padding

/**
 * Stateless nonces in the manner of Kamailio's auth module: the nonce carries its own
 * timestamp and an HMAC over it, so validity and age need no storage and any instance with the
 * same secret can verify. Only replay protection (nc per nonce) is kept, in a bounded LRU.
 *
 * nonce = base64url(timestamp(6) || random(10) || HMAC-SHA256(secret, timestamp||random)[0..16])
 */
export class NonceManager {
  readonly lifetimeSec: number;
  private secret: Buffer;
  private readonly now: () => number;
  /** Highest nc seen per nonce. Entries live no longer than the nonce does. */
  private readonly seenNc: LRUCache<string, number>;

  constructor(opts: NonceManagerOptions = {}) {
    this.secret = opts.secret ?? randomBytes(32);
    this.lifetimeSec = opts.lifetimeSec ?? 300;
    this.now = opts.now ?? (() => Date.now());
    const now = this.now;
    this.seenNc = new LRUCache<string, number>({
      max: opts.maxTracked ?? 100_000,
      // Same clock as the nonce timestamps, so an entry expires with its nonce (and tests
      // with a fake clock behave).
      perf: { now },
    });
  }

  /**
   * The key shared by several instances, known only once shared state is read at start (before
   * the first request). Nonces issued under the old key stop being accepted.
   */
  setSecret(secret: Buffer): void {
    this.secret = secret;
  }

  issue(): string {
    const buf = Buffer.allocUnsafe(NONCE_BYTES);
    buf.writeUIntBE(this.now(), 0, TS_BYTES);
    randomBytes(RANDOM_BYTES).copy(buf, TS_BYTES);
    this.mac(buf.subarray(0, TS_BYTES + RANDOM_BYTES)).copy(buf, TS_BYTES + RANDOM_BYTES, 0, MAC_BYTES);
    return buf.toString('base64url');
  }

  /**
   * 'invalid': not one of ours (bad length/encoding/HMAC), or nc malformed or not above the
   * highest nc already seen with this nonce (replay). 'stale': ours but older than the
   * lifetime, so the client should retry with a new nonce (stale=true). 'ok': accepted, and
   * the nc is recorded. Without nc (RFC 2069 clients) only validity and age are checked.
   */
  check(nonce: string, nc?: string): NonceCheck {
    if (typeof nonce !== 'string' || nonce.length !== NONCE_CHARS) return 'invalid';
    const buf = Buffer.from(nonce, 'base64url');
    // Buffer.from skips invalid characters and ignores stray trailing bits, so several strings
    // can decode to the same bytes; insist on the canonical encoding so one issued nonce has
    // exactly one spelling (and one nc record).
    // The re-encoding is also the key stored below: a fresh string, where `nonce` is a slice
    // that would keep the whole Authorization header alive in the LRU.
    const canonical = buf.toString('base64url');
    if (buf.length !== NONCE_BYTES || canonical !== nonce) return 'invalid';
    const mac = this.mac(buf.subarray(0, TS_BYTES + RANDOM_BYTES)).subarray(0, MAC_BYTES);
    if (!timingSafeEqual(mac, buf.subarray(TS_BYTES + RANDOM_BYTES))) return 'invalid';

    const issuedAt = buf.readUIntBE(0, TS_BYTES);
    const expiresAt = issuedAt + this.lifetimeSec * 1000;
    const now = this.now();
    if (now >= expiresAt) return 'stale';
    if (nc === undefined) return 'ok';

    // nc is exactly 8 hex digits (RFC 7616 §3.4).
    if (nc.length !== 8 || !/^[0-9a-fA-F]{8}$/.test(nc)) return 'invalid';
    const count = parseInt(nc, 16);
    const last = this.seenNc.get(canonical);
    if (last !== undefined && count <= last) return 'invalid';
    // A lost entry (evicted under pressure) means a replay within the lifetime is not
    // detected; the bound is the price of keeping memory finite, as in Kamailio's nc array.
    this.seenNc.set(canonical, count, { ttl: expiresAt - now });
    return 'ok';
  }

  private mac(data: Buffer): Buffer {
    return createHmac('sha256', this.secret).update(data).digest();
  }
}
