/** Our Via and Record-Route entries (RFC 3261 §16.6 steps 4 and 8). */
import { hostPort } from '../sip/uri.js';
import { viaToken } from '../transport/names.js';
import type { LocalAddress } from '../transport/transport.js';

/** Our Via value for a request we send from local with that branch id. */
export function branchVia(local: LocalAddress, branchId: string): string {
  return `SIP/2.0/${viaToken(local.transport)} ${hostPort(local.host, local.port)};branch=${branchId};rport`;
}

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
