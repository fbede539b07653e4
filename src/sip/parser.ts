/**
 * SIP message parser (RFC 3261 §7, §25) on Buffer. One linear pass with Buffer.indexOf for
 * line ends; no regular expressions, so hostile input costs time proportional to its length.
 */
import { SipMessage, type HeaderField } from './message.js';
import { isTokenCharCode } from './chars.js';
import { headerName } from './header-names.js';
import { knownMethod } from './methods.js';
import { parseDecimal } from './numbers.js';

/** Largest message accepted on any transport (a UDP datagram cannot be larger). */
export const MAX_MESSAGE_SIZE = 65535;
const MAX_HEADERS = 256;

/** Headers that RFC 3261 allows only once; a second copy makes the request malformed (RFC 4475 §3.3.8). */
const SINGLE: ReadonlyMap<string, number> = new Map([
  ['call-id', 1],
  ['cseq', 2],
  ['from', 4],
  ['to', 8],
  ['max-forwards', 16],
  ['content-length', 32],
]);

export type ParseResult =
  | { ok: true; msg: SipMessage }
  /**
   * msg is set when headers were indexed, so a 400 can still be formed; otherVersion when the
   * request line names a SIP version other than 2.0 (505 is then the answer, RFC 3261 §8.2.2).
   */
  | { ok: false; error: string; msg?: SipMessage; otherVersion?: boolean };

/**
 * Parse one message. For datagrams, bytes past Content-Length are ignored (RFC 3261 §18.3);
 * stream framing (framer.ts) hands over exactly one message.
 */
export function parseMessage(buf: Buffer): ParseResult {
  if (buf.length > MAX_MESSAGE_SIZE) return { ok: false, error: 'message too large' };
  let pos = 0;
  // RFC 3261 §7.5: implementations should ignore CRLFs before the start line.
  while (pos < buf.length && (buf[pos] === 13 || buf[pos] === 10)) pos++;
  const lineEnd = buf.indexOf(10, pos);
  if (lineEnd === -1) return { ok: false, error: 'no start line' };
  // UTF-8: a reason phrase (RFC 4475 unreason) must be relayed as the bytes received.
  const startLine = buf.toString('utf8', pos, trimCr(buf, pos, lineEnd));
  const sl = parseStartLine(startLine);
  if (typeof sl === 'string') return { ok: false, error: sl };
  // A request line that is malformed after its method still gets its headers indexed, so the
  // proxy can answer 400 (RFC 4475 lwsruri) instead of dropping it.
  let error: string | undefined = sl.error;
  const headers: HeaderField[] = [];
  let p = lineEnd + 1;
  let bodyStart = -1;
  let contentLength = -1;
  let seen = 0; // bit set over SINGLE: no allocation per message
  while (p < buf.length) {
    const nl = buf.indexOf(10, p);
    const eol = nl === -1 ? buf.length : nl;
    const textEnd = trimCr(buf, p, eol);
    if (textEnd === p) {
      // The empty line needs its LF: a datagram ending in "\r\n\r" is truncated.
      if (nl !== -1) bodyStart = nl + 1;
      break;
    }
    // Folded continuation lines (start with SP/HT) belong to this header (RFC 3261 §7.3.1).
    let end = nl === -1 ? buf.length : nl + 1;
    let valueEnd = textEnd;
    while (end < buf.length && (buf[end] === 32 || buf[end] === 9)) {
      const nl2 = buf.indexOf(10, end);
      const eol2 = nl2 === -1 ? buf.length : nl2;
      valueEnd = trimCr(buf, end, eol2);
      end = nl2 === -1 ? buf.length : nl2 + 1;
    }
    // Bounded to this line: searching the whole buffer for ':' would make a message of many
    // colon-less lines quadratic.
    let colon = p;
    while (colon < valueEnd && buf[colon] !== 58) colon++;
    if (colon >= valueEnd) {
      error ??= 'header line without colon';
      p = end;
      continue;
    }
    let nameEnd = colon;
    while (nameEnd > p && (buf[nameEnd - 1] === 32 || buf[nameEnd - 1] === 9)) nameEnd--;
    const name = nameEnd === p ? undefined : headerName(buf, p, nameEnd);
    if (name === undefined) {
      error ??= 'bad header name';
      p = end;
      continue;
    }
    let vs = colon + 1;
    while (vs < valueEnd && (buf[vs] === 32 || buf[vs] === 9)) vs++;
    let ve = valueEnd;
    while (ve > vs && (buf[ve - 1] === 32 || buf[ve - 1] === 9)) ve--;
    const bit = SINGLE.get(name);
    if (bit !== undefined) {
      if (seen & bit) error ??= `duplicate ${name} header`;
      seen |= bit;
    }
    if (name === 'content-length') {
      contentLength = parseDecimal(buf, vs, ve, MAX_MESSAGE_SIZE);
      if (contentLength < 0) error ??= 'bad Content-Length';
    }
    headers.push({ name, start: p, end, valueStart: vs, valueEnd: ve });
    if (headers.length > MAX_HEADERS) return { ok: false, error: 'too many headers' };
    p = end;
  }
  if (bodyStart === -1) {
    // RFC 3261 §7: the empty line must be present even without a body. Without it the
    // message is truncated; the headers are kept so that a 400 can still be formed.
    error ??= 'no empty line after the headers';
    bodyStart = buf.length;
  }
  // A raw NUL in the start line or a header is malformed; only a quoted-pair may carry one
  // (RFC 3261 §25.1, as in RFC 4475 intmeth's display name). memchr, so cheap when absent.
  if (error === undefined) {
    let z = buf.indexOf(0, pos);
    while (z !== -1 && z < bodyStart) {
      if (!isQuotedPair(buf, pos, z)) {
        error = 'NUL byte in the header';
        break;
      }
      z = buf.indexOf(0, z + 1);
    }
  }
  const available = buf.length - bodyStart;
  let bodyLength = available;
  if (contentLength >= 0) {
    if (contentLength > available) error ??= 'Content-Length larger than message';
    else bodyLength = contentLength;
  }
  const raw = bodyStart + bodyLength === buf.length ? buf : buf.subarray(0, bodyStart + bodyLength);
  const msg = new SipMessage(
    raw,
    sl.isRequest,
    sl.method,
    sl.uri,
    sl.status,
    sl.reason,
    headers,
    bodyStart,
    Math.min(bodyLength, available),
  );
  if (error !== undefined) return sl.badVersion ? { ok: false, error, msg, otherVersion: isOtherVersion(buf) } : { ok: false, error, msg };
  return { ok: true, msg };
}

