/**
 * A parsed SIP message (RFC 3261 §7) over its raw bytes.
 *
 * Parsing is lazy in the Kamailio way: one linear pass finds the start line and the
 * boundaries of every header line; names are normalised (compact forms, case) but values are
 * decoded only when the route asks for them. Relaying copies untouched header lines byte for
 * byte (see serialize.ts).
 */
import { isAscii } from 'node:buffer';

export interface HeaderField {
  /** Lower-case long form: "v" becomes "via". */
  readonly name: string;
  /** Offset of the header line's first byte in raw. */
  readonly start: number;
  /** Offset just past the line's terminator (including folded continuation lines). */
  readonly end: number;
  readonly valueStart: number;
  readonly valueEnd: number;
}

export class SipMessage {
  /** Whole message as received (header part plus the body Content-Length allows). */
  readonly raw: Buffer;
  readonly isRequest: boolean;
  /** Request method, upper case as received (methods are case-sensitive, RFC 3261 §7.1). */
  readonly method: string;
  readonly uri: string;
  readonly status: number;
  readonly reason: string;
  readonly headers: readonly HeaderField[];
  /** Offset of the body in raw. */
  readonly bodyStart: number;
  readonly bodyLength: number;
  /**
   * Decoded header values by name, filled on first use: [name, value, name, value...]. The
   * route asks for four or five names per message; a Map per message cost more than scanning
   * a few constant-string names.
   */
  private cache: (string | undefined)[] | undefined;
  /**
   * The header section as one string when it is all ASCII (nearly always): values are then
   * slices of it, with no call into C++ per value. undefined: not decoded yet; null: not ASCII,
   * values are decoded one by one as UTF-8. Slices pin this string: anything kept for longer
   * than the message goes through ownString (lib/own.ts).
   */
  private text: string | null | undefined;

  constructor(
    raw: Buffer,
    isRequest: boolean,
    method: string,
    uri: string,
    status: number,
    reason: string,
    headers: HeaderField[],
    bodyStart: number,
    bodyLength: number,
  ) {
    this.raw = raw;
    this.isRequest = isRequest;
    this.method = method;
    this.uri = uri;
    this.status = status;
    this.reason = reason;
    this.headers = headers;
    this.bodyStart = bodyStart;
    this.bodyLength = bodyLength;
  }

  /**
   * The start line and every header are ASCII (nearly always). Text built from such a
   * message's pieces can then be written as latin1 (serialize.ts): a byte copy, measured by
   * its length.
   */
  get isAscii(): boolean {
    return this.asciiText() !== null;
  }

  /**
   * The header section as one string when it is ASCII (offsets into it are byte offsets into
   * raw), else null.
   */
  asciiText(): string | null {
    let t = this.text;
    if (t === undefined) {
      const head = this.raw.subarray(0, this.bodyStart);
      t = this.text = isAscii(head) ? head.toString('latin1') : null;
    }
    return t;
  }

  get body(): Buffer {
    return this.raw.subarray(this.bodyStart, this.bodyStart + this.bodyLength);
  }

  /** Value of a header field line, with folding (CRLF + WSP) collapsed to one space. */
  value(h: HeaderField): string {
    const t = this.asciiText();
    const s = t !== null ? t.slice(h.valueStart, h.valueEnd) : this.raw.toString('utf8', h.valueStart, h.valueEnd);
    return s.indexOf('\n') === -1 ? s : unfold(s);
  }

  /** First header of that name (lower-case long form), or undefined. */
  field(name: string): HeaderField | undefined {
    const hs = this.headers;
    for (let i = 0; i < hs.length; i++) if (hs[i]!.name === name) return hs[i];
    return undefined;
  }

  /** Value of the first header of that name. Cached: the route reads Call-ID, CSeq... often. */
  header(name: string): string | undefined {
    let c = this.cache;
    if (c === undefined) c = this.cache = [];
    else for (let i = 0; i < c.length; i += 2) if (c[i] === name) return c[i + 1];
    const h = this.field(name);
    const v = h === undefined ? undefined : this.value(h);
    c.push(name, v);
    return v;
  }

