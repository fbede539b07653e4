/**
 * Stream framing for SIP over TCP (RFC 3261 §18.3): a message ends after its header block and
 * Content-Length bytes of body. Bytes arrive in arbitrary segments; several messages may share
 * one segment and one message may span several.
 *
 * Cost is linear in the bytes received whatever the segmentation: the receive buffer grows by
 * doubling (no copy of everything held per segment) and the search for the end of the header
 * block resumes where the previous segment left it (a peer trickling one byte per segment
 * must not make each segment rescan the whole header block).
 */
import { MAX_MESSAGE_SIZE } from '../sip/parser.js';
import { parseDecimal } from '../sip/numbers.js';

export type FrameEvent =
  | { kind: 'message'; data: Buffer }
  /** RFC 5626 §3.5.1 keep-alive: a double CRLF ping, answered with a single CRLF pong. */
  | { kind: 'ping' }
  | { kind: 'error'; reason: string };

export class StreamFramer {
  /** Bytes received and not yet framed are store[start, end). */
  private store: Buffer = Buffer.alloc(0);
  private start = 0;
  private end = 0;
  /** Offset (from start) where the search for the header block's end resumes. */
  private scanned = 0;
  /** Line feeds of CRLF keep-alive bytes seen since the last message (may span segments). */
  private keepAliveLf = 0;
  private failed = false;
  /** False while store is a segment handed in by the caller (never written into). */
  private ownsStore = false;

  /** Feed bytes; returns the complete frames. After an 'error' the stream must be closed. */
  push(chunk: Buffer): FrameEvent[] {
    const out: FrameEvent[] = [];
    if (this.failed) return out;
    this.append(chunk);
    let pinged = false;
    for (;;) {
      // CRLFs between messages: keep-alives (RFC 5626 §4.4.1) or padding (RFC 3261 §7.5).
      // (A message in progress never starts with CR or LF, so this only runs between messages.)
      const s = this.store;
      while (this.start < this.end && (s[this.start] === 13 || s[this.start] === 10)) {
        if (s[this.start] === 10 && ++this.keepAliveLf === 2) {
          // One pong answers every ping of a segment: 64 KB of CRLFs must not cost 16,000 writes.
          if (!pinged) out.push({ kind: 'ping' });
          pinged = true;
          this.keepAliveLf = 0;
        }
        this.start++;
      }
      const len = this.end - this.start;
      if (len === 0) {
        this.start = this.end = 0;
        return out;
      }
      const b = this.store.subarray(this.start, this.end);
      const headerEnd = findHeaderEnd(b, this.scanned);
      if (headerEnd === -1) {
        // Resume three bytes back: the terminator may straddle two segments.
        this.scanned = Math.max(0, len - 3);
        if (len > MAX_MESSAGE_SIZE) return this.fail(out, 'header block too large');
        return out;
      }
      const cl = contentLength(b, headerEnd);
      if (cl === -2) return this.fail(out, 'missing Content-Length on a stream');
      if (cl < 0 || headerEnd + cl > MAX_MESSAGE_SIZE) return this.fail(out, 'bad Content-Length');
      const total = headerEnd + cl;
      // Header block complete: keep its end so the next segment does not search again.
      this.scanned = Math.max(0, headerEnd - 3);
      if (len < total) return out;
      // Copy so that a long-lived message does not pin the whole receive buffer.
      out.push({ kind: 'message', data: Buffer.from(b.subarray(0, total)) });
      this.start += total;
      this.scanned = 0;
      this.keepAliveLf = 0;
    }
  }

  private fail(out: FrameEvent[], reason: string): FrameEvent[] {
    out.push({ kind: 'error', reason });
    this.failed = true;
    this.store = Buffer.alloc(0);
    this.start = this.end = this.scanned = 0;
    return out;
  }

  private append(chunk: Buffer): void {
    if (this.start === this.end) {
      // Nothing pending (the common case): frame straight from the segment, no copy.
      this.store = chunk;
      this.ownsStore = false;
      this.start = 0;
      this.end = chunk.length;
      return;
    }
    const pending = this.end - this.start;
    const need = pending + chunk.length;
    if (this.store.length - this.end >= chunk.length && this.ownsStore) {
      chunk.copy(this.store, this.end);
      this.end += chunk.length;
      return;
    }
    // Grow by doubling, moving the pending bytes to the front.
    const next = Buffer.allocUnsafe(Math.max(need, Math.min(2 * need, MAX_MESSAGE_SIZE * 2), 4096));
    this.store.copy(next, 0, this.start, this.end);
    chunk.copy(next, pending);
    this.store = next;
    this.ownsStore = true;
    this.start = 0;
    this.end = need;
  }
}

/**
 * Offset just past the empty line ending the headers, or -1. Accepts CRLF and bare LF.
 * from: where a previous search stopped (terminators before it were ruled out).
 */
function findHeaderEnd(b: Buffer, from: number): number {
  let i = b.indexOf(10, from);
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
    let colon = p;
    while (colon < eol && b[colon] !== 58) colon++;
    if (colon < eol) {
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
