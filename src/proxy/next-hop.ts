/**
 * Where a request goes: a registered contact where its binding says (its Contact, or the address
 * it registered from behind NAT: location/nat.ts), any other
 * URI at its host and port with its transport parameter. Host names other than ours are not
 * resolved (no DNS in a PBX core).
 */
import net from 'node:net';
import type { LocationService } from '../location/location.js';
import { getParam, parseUri } from '../sip/uri.js';
import type { Endpoint } from '../transport/endpoint.js';
import { defaultPort, transportOfUriParam } from '../transport/names.js';

export function nextHop(uri: string, location: Pick<LocationService, 'byContactUri'>): Endpoint | undefined {
  const b = location.byContactUri(uri);
  if (b) return b.dest;
  const u = parseUri(uri);
  if (!u || !net.isIP(u.host)) return undefined;
  const transport = transportOfUriParam(getParam(u.params, 'transport'), u.scheme === 'sips');
  return { transport, address: u.host, port: u.port || defaultPort(transport) };
}
