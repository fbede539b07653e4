/**
 * Parsers for the header fields the route reads: name-addr (From, To, Contact, Route,
 * Record-Route), Via and CSeq. Each returns undefined on malformed input instead of throwing.
 */
import { isTokenCharCode } from './chars.js';
import { getParam } from './uri.js';
import { knownMethod } from './methods.js';
import type { SipMessage } from './message.js';

export interface NameAddr {
  display: string;
  /** The URI without angle brackets. */
  uri: string;
  /** Header parameters (";tag=..;expires=..") as received, "" when none. */
  params: string;
}

/** name-addr or addr-spec followed by header params (RFC 3261 §20.10, §20.20, §20.39). */
export function parseNameAddr(v: string): NameAddr | undefined {
  let i = 0;
  while (v.charCodeAt(i) === 32 || v.charCodeAt(i) === 9) i++;
  let display = '';
  if (v.charCodeAt(i) === 34 /* " */) {
    let j = i + 1;
    while (j < v.length && v.charCodeAt(j) !== 34) {
      if (v.charCodeAt(j) === 92) j++;
      j++;
    }
    if (j >= v.length) return undefined; // unterminated quoted display name
    display = v.slice(i + 1, j);
    i = j + 1;
  }
  const lt = v.indexOf('<', i);
  if (lt !== -1) {
    if (display === '') display = v.slice(i, lt).trim();
    const gt = v.indexOf('>', lt + 1);
    if (gt === -1) return undefined;
    const uri = v.slice(lt + 1, gt).trim();
    if (uri === '') return undefined;
    return { display, uri, params: v.slice(gt + 1).trim() };
  }
  if (display !== '') return undefined; // a quoted display name needs <uri>
  // addr-spec form: header params follow the first ';' (RFC 3261 §20.10: URI params are
  // only possible inside <>).
  const rest = v.slice(i).trim();
  const semi = rest.indexOf(';');
  const uri = semi === -1 ? rest : rest.slice(0, semi);
  if (uri === '' || uri.indexOf(':') === -1) return undefined;
  return { display: '', uri: uri.trim(), params: semi === -1 ? '' : rest.slice(semi) };
}

/** The tag parameter of a From/To value, "" when absent. */
export function tagOf(v: string | undefined): string {
  if (v === undefined) return '';
  const na = parseNameAddr(v);
  return (na && getParam(na.params, 'tag')) || '';
}

export interface Via {
  /** The via-parm as received, trimmed: "SIP/2.0/UDP host:port;params". */
  value: string;
  transport: string; // upper case: UDP, TCP...
  host: string; // lower case, IPv6 without brackets
  port: number; // 0 when absent
  params: string; // ";branch=..;rport" as received
  branch: string;
  /** "" when rport is a flag, undefined when absent. */
  rport: string | undefined;
  received: string | undefined;
  /**
   * Set by topVia: the first Via header line holds this value alone (no comma after it). Then
   * "does the message carry more than one Via" is a comparison of header names, without a
   * second scan of the line for a comma.
   */
  alone: boolean;
}

/**
 * One via-parm: "SIP/2.0/UDP host:port;params" (RFC 3261 §20.42).
 *
 * There is one Via parser, over bytes (viaAt): every message's top Via is read straight from
 * the message (topVia); charCodeAt on a substring checks the string's representation on
 * every read. A Via given as a string (another Via line, or one of a non-ASCII message) is copied into
 * bytes first; a character above U+00FF becomes 0xFF, which, like it, is neither a token
 * character nor a delimiter.
 */
export function parseVia(v: string): Via | undefined {
  const b = Buffer.allocUnsafe(v.length);
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    b[i] = c > 255 ? 255 : c;
  }
  return viaAt(b, v, 0, v.length);
}

/**
 * The top Via of a message, as parseVia(msg.firstValue('via')) gives it, read from the
 * message's bytes when it is ASCII: only the fields it keeps become strings (slices of the
 * header text at the same offsets), cheaper than charCodeAt over a string. A first value
 * whose end needs more than a search for the first comma (quotes, angle brackets, folded
 * lines, control characters: all rare in a Via) is left to firstValue, whose splitting rules
 * are the list syntax's (test/sip/parser.test.ts compares both ways over many Vias).
 */
export function topVia(msg: SipMessage): Via | undefined {
  const h = msg.field('via');
  if (h === undefined) return undefined;
  const text = msg.asciiText();
  const n = text === null ? -1 : msg.firstValueEnd(h);
  if (n !== -1) {
    const via = viaAt(msg.raw, text!, h.valueStart, n);
    if (via !== undefined) via.alone = n === h.valueEnd;
    return via;
  }
  const value = msg.firstValue('via');
  return value === undefined ? undefined : parseVia(value);
}

