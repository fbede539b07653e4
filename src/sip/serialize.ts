/**
 * Building outgoing messages. Relayed messages keep every header line the proxy does not
 * change as the raw bytes received, copied in contiguous runs, as Kamailio's lumps do.
 */
import type { HeaderField, SipMessage } from './message.js';
import { isAsciiString, splitList, topLevelComma } from './message.js';
import { parseNameAddr } from './headers.js';
import { getParam } from './uri.js';

const CRLF = '\r\n';

/** Header edits applied while copying: null drops the line, a string replaces it. */
type Edit = string | null;

/**
 * Copy msg with a new start line, lines inserted first and per-header edits. Adds
 * Content-Length when missing (needed when a UDP request goes out
 * over TCP).
 *
 * ascii: the caller vouches that every text part is ASCII (all taken from an ASCII message,
 * our own host names and numbers, or checked with isAsciiString). The text is then written as
 * latin1: measured by its length and copied byte for byte, where UTF-8 would take a call into
 * C++ and a flattening copy per part.
 */
export function rewrite(
  msg: SipMessage,
  startLine: string,
  prepend: string,
  edits: ReadonlyMap<HeaderField, Edit> | undefined,
  ascii = false,
): Buffer {
  // Measured first, then written into one buffer: building it from parts (a Buffer per string
  // and per run, then concat) cost three allocations and a copy per part on every relayed
  // message.
  const head = startLine + CRLF + prepend;
  const tail = msg.field('content-length') === undefined ? `Content-Length: ${msg.bodyLength}${CRLF}${CRLF}` : CRLF;
  const enc = ascii ? 'latin1' : 'utf8';
  const size = textLength(head, ascii) + headerLines(msg, edits, undefined, 0, ascii) + textLength(tail, ascii) + msg.bodyLength;
  const out = Buffer.allocUnsafe(size);
  let off = out.write(head, 0, enc);
  off = headerLines(msg, edits, out, off, ascii);
  off += out.write(tail, off, enc);
  if (msg.bodyLength > 0) off += msg.raw.copy(out, off, msg.bodyStart, msg.bodyStart + msg.bodyLength);
  return off === size ? out : out.subarray(0, off);
}

function textLength(text: string, ascii: boolean): number {
  return ascii ? text.length : Buffer.byteLength(text, 'utf8');
}

/**
 * The header lines of msg with the edits applied: untouched lines as the bytes received, in
 * contiguous runs, an edit as its line, null as nothing. Written into out at off, or only
 * measured when out is undefined; returns the offset after them.
 */
function headerLines(
  msg: SipMessage,
  edits: ReadonlyMap<HeaderField, Edit> | undefined,
  out: Buffer | undefined,
  off: number,
  ascii: boolean,
): number {
  const raw = msg.raw;
  let runStart = -1;
  let runEnd = -1;
  for (const h of msg.headers) {
    const edit = edits === undefined ? undefined : edits.get(h);
    if (edit === undefined) {
      if (runStart === -1) runStart = h.start;
      runEnd = h.end;
      continue;
    }
    if (runStart !== -1) off = rawLines(raw, runStart, runEnd, out, off);
    runStart = -1;
    if (edit !== null) off = line(edit, out, off, ascii);
  }
  return runStart === -1 ? off : rawLines(raw, runStart, runEnd, out, off);
}

/** Raw header lines [s, e); a last line without terminator gets CRLF. */
function rawLines(raw: Buffer, s: number, e: number, out: Buffer | undefined, off: number): number {
  const crlf = raw[e - 1] !== 10;
  if (out !== undefined) {
    raw.copy(out, off, s, e);
    if (crlf) putCrlf(out, off + e - s);
  }
  return off + e - s + (crlf ? 2 : 0);
}

function line(text: string, out: Buffer | undefined, off: number, ascii: boolean): number {
  const n = out === undefined ? textLength(text, ascii) : out.write(text, off, ascii ? 'latin1' : 'utf8');
  if (out !== undefined) putCrlf(out, off + n);
  return off + n + 2;
}

/** Two byte stores: Buffer.write for "\r\n" is a call into C++. */
function putCrlf(out: Buffer, off: number): void {
  out[off] = 13;
  out[off + 1] = 10;
}

/** Header line of a list value v without its first `drop` values; null when none remain. */
export function withoutFirstValues(v: string, drop: number, displayName: string): Edit {
  // One value on the line, the usual case (a Via or Route of its own): no split.
  if (topLevelComma(v, 0) === -1) {
    const only = v.trim();
    return drop > 0 || only === '' ? null : `${displayName}: ${only}`;
  }
  const values = splitList(v);
  if (values.length <= drop) return null;
  return `${displayName}: ${values.slice(drop).join(', ')}`;
}

/** Header line of h with its first value replaced. */
export function withFirstValue(msg: SipMessage, h: HeaderField, first: string, displayName: string): string {
  // One value on the line, the usual case (every 100 Trying copies such a Via): no split, and
  // the old value is not even decoded.
  if (msg.firstValueEnd(h) === h.valueEnd) return `${displayName}: ${first}`;
  const v = msg.value(h);
  if (topLevelComma(v, 0) === -1) return `${displayName}: ${first}`;
  const values = splitList(v);
  values[0] = first;
  return `${displayName}: ${values.join(', ')}`;
}

export interface ResponseOptions {
  /** To-tag to add when the request's To has none. */
  toTag?: string;
  /** Replacement for the first Via value (with received/rport filled in). */
  topVia?: string;
  /** Extra header lines, each without CRLF. */
  headers?: readonly string[];
  body?: string;
  contentType?: string;
}

