/**
 * The transports sipbob speaks, as one table: the name used in config, bindings and a URI's
 * transport= parameter, the token in Via's sent-protocol, and whether it is reliable. A new
 * transport (tls, ws, wss) is a row here, a class implementing Transport and a line in the
 * registry's factory (transports.ts).
 */

export type TransportName = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';

export interface TransportKind<N extends TransportName = TransportName> {
  readonly name: N;
  /** Via sent-protocol token (RFC 3261 §20.42), upper case as parseVia returns it. */
  readonly viaToken: string;
  /**
   * Reliable transports (RFC 3261 §18.2.2: TCP, TLS, SCTP, and WebSocket over them) carry
   * the response back on the connection the request arrived on, not to the Via address.
   */
  readonly reliable: boolean;
}

export const TRANSPORTS: { readonly [N in TransportName]: TransportKind<N> } = {
  udp: { name: 'udp', viaToken: 'UDP', reliable: false },
  tcp: { name: 'tcp', viaToken: 'TCP', reliable: true },
  tls: { name: 'tls', viaToken: 'TLS', reliable: true },
  ws: { name: 'ws', viaToken: 'WS', reliable: true },
  wss: { name: 'wss', viaToken: 'WSS', reliable: true },
};

const kinds: readonly TransportKind[] = Object.values(TRANSPORTS);
// Maps rather than the object above: an untrusted string such as "constructor" must not
// find an inherited property.
const byName = new Map<string, TransportKind>(kinds.map((k) => [k.name, k]));
const byViaToken = new Map<string, TransportKind>(kinds.map((k) => [k.viaToken, k]));

/** The transport named so (lower case, as in config and "udp:1.2.3.4:5060"), or undefined. */
export function transportByName(name: string): TransportKind | undefined {
  return byName.get(name);
}

/** The transport of a Via's sent-protocol token ("UDP", "TCP"), or undefined. */
export function transportByViaToken(token: string): TransportKind | undefined {
  return byViaToken.get(token);
}

/**
 * The transport a URI's transport= parameter asks for (any case); UDP when it is absent
 * (RFC 3263 §4.1 for a sip: URI with an IP address) or names a transport we do not speak.
 * A sips: URI (secure: true) goes over TLS whatever its parameter says (RFC 3261 §26.2.2:
 * transport=tcp in a sips: URI means TLS over TCP; RFC 5630 §3.1.3).
 */
export function transportOfUriParam(param: string | undefined, secure = false): TransportName {
  if (secure) return 'tls';
  return param === undefined ? 'udp' : (byName.get(param.toLowerCase())?.name ?? 'udp');
}

/** The port a URI without one means: 5061 over TLS (RFC 3261 §19.1.2), else 5060. */
export function defaultPort(transport: TransportName): number {
  return transport === 'tls' ? 5061 : 5060;
}

/** Our Via sent-protocol token for a transport. */
export function viaToken(name: TransportName): string {
  return TRANSPORTS[name].viaToken;
}
