/**
 * Where a request goes: a registered contact at the address it registered from (NAT), any other
 * URI at its host and port with its transport parameter. Host names other than ours are not
 * resolved (no DNS in a PBX core).
 */
import net from 'node:net';
import type { LocationService } from '../registrar/location.js';
import type { Binding } from '../state/types.js';
import { getParam, parseUri } from '../sip/uri.js';
import type { Endpoint } from '../transport/transports.js';

/** Where each binding is reached, parsed once per binding rather than once per call. */
const bindingDest = new WeakMap<Binding, Endpoint>();

export function destOf(b: Binding): Endpoint | undefined {
  let dest = bindingDest.get(b);
  if (dest === undefined) {
    dest = parseSource(b.source);
    if (dest) bindingDest.set(b, dest);
  }
  return dest;
}

export function nextHop(uri: string, location: Pick<LocationService, 'byContactUri'>): Endpoint | undefined {
  const b = location.byContactUri(uri);
  if (b) return destOf(b);
  const u = parseUri(uri);
  if (!u || !net.isIP(u.host)) return undefined;
  const t = (getParam(u.params, 'transport') ?? 'udp').toLowerCase();
  return { transport: t === 'tcp' ? 'tcp' : 'udp', address: u.host, port: u.port || 5060 };
}

function parseSource(s: string): Endpoint | undefined {
  const a = s.indexOf(':');
  const b = s.lastIndexOf(':');
  if (a <= 0 || b <= a) return undefined;
  const t = s.slice(0, a);
  return { transport: t === 'tcp' ? 'tcp' : 'udp', address: s.slice(a + 1, b), port: Number(s.slice(b + 1)) };
}
