/**
 * Requests without a body that the proxy makes itself: for a branch it already sent (RFC 3261
 * §9.1 CANCEL, §17.1.1.3 ACK for a non-2xx final response: the same Request-URI, From, Call-ID
 * and CSeq number as the request, the branch's Via), and in a dialog it tracks (the keepalive
 * OPTIONS, a BYE that ends the call) with the dialog's URIs, tags and route set.
 */
export interface RequestParts {
  method: string;
  uri: string;
  /** Our Via value (its branch id: the branch's for CANCEL/ACK, a fresh one otherwise). */
  via: string;
  from: string;
  /** The request's To (CANCEL), the response's To with its tag (ACK), the dialog's remote end. */
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

export function buildRequest(r: RequestParts): Buffer {
  let s = `${r.method} ${r.uri} SIP/2.0\r\nVia: ${r.via}\r\nMax-Forwards: 70\r\n`;
  s += `From: ${r.from}\r\nTo: ${r.to}\r\nCall-ID: ${r.callId}\r\nCSeq: ${r.cseq} ${r.method}\r\n`;
  s += r.routeLines;
  for (const line of r.extra) s += `${line}\r\n`;
  s += 'Content-Length: 0\r\n\r\n';
  return Buffer.from(s, r.ascii ? 'latin1' : 'utf8');
}
