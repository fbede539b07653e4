import type { Via } from '../sip/headers.js';
import type { Endpoint } from './transports.js';

/** Where responses to a request go (§18.2.2, RFC 3581). */
export function replyTarget(via: Via, source: Endpoint): Endpoint {
  if (source.transport !== 'udp') return source;
  const port = via.rport !== undefined ? source.port : via.port || 5060;
  return port === source.port ? source : { transport: 'udp', address: source.address, port };
}

/** Where a response we relay goes: the next Via (§18.2.2 with received/rport). */
export function responseTarget(via: Via): Endpoint {
  const port = via.rport ? Number(via.rport) : via.port || 5060;
  return { transport: via.transport === 'TCP' ? 'tcp' : 'udp', address: via.received ?? via.host, port };
}