/**
 * The branch of a response's top Via, to match the response to its client transaction
 * (RFC 3261 §17.1.3); the same as topVia(msg)?.branch wherever topVia reads a Via. That Via is
 * ours, written by the proxy with ";branch=" in lower case and no LWS, so the branch is found
 * by searching the first value for ";branch=" instead of parsing the whole Via into an object
 * (responses are two thirds of what a forking proxy receives). A value with a comma, a quote or another parameter starting with
 * "b" before it, a non-ASCII message, or a branch not followed by ";", "," or LWS goes to
 * topVia. Where topVia finds no valid Via this may still return the branch: a response that
 * names one of our branches is ours to match whatever else its Via says.
 */
export function responseBranch(msg: SipMessage): string | undefined {
  const h = msg.field('via');
  if (h === undefined) return undefined;
  const text = msg.asciiText();
  if (text !== null) {
    const b = msg.raw;
    const at = text.indexOf(';branch=', h.valueStart);
    if (at !== -1 && at < h.valueEnd) {
      let i = h.valueStart;
      for (; i < at; i++) {
        const c = b[i]!;
        if (c === 44 || c === 34 || (c === 59 && (b[i + 1]! | 32) === 98)) break;
      }
      if (i === at) {
        const s = at + 8;
        let e = s;
        while (e < h.valueEnd && isTokenCharCode(b[e]!)) e++;
        const next = e === h.valueEnd ? 59 : b[e]!;
        if (e > s && (next === 59 || next === 44 || next === 32 || next === 9)) return text.slice(s, e);
      }
    }
  }
  return topVia(msg)?.branch;
}

/** The via-parm in b[start, end), LWS around it ignored; text holds the same characters at the same offsets. */
function viaAt(b: Uint8Array, text: string, start: number, end: number): Via | undefined {
  const first = skipLws(b, start, end);
  let n = end;
  while (n > first && (b[n - 1] === 32 || b[n - 1] === 9)) n--;
  let i = first;
  // sent-protocol = protocol-name SLASH protocol-version SLASH transport, LWS allowed around '/'
  let s = i;
  while (i < n && isTokenCharCode(b[i]!)) i++;
  // "SIP" in any case: for these three letters, c | 32 matches only the letter's two cases.
  if (i - s !== 3 || (b[s]! | 32) !== 115 || (b[s + 1]! | 32) !== 105 || (b[s + 2]! | 32) !== 112) return undefined;
  i = skipLws(b, i, n);
  if (i >= n || b[i] !== 47) return undefined;
  i = skipLws(b, i + 1, n);
  s = i;
  while (i < n && isTokenCharCode(b[i]!)) i++;
  if (i - s !== 3 || b[s] !== 50 || b[s + 1] !== 46 || b[s + 2] !== 48) return undefined;
  i = skipLws(b, i, n);
  if (i >= n || b[i] !== 47) return undefined;
  i = skipLws(b, i + 1, n);
  s = i;
  while (i < n && isTokenCharCode(b[i]!)) i++;
  if (i === s) return undefined;
  const transport = upperTransport(b, text, s, i);
  i = skipLws(b, i, n);
  let host: string;
  if (i < n && b[i] === 91) {
    let close = i + 1;
    while (close < n && b[close] !== 93) close++;
    if (close >= n) return undefined;
    host = text.slice(i + 1, close).toLowerCase();
    i = close + 1;
  } else {
    s = i;
    let upper = false;
    while (i < n) {
      const c = b[i]!;
      if (c === 58 || c === 59 || c === 32 || c === 9) break;
      if (c >= 65 && c <= 90) upper = true;
      i++;
    }
    if (i === s) return undefined;
    // Addresses are mostly IP literals: lower-case (a copy) only a name that needs it.
    host = upper ? text.slice(s, i).toLowerCase() : text.slice(s, i);
  }
  if (host === '') return undefined;
  i = skipLws(b, i, n);
  let port = 0;
  if (i < n && b[i] === 58) {
    i = skipLws(b, i + 1, n);
    s = i;
    while (i < n && i - s <= 5) {
      const c = b[i]!;
      if (c < 48 || c > 57) break;
      port = port * 10 + (c - 48);
      i++;
    }
    if (i === s || i - s > 5 || port > 65535) return undefined;
  }
  i = skipLws(b, i, n);
  const via: Via = {
    value: text.slice(first, n),
    transport,
    host,
    port,
    params: i === n ? '' : text.slice(i, n),
    branch: '',
    rport: undefined,
    received: undefined,
    alone: false,
  };
  return i === n || scanViaParams(b, text, i, n, via) ? via : undefined;
}