interface StartLine {
  isRequest: boolean;
  method: string;
  uri: string;
  status: number;
  reason: string;
  /** Set when the request line is malformed after a valid method. */
  error?: string;
  /** The version token is not SIP/2.0. */
  badVersion?: boolean;
}

function parseStartLine(line: string): StartLine | string {
  if (line.length > 8192) return 'start line too long';
  if ((line.charCodeAt(0) | 32) === 115 && /* S or s */ startsWithVersion(line, 0)) {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
    if (line.charCodeAt(7) !== 32) return 'bad status line';
    let i = 8;
    let code = 0;
    const digitsStart = i;
    while (i < line.length && i - digitsStart < 4 && line.charCodeAt(i) >= 48 && line.charCodeAt(i) <= 57) {
      code = code * 10 + (line.charCodeAt(i) - 48);
      i++;
    }
    if (i - digitsStart !== 3 || code < 100 || code > 699) return 'bad status code';
    if (i < line.length && line.charCodeAt(i) !== 32) return 'bad status line';
    return { isRequest: false, method: '', uri: '', status: code, reason: line.slice(i + 1) };
  }
  // Request-Line = Method SP Request-URI SP SIP-Version. Trailing whitespace (RFC 4475 trws)
  // and extra spaces between the elements (lwsstart) are accepted liberally (RFC 4475 §3.1.2.9-10).
  let end = line.length;
  while (end > 0 && (line.charCodeAt(end - 1) === 32 || line.charCodeAt(end - 1) === 9)) end--;
  const sp1 = line.indexOf(' ');
  if (sp1 <= 0 || sp1 >= end) return 'bad request line';
  let method = knownMethod(line, 0, sp1);
  if (method === undefined) {
    for (let i = 0; i < sp1; i++) if (!isTokenCharCode(line.charCodeAt(i))) return 'bad method';
    method = line.slice(0, sp1);
  }
  const bad = (error: string): StartLine => ({ isRequest: true, method, uri: '', status: 0, reason: '', error });
  const sp2 = line.lastIndexOf(' ', end - 1);
  if (sp2 <= sp1) return bad('bad request line');
  let us = sp1 + 1;
  while (us < sp2 && line.charCodeAt(us) === 32) us++;
  let ue = sp2;
  while (ue > us && line.charCodeAt(ue - 1) === 32) ue--;
  if (ue === us) return bad('bad Request-URI');
  // No whitespace or control characters inside the Request-URI (RFC 4475 lwsruri).
  for (let i = us; i < ue; i++) {
    const c = line.charCodeAt(i);
    if (c <= 32 || c === 127) return bad('bad Request-URI');
  }
  if (!startsWithVersion(line, sp2 + 1) || end !== sp2 + 8) return { ...bad('unsupported SIP version'), badVersion: true };
  return { isRequest: true, method, uri: line.slice(us, ue), status: 0, reason: '' };
}

/** "SIP/2.0", case-insensitive per RFC 3261 §7.1. */
function startsWithVersion(s: string, i: number): boolean {
  return (
    (s.charCodeAt(i) | 32) === 115 &&
    (s.charCodeAt(i + 1) | 32) === 105 &&
    (s.charCodeAt(i + 2) | 32) === 112 &&
    s.charCodeAt(i + 3) === 47 &&
    s.charCodeAt(i + 4) === 50 &&
    s.charCodeAt(i + 5) === 46 &&
    s.charCodeAt(i + 6) === 48
  );
}

/** True when the line names a SIP version other than 2.0, so 505 is the right answer. */
export function isOtherVersion(buf: Buffer): boolean {
  const nl = buf.indexOf(10);
  const line = buf.toString('latin1', 0, nl === -1 ? Math.min(buf.length, 8192) : Math.min(nl, 8192)).trimEnd();
  const sp = line.lastIndexOf(' ');
  return sp > 0 && line.slice(sp + 1, sp + 5).toUpperCase() === 'SIP/' && !startsWithVersion(line, sp + 1);
}

function trimCr(buf: Buffer, start: number, eol: number): number {
  return eol > start && buf[eol - 1] === 13 ? eol - 1 : eol;
}

/** The byte at z follows an odd run of backslashes: a quoted-pair (RFC 3261 §25.1). */
function isQuotedPair(buf: Buffer, start: number, z: number): boolean {
  let n = 0;
  for (let i = z - 1; i >= start && buf[i] === 92; i--) n++;
  return (n & 1) === 1;
}
