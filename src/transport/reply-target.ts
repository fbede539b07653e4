/**
 * Where a response goes (RFC 3261 §18.2.2, RFC 3581): pure functions of the top Via and the
 * endpoint the request came from.
 */
import type { Via } from '../sip/headers.js';
import type { Endpoint } from './endpoint.js';
import { TRANSPORTS, transportByViaToken } from './names.js';

/**
 * Where we answer a request that arrived from source with this top Via. Reliable transport:
 * back on the arriving connection (a phone behind NAT is reachable no other way). A Via that
 * names another transport than the one the request came over (a TCP Via in a UDP datagram):
 * the source itself, over the arriving transport, since its Via port belongs to a transport
 * it did not use (Kamailio answers so too; RFC 3261 §18.2.2 would follow the Via). Otherwise
 * RFC 3581: with rport, the source port; without, the Via port (5060 when absent); always at
 * the source address (received). Returns source itself when the port agrees; what it returns
 * keeps source.local, so the answer leaves from the listener the request reached.
 */
export function replyTarget(via: Via, source: Endpoint): Endpoint {
  const kind = TRANSPORTS[source.transport];
  if (kind.reliable || via.transport !== kind.viaToken) return source;
  const port = via.rport !== undefined ? source.port : via.port || 5060;
  return port === source.port ? source : { transport: source.transport, address: source.address, port, local: source.local };
}

/**
 * Where we relay a response upstream when no transaction holds the arriving connection (a
 * late 2xx): the next Via's received and rport when present, else its host and port (5060
 * when absent), on the transport its token names (UDP when we do not speak it).
 */
export function responseTarget(via: Via): Endpoint {
  const port = via.rport ? Number(via.rport) : via.port || 5060;
  return { transport: transportByViaToken(via.transport)?.name ?? 'udp', address: via.received ?? via.host, port };
}