  /**
   * First value of a list header (the top Via): the first line, up to its first top-level
   * comma. The route needs the top Via of every message; splitting every Via value of it
   * would be wasted work.
   */
  firstValue(name: string): string | undefined {
    const h = this.field(name);
    if (h === undefined) return undefined;
    const v = this.value(h);
    const comma = topLevelComma(v, 0);
    const first = (comma === -1 ? v : v.slice(0, comma)).trim();
    // An empty first element ("Via: , x") is skipped as splitList does.
    return first !== '' ? first : this.values(name)[0];
  }

  /**
   * End of the first value of header line h, read from the bytes: the offset of its first
   * comma, or valueEnd. -1 when a plain search for that comma does not do (a quote, an angle
   * bracket, a control character other than HT, as in a folded line: the list syntax of
   * topLevelComma is needed) or when the first value is empty ("Via: , x"; valueStart is past
   * the leading LWS). The top Via of every message is read this way (topVia, stripTopVia).
   */
  firstValueEnd(h: HeaderField): number {
    const b = this.raw;
    const e = h.valueEnd;
    let n = h.valueStart;
    for (; n < e; n++) {
      const c = b[n]!;
      if (c === 44) break;
      if (c === 34 || c === 60 || c === 62 || (c < 32 && c !== 9)) return -1;
    }
    return n === h.valueStart ? -1 : n;
  }

  /**
   * More than one value of a list header (several lines, or a comma in the first).
   * firstAlone: the caller already knows the first line holds one value (Via.alone).
   */
  hasSeveral(name: string, firstAlone = false): boolean {
    let lines = 0;
    let first: HeaderField | undefined;
    for (const h of this.headers) {
      if (h.name !== name) continue;
      if (++lines > 1) return true;
      first = h;
    }
    return first !== undefined && !firstAlone && topLevelComma(this.value(first), 0) !== -1;
  }

  /** Every header line of that name, in order. */
  fields(name: string): HeaderField[] {
    const out: HeaderField[] = [];
    for (const h of this.headers) if (h.name === name) out.push(h);
    return out;
  }

  /** All values of a list header (Via, Route, Contact...): every line, split at top-level commas. */
  values(name: string): string[] {
    const out: string[] = [];
    for (const h of this.headers) if (h.name === name) splitList(this.value(h), out);
    return out;
  }
}

/**
 * No character above U+007F. For short strings the route did not concatenate (a URI, a reason
 * phrase): on a concatenated string charCodeAt would flatten it first.
 */
export function isAsciiString(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return false;
  return true;
}

function unfold(s: string): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c === 13 || c === 10) {
      // Skip the line break and the whitespace that starts the continuation line.
      while (i < s.length && isWsp(s.charCodeAt(i))) i++;
      out += ' ';
      continue;
    }
    out += s[i];
    i++;
  }
  return out;
}

function isWsp(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === 10;
}

/** Index of the first comma of v at or after start outside quotes and angle brackets, or -1. */
export function topLevelComma(v: string, start: number): number {
  let inQuote = false;
  let inAngle = false;
  for (let i = start; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (inQuote) {
      if (c === 92 /* \ */) i++;
      else if (c === 34) inQuote = false;
    } else if (c === 34) inQuote = true;
    else if (c === 60 /* < */) inAngle = true;
    else if (c === 62 /* > */) inAngle = false;
    else if (c === 44 /* , */ && !inAngle) return i;
  }
  return -1;
}

/** Number of values in a list header value, as splitList counts them. */
export function countValues(v: string): number {
  if (topLevelComma(v, 0) === -1) return v.trim() === '' ? 0 : 1;
  return splitList(v).length;
}

/**
 * Split a header value at commas that are outside quotes and angle brackets
 * (RFC 3261 §7.3.1), trimming each element. Appends to out.
 */
export function splitList(v: string, out: string[] = []): string[] {
  let start = 0;
  for (let comma = topLevelComma(v, 0); comma !== -1; comma = topLevelComma(v, start)) {
    const part = v.slice(start, comma).trim();
    if (part !== '') out.push(part);
    start = comma + 1;
  }
  const last = v.slice(start).trim();
  if (last !== '') out.push(last);
  return out;
}
