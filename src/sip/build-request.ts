/**
 * Requests a proxy builds for a branch it already sent (RFC 3261 §9.1 CANCEL, §17.1.1.3 ACK for
 * a non-2xx final response): the same Request-URI, From, Call-ID and CSeq number as the
 * request, the branch's single Via, the route set, no body.
 */
export interface SiblingRequest {
  method: 'CANCEL' | 'ACK';
  uri: string;
  /** Our Via value for the branch (same branch id as the request). */
  via: string;
  from: string;
  /** The request's To (CANCEL) or the response's To with its tag (ACK). */
  to: string;
  callId: string;
  cseq: number;
  /** Route header lines of the request, each ending in CRLF (§9.1, §17.1.1.3). */
  routeLines: string;
  /** Extra header lines (e.g. a Reason), without CRLF. */
  extra: readonly string[];
  /** Every part is ASCII: written byte for byte instead of as UTF-8. */
  ascii: boolean;
}

export function buildSiblingRequest(r: SiblingRequest): Buffer {
  let s = `${r.method} ${r.uri} SIP/2.0\r\nVia: ${r.via}\r\nMax-Forwards: 70\r\n`;
  s += `From: ${r.from}\r\nTo: ${r.to}\r\nCall-ID: ${r.callId}\r\nCSeq: ${r.cseq} ${r.method}\r\n`;
  s += r.routeLines;
  for (const line of r.extra) s += `${line}\r\n`;
  s += 'Content-Length: 0\r\n\r\n';
  return Buffer.from(s, r.ascii ? 'latin1' : 'utf8');
}
