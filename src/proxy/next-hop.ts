/**
 * Where a request goes: a registered contact where its binding says (its Contact, or the address
 * it registered from behind NAT: location/nat.ts), a contact another instance owns to that
 * instance (its path), any other URI at its host and port with its transport parameter. Host
 * names other than ours are not resolved (no DNS in a PBX core).
 */
import net from 'node:net';
import type { LocationService } from '../location/location.js';
import { getParam, hostPort, parseUri } from '../sip/uri.js';
import type { Endpoint } from '../transport/endpoint.js';
import { defaultPort, transportOfUriParam } from '../transport/names.js';

/**
 * A binding another instance owns resolves to its owner (path), never to its dest: dest is
 * the device's address or connection as the owner sees it, which only the owner can use (a
 * NAT pinhole opened towards it, its TCP/TLS/WS connection). A request sent to the owner must
 * also carry ownerRoute(path), or the owner refuses to relay it; callers that send to a
 * contact add it (in-dialog-route.ts, target-set.ts).
 */
export function nextHop(uri: string, location: Pick<LocationService, 'byContactUri'>): Endpoint | undefined {
  const b = location.byContactUri(uri);
  if (b) return b.path ?? b.dest;
  return uriHop(uri);
}

/** Where a request to a contact goes, and the Route it carries there (see ownerRoute). */
export interface Hop {
  dest: Endpoint;
  route: string | undefined;
}

/** nextHop for a Request-URI, with the Route a contact another instance owns needs. */
export function contactHop(uri: string, location: Pick<LocationService, 'byContactUri'>): Hop | undefined {
  const b = location.byContactUri(uri);
  if (b === undefined) {
    const dest = uriHop(uri);
    return dest && { dest, route: undefined };
  }
  return b.path === undefined ? { dest: b.dest, route: undefined } : { dest: b.path, route: ownerRoute(b.path) };
}

/** The URI's own host (an IP address), port and transport. */
function uriHop(uri: string): Endpoint | undefined {
  const u = parseUri(uri);
  if (!u || !net.isIP(u.host)) return undefined;
  const transport = transportOfUriParam(getParam(u.params, 'transport'), u.scheme === 'sips');
  return { transport, address: u.host, port: u.port || defaultPort(transport) };
}

/**
 * The Route line (with CRLF) that takes a request through the instance at path, which owns the
 * binding of its Request-URI and relays it to the device (as a Path entry would, RFC 3327).
 * Loose routing, so the Request-URI stays the contact.
 */
export function ownerRoute(path: Endpoint): string {
  return `Route: <sip:${hostPort(path.address, path.port)};transport=${path.transport};lr>\r\n`;
}