/** The single-valued headers a response copies from its request (RFC 3261 §8.2.6.2), as bits. */
const SINGLE_COPIED: Readonly<Record<string, number | undefined>> = Object.assign(Object.create(null) as Record<string, number>, {
  from: 1,
  to: 2,
  'call-id': 4,
  cseq: 8,
});

/**
 * A response generated here (RFC 3261 §8.2.6): Via, From, To, Call-ID and CSeq copied from the
 * request, To-tag added, Content-Length always set.
 */
export function buildResponse(req: SipMessage, status: number, reason: string, opts: ResponseOptions = {}): Buffer {
  let s = `SIP/2.0 ${status} ${reason}${CRLF}`;
  let firstVia = true;
  // From, To, Call-ID and CSeq are single-valued: a request that repeats them (RFC 4475
  // multi01) gets a 400 that copies the first only, so the 400 itself stays well-formed.
  let copied = 0; // bits of SINGLE_COPIED already copied
  for (const h of req.headers) {
    if (h.name !== 'via') {
      const bit = SINGLE_COPIED[h.name];
      if (bit === undefined || (copied & bit) !== 0) continue;
      copied |= bit;
    }
    switch (h.name) {
      case 'via':
        if (firstVia && opts.topVia !== undefined) s += withFirstValue(req, h, opts.topVia, 'Via') + CRLF;
        else s += `Via: ${req.value(h)}${CRLF}`;
        firstVia = false;
        break;
      case 'from':
        s += `From: ${req.value(h)}${CRLF}`;
        break;
      case 'to': {
        const v = req.value(h);
        s += opts.toTag !== undefined && !hasTag(v) ? `To: ${v};tag=${opts.toTag}${CRLF}` : `To: ${v}${CRLF}`;
        break;
      }
      case 'call-id':
        s += `Call-ID: ${req.value(h)}${CRLF}`;
        break;
      case 'cseq':
        s += `CSeq: ${req.value(h)}${CRLF}`;
        break;
      default:
        break;
    }
  }
  if (opts.headers) for (const line of opts.headers) s += line + CRLF;
  s += 'Server: sipbob' + CRLF;
  const body = opts.body ?? '';
  if (body !== '') s += `Content-Type: ${opts.contentType ?? 'text/plain'}${CRLF}`;
  s += `Content-Length: ${Buffer.byteLength(body)}${CRLF}${CRLF}${body}`;
  // See rewrite(): latin1 is a byte copy when everything is ASCII. Our own parts are (tags,
  // Server, Content-*); topVia is the request's Via with an IP address added.
  return Buffer.from(s, asciiResponse(req, reason, opts) ? 'latin1' : 'utf8');
}

function asciiResponse(req: SipMessage, reason: string, opts: ResponseOptions): boolean {
  if (!req.isAscii || !isAsciiString(reason)) return false;
  if (opts.body !== undefined && !isAsciiString(opts.body)) return false;
  if (opts.contentType !== undefined && !isAsciiString(opts.contentType)) return false;
  if (opts.headers) for (const h of opts.headers) if (!isAsciiString(h)) return false;
  return true;
}

/**
 * True when a From/To value carries a tag parameter (outside the URI's angle brackets), also
 * with LWS around '=' as RFC 3261 allows (RFC 4475 wsinv: ";   tag    = 1918181833n").
 */
export function hasTag(v: string): boolean {
  const na = parseNameAddr(v);
  if (na) return getParam(na.params, 'tag') !== undefined;
  const gt = v.lastIndexOf('>');
  return getParam(gt === -1 ? v : v.slice(gt + 1), 'tag') !== undefined;
}

/** Response with the top Via removed, for relaying upstream (RFC 3261 §16.7 step 9). */
export function stripTopVia(res: SipMessage): Buffer {
  const via = res.field('via');
  if (via === undefined) return res.raw;
  const raw = res.raw;
  // Nearly always the response is relayed as its bytes minus those of our Via: the whole line
  // when our Via has a line of its own, else our value with the comma and LWS after it
  // ("Via: ours, theirs" -> "Via: theirs": SIPp and some phones send the Vias on one line).
  // Only a line whose first value needs the list syntax (quotes, angle brackets, a folded line,
  // an empty element) or a message without Content-Length (it must get one) is rewritten.
  if (raw[via.end - 1] === 10 && res.field('content-length') !== undefined) {
    const e = via.valueEnd;
    const n = res.firstValueEnd(via);
    let cutStart = -1;
    let cutEnd = -1;
    if (n === e) {
      cutStart = via.start;
      cutEnd = via.end;
    } else if (n !== -1) {
      let j = n + 1; // past the comma and the LWS after it
      while (j < e && (raw[j] === 32 || raw[j] === 9)) j++;
      const next = raw[j]!;
      if (j < e && next !== 44 && next >= 32) {
        cutStart = via.valueStart;
        cutEnd = j;
      }
    }
    if (cutStart !== -1) {
      let s0 = 0; // CRLFs before the start line (RFC 3261 §7.5) are not relayed
      while (raw[s0] === 13 || raw[s0] === 10) s0++;
      const out = Buffer.allocUnsafe(raw.length - s0 - (cutEnd - cutStart));
      raw.copy(out, 0, s0, cutStart);
      raw.copy(out, cutStart - s0, cutEnd);
      return out;
    }
  }
  const edit = withoutFirstValues(res.value(via), 1, 'Via');
  return rewrite(res, `SIP/2.0 ${res.status} ${res.reason}`, '', new Map([[via, edit]]), res.isAscii);
}
