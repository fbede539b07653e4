/**
 * Where a response goes (RFC 3261 §18.2.2, RFC 3581): pure functions of the top Via and the
 * endpoint the request came from.
 */
import type { Via } from '../sip/headers.js';
import type { Endpoint } from './endpoint.js';
import { TRANSPORTS, transportByViaToken } from './names.js';

/**
 * Where we answer a request that arrived from source with this top Via. Reliable transport:
 * back on the arriving connection (a phone behind NAT is reachable no other way). Otherwise
 * RFC 3581: with rport, the source port; without, the Via port (5060 when absent); always at
 * the source address (received). Returns source itself when the port agrees.
 */
export function replyTarget(via: Via, source: Endpoint): Endpoint {
  if (TRANSPORTS[source.transport].reliable) return source;
  const port = via.rport !== undefined ? source.port : via.port || 5060;
  return port === source.port ? source : { transport: source.transport, address: source.address, port };
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
