/**
 * Stream framing for SIP over TCP (RFC 3261 §18.3): a message ends after its header block and
 * Content-Length bytes of body. Bytes arrive in arbitrary segments; several messages may share
 * one segment and one message may span several.
 */
import { MAX_MESSAGE_SIZE, parseDecimal } from '../sip/parser.js';

export type FrameEvent =
  | { kind: 'message'; data: Buffer }
  /** RFC 5626 §3.5.1 keep-alive: a double CRLF ping, answered with a single CRLF pong. */
  | { kind: 'ping' }
  | { kind: 'error'; reason: string };

export class StreamFramer {
  private buf: Buffer = Buffer.alloc(0);

  /** Feed bytes; returns the complete frames. After an 'error' the stream must be closed. */
  push(chunk: Buffer): FrameEvent[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: FrameEvent[] = [];
    for (;;) {
      const b = this.buf;
      let p = 0;
      while (p < b.length && (b[p] === 13 || b[p] === 10)) p++;
      if (p > 0) {
        if (p >= 4 && b[0] === 13 && b[1] === 10 && b[2] === 13 && b[3] === 10) out.push({ kind: 'ping' });
        this.buf = b.subarray(p);
        continue;
      }
      if (b.length === 0) return out;
      const headerEnd = findHeaderEnd(b);
      if (headerEnd === -1) {
        if (b.length > MAX_MESSAGE_SIZE) out.push({ kind: 'error', reason: 'header block too large' });
        return out;
      }
      const cl = contentLength(b, headerEnd);
      if (cl === -2) {
        out.push({ kind: 'error', reason: 'missing Content-Length on a stream' });
        return out;
      }
      if (cl < 0 || headerEnd + cl > MAX_MESSAGE_SIZE) {
        out.push({ kind: 'error', reason: 'bad Content-Length' });
        return out;
      }
      const total = headerEnd + cl;
      if (b.length < total) return out;
      // Copy so that a long-lived message does not pin the whole receive buffer.
      out.push({ kind: 'message', data: Buffer.from(b.subarray(0, total)) });
      this.buf = b.subarray(total);
    }
  }
}

/** Offset just past the empty line ending the headers, or -1. Accepts CRLF and bare LF. */
function findHeaderEnd(b: Buffer): number {
  let i = b.indexOf(10);
  while (i !== -1) {
    if (b[i + 1] === 10) return i + 2;
    if (b[i + 1] === 13 && b[i + 2] === 10) return i + 3;
    i = b.indexOf(10, i + 1);
  }
  return -1;
}

/** Content-Length value (long or compact "l" form) in the header block; -2 when absent, -1 when bad. */
function contentLength(b: Buffer, end: number): number {
  let p = b.indexOf(10) + 1;
  while (p > 0 && p < end) {
    const nl = b.indexOf(10, p);
    const eol = nl === -1 || nl > end ? end : nl;
    const colon = b.indexOf(58, p);
    if (colon !== -1 && colon < eol) {
      let ne = colon;
      while (ne > p && (b[ne - 1] === 32 || b[ne - 1] === 9)) ne--;
      const len = ne - p;
      if ((len === 1 && (b[p]! | 32) === 108) || (len === 14 && b.toString('latin1', p, ne).toLowerCase() === 'content-length')) {
        let vs = colon + 1;
        let ve = eol;
        while (vs < ve && (b[vs] === 32 || b[vs] === 9)) vs++;
        while (ve > vs && (b[ve - 1] === 32 || b[ve - 1] === 9 || b[ve - 1] === 13)) ve--;
        return parseDecimal(b, vs, ve, MAX_MESSAGE_SIZE);
      }
    }
    p = eol + 1;
  }
  return -2;
}