function skipLws(b: Uint8Array, i: number, n: number): number {
  while (i < n && (b[i] === 32 || b[i] === 9)) i++;
  return i;
}

/** The transport token upper-cased; the usual ones as shared constants, without a copy. */
function upperTransport(b: Uint8Array, text: string, s: number, e: number): string {
  if (e - s === 3) {
    const x = b[s]! | 32;
    const y = b[s + 1]! | 32;
    const z = b[s + 2]! | 32;
    // | 32 maps only 'U'/'u' to 117 etc. among token characters for these letters.
    if (x === 117 && y === 100 && z === 112) return 'UDP';
    if (x === 116 && y === 99 && z === 112) return 'TCP';
    if (x === 116 && y === 108 && z === 115) return 'TLS';
  }
  return text.slice(s, e).toUpperCase();
}

/**
 * ";name[=value]" repeated over b[i, n), each name a token: rejects ";;" (RFC 4475 badinv01).
 * In the same pass, the first branch, rport and received go into via (names
 * case-insensitive, values as getParam gives them), so a Via is read once, not once for
 * validation and once per parameter.
 */
function scanViaParams(b: Uint8Array, text: string, i: number, n: number, via: Via): boolean {
  let seen = 0; // 1 branch, 2 rport, 4 received: the first occurrence counts
  while (i < n) {
    if (b[i] !== 59) return false;
    i = skipLws(b, i + 1, n);
    const s = i;
    while (i < n && isTokenCharCode(b[i]!)) i++;
    if (i === s) return false;
    const which = viaParamBit(b, s, i);
    i = skipLws(b, i, n);
    let value = '';
    if (i < n && b[i] === 61) {
      i = skipLws(b, i + 1, n);
      if (i < n && b[i] === 34) {
        let close = i + 1;
        while (close < n && b[close] !== 34) close++;
        if (close >= n) return false;
        if (which !== 0) value = text.slice(i + 1, close);
        i = close + 1;
      } else {
        const s2 = i;
        // token, or an IPv6 reference for received=
        while (i < n && (isTokenCharCode(b[i]!) || b[i] === 58 || b[i] === 91 || b[i] === 93)) i++;
        if (i === s2) return false;
        if (which !== 0) value = text.slice(s2, i);
      }
      i = skipLws(b, i, n);
    }
    if (which !== 0 && (seen & which) === 0) {
      seen |= which;
      if (which === 1) via.branch = value;
      else if (which === 2) via.rport = value;
      else via.received = value;
    }
  }
  return true;
}

/** 1, 2 or 4 for branch, rport, received (ASCII case-insensitive), 0 for any other name. */
function viaParamBit(b: Uint8Array, s: number, e: number): number {
  const len = e - s;
  const name = len === 6 ? 'branch' : len === 5 ? 'rport' : len === 8 ? 'received' : '';
  if (name === '') return 0;
  for (let k = 0; k < len; k++) {
    let c = b[s + k]!;
    if (c >= 65 && c <= 90) c |= 32;
    if (c !== name.charCodeAt(k)) return 0;
  }
  return len === 6 ? 1 : len === 5 ? 2 : 4;
}

export interface CSeq {
  seq: number;
  method: string;
}

/** "1234 INVITE"; seq must fit 32 bits (RFC 3261 §8.1.1.5: less than 2**31). */
export function parseCSeq(v: string | undefined): CSeq | undefined {
  if (v === undefined) return undefined;
  let i = 0;
  let seq = 0;
  while (i < v.length && v.charCodeAt(i) >= 48 && v.charCodeAt(i) <= 57) {
    seq = seq * 10 + (v.charCodeAt(i) - 48);
    if (seq > 0x7fffffff) return undefined;
    i++;
  }
  if (i === 0) return undefined;
  if (v.charCodeAt(i) !== 32 && v.charCodeAt(i) !== 9) return undefined;
  let s = i;
  while (s < v.length && (v.charCodeAt(s) === 32 || v.charCodeAt(s) === 9)) s++;
  let e = v.length;
  while (e > s && (v.charCodeAt(e - 1) === 32 || v.charCodeAt(e - 1) === 9)) e--;
  if (s === e) return undefined;
  const known = knownMethod(v, s, e);
  if (known !== undefined) return { seq, method: known };
  for (let k = s; k < e; k++) if (!isTokenCharCode(v.charCodeAt(k))) return undefined;
  return { seq, method: v.slice(s, e) };
}

export { getParam };
