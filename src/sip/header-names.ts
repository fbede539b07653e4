/**
 * Header names without a string per header line (as Kamailio's parse_hname does with its
 * switch over the first bytes). Every header of every message used to cost a latin1 decode, a
 * toLowerCase copy and a hash of that fresh copy for each map lookup; known names now resolve,
 * straight from the bytes, to one shared constant string, so later lookups and comparisons
 * hit V8's fast path for identical strings. Unknown names fall back to decode + lower-case.
 */
import { isTokenCharCode } from './chars.js';

/** RFC 3261 §7.3.3 plus the compact forms in common use (RFC 3515, 3265, 4028...). */
const COMPACT: Readonly<Record<string, string>> = {
  i: 'call-id',
  m: 'contact',
  e: 'content-encoding',
  l: 'content-length',
  c: 'content-type',
  f: 'from',
  s: 'subject',
  k: 'supported',
  t: 'to',
  v: 'via',
  r: 'refer-to',
  o: 'event',
  u: 'allow-events',
  x: 'session-expires',
  b: 'referred-by',
  a: 'accept-contact',
  j: 'reject-contact',
  d: 'request-disposition',
  y: 'identity',
};

/** Names seen in ordinary traffic; the rest still work, through the slow path. */
const KNOWN = [
  'via', 'from', 'to', 'call-id', 'cseq', 'contact', 'max-forwards', 'content-length', 'content-type',
  'record-route', 'route', 'user-agent', 'server', 'allow', 'supported', 'require', 'proxy-require',
  'unsupported', 'expires', 'min-expires', 'authorization', 'proxy-authorization', 'www-authenticate',
  'proxy-authenticate', 'authentication-info', 'reason', 'date', 'accept', 'accept-encoding', 'accept-language',
  'content-disposition', 'content-encoding', 'content-language', 'mime-version', 'session-expires', 'min-se',
  'p-asserted-identity', 'p-preferred-identity', 'remote-party-id', 'privacy', 'subject', 'organization',
  'allow-events', 'event', 'subscription-state', 'refer-to', 'referred-by', 'replaces', 'diversion', 'history-info',
  'call-info', 'alert-info', 'warning', 'retry-after', 'timestamp', 'priority', 'in-reply-to', 'reply-to',
  'accept-contact', 'reject-contact', 'request-disposition', 'identity', 'rack', 'rseq', 'path', 'p-early-media',
  'x-serialnumber',
];

const SLOTS = 1024; // power of two, well above the number of names: few collisions
const table: (string[] | undefined)[] = new Array<string[] | undefined>(SLOTS).fill(undefined);

function lower(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

/**
 * Bucket of a name from its length and its first and last bytes, lower-cased: three reads
 * instead of a hash over every byte. The bytes are compared once, against the candidates.
 */
function slot(len: number, first: number, last: number): number {
  return (len * 67 + first * 31 + last) & (SLOTS - 1);
}

function add(bytes: string, name: string): void {
  const k = slot(bytes.length, bytes.charCodeAt(0), bytes.charCodeAt(bytes.length - 1));
  // Stored as [spelling, name, spelling, name...]: a compact form resolves to its long name.
  (table[k] ??= []).push(bytes, name);
}

for (const n of KNOWN) add(n, n);
for (const [letter, n] of Object.entries(COMPACT)) add(letter, n);

/**
 * The lower-case long name of the header whose name occupies buf[s, e), or undefined when it
 * is not a token (RFC 3261 §25.1). s < e.
 */
export function headerName(buf: Buffer, s: number, e: number): string | undefined {
  const len = e - s;
  const bucket = table[slot(len, lower(buf[s]!), lower(buf[e - 1]!))];
  if (bucket !== undefined) {
    for (let k = 0; k < bucket.length; k += 2) {
      const spelling = bucket[k]!;
      if (spelling.length !== len) continue;
      let i = 0;
      while (i < len && lower(buf[s + i]!) === spelling.charCodeAt(i)) i++;
      // Equal to a known name, so all token characters: no separate check needed.
      if (i === len) return bucket[k + 1]!;
    }
  }
  for (let i = s; i < e; i++) if (!isTokenCharCode(buf[i]!)) return undefined;
  const name = buf.toString('latin1', s, e).toLowerCase();
  return name.length === 1 ? (COMPACT[name] ?? name) : name;
}
