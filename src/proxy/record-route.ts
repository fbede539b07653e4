/** Our Record-Route entries (RFC 3261 §16.6 step 4). */
import { hostPort } from '../sip/uri.js';
import type { LocalAddress } from '../transport/transport.js';

/**
 * Record-Route lines (with CRLF). When the two legs use different listeners, two entries
 * (double record-routing, RFC 5658) so each side reaches us on its own transport.
 */
export function recordRoute(inbound: LocalAddress, outbound: LocalAddress): string {
  if (inbound.transport === outbound.transport && inbound.host === outbound.host && inbound.port === outbound.port) return rrLine(inbound);
  return rrLine(outbound) + rrLine(inbound);
}

function rrLine(l: LocalAddress): string {
  return `Record-Route: <sip:${hostPort(l.host, l.port)};transport=${l.transport};lr>\r\n`;
}
