/**
 * Where a message comes from or goes to: a transport and an IP address and port. Kept as an
 * object everywhere in memory; the text form "udp:1.2.3.4:5060" ("tcp:::1:5060" for IPv6,
 * unbracketed: the port follows the last colon) is for persistence, logs and the HTTP API,
 * and is written and read only here.
 */
import { transportByName, type TransportName } from './names.js';
import type { LocalAddress } from './transport.js';

export interface Endpoint {
  transport: TransportName;
  address: string;
  port: number;
  /**
   * Set on the source of a message (and on what is derived from it: the reply target, a
   * binding's source): the listener it reached. What goes back leaves from that listener, so
   * a phone behind NAT hears us from the address its NAT opened to. Not part of the text
   * form nor of the identity.
   */
  local?: LocalAddress;
}

/** "udp:1.2.3.4:5060", "tcp:::1:5060". */
export function formatEndpoint(e: Endpoint): string {
  return `${e.transport}:${e.address}:${e.port}`;
}

/** Identity of an endpoint (a stream connection's remote end) as a map key: its text form. */
export const endpointKey: (e: Endpoint) => string = formatEndpoint;

/**
 * Reads formatEndpoint's text back; undefined when the transport is not one we speak, the
 * address is empty or the port is not a decimal 0..65535.
 */
export function parseEndpoint(s: string): Endpoint | undefined {
  const a = s.indexOf(':');
  const b = s.lastIndexOf(':');
  if (a <= 0 || b <= a + 1 || b === s.length - 1 || s.length - b > 6) return undefined;
  const kind = transportByName(s.slice(0, a));
  if (kind === undefined) return undefined;
  let port = 0;
  for (let i = b + 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
    port = port * 10 + (c - 48);
  }
  if (port > 65535) return undefined;
  return { transport: kind.name, address: s.slice(a + 1, b), port };
}
