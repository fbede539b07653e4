/**
 * What the connection-oriented transports (TCP and TLS in stream.ts, WS and WSS in ws.ts)
 * share: their listeners grouped by configured spec, the open connections kept by the remote
 * endpoint's key (a phone behind NAT is reached only over the connection it opened), which of
 * our addresses a connection or a destination is named by, and the announcement of a closed
 * connection (whatever was bound to it is unreachable now).
 */
import net from 'node:net';
import { endpointKey, type Endpoint } from './endpoint.js';
import { LocalChoice } from './local-choice.js';
import type { TransportKind } from './names.js';
import type { Listener, ListenSpec, LocalAddress, TransportContext } from './transport.js';

/** An open connection: at least our end of it, as Via and Record-Route name it. */
export interface Connection {
  readonly local: LocalAddress;
}

export class Connections<C extends Connection> {
  private readonly byKey = new Map<string, C>();
  private readonly choice: LocalChoice<Listener>;

  constructor(
    private readonly listeners: readonly Listener[],
    private readonly ctx: TransportContext,
  ) {
    this.choice = new LocalChoice(listeners);
  }

  get size(): number {
    return this.byKey.size;
  }

  get(dest: Endpoint): C | undefined {
    return this.byKey.get(endpointKey(dest));
  }

  /**
   * Keeps conn as the connection to remote (a later one from the same endpoint replaces it).
   * Returns what the connection's close event must call: it forgets conn and announces remote,
   * unless another connection has taken its place meanwhile.
   */
  add(remote: Endpoint, conn: C): () => void {
    const key = endpointKey(remote);
    this.byKey.set(key, conn);
    return () => {
      if (this.byKey.get(key) !== conn) return;
      this.byKey.delete(key);
      this.ctx.onConnectionClosed?.(remote);
    };
  }

  /** Our address towards dest: its connection's end, else the listener chosen for its address. */
  localFor(dest: Endpoint): LocalAddress {
    const l = dest.local ?? this.byKey.get(endpointKey(dest))?.local;
    return l ?? this.listenerFor(dest.address).local;
  }

  /** The listener a new connection to address leaves from. */
  listenerFor(address: string): Listener {
    return this.choice.choose(address) ?? this.listeners[0]!;
  }

  values(): IterableIterator<C> {
    return this.byKey.values();
  }

  /** Forgets every connection without announcing it (their close events find nothing). */
  clear(): void {
    this.byKey.clear();
  }
}

/** The listeners by configured spec: a wildcard spec's interface addresses share one server. */
export function listenerGroups(listeners: readonly Listener[]): Listener[][] {
  const specs = new Map<ListenSpec, Listener[]>();
  for (const l of listeners) {
    const group = specs.get(l.spec);
    if (group) group.push(l);
    else specs.set(l.spec, [l]);
  }
  return [...specs.values()];
}

/** Listens on the group's spec; a spec with port 0 learns the bound port into its listeners. */
export function listenOn(server: net.Server, group: readonly Listener[]): Promise<void> {
  const spec = group[0]!.spec;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(spec.port, spec.host, () => {
      server.off('error', reject);
      if (spec.port === 0) for (const l of group) l.local.port = (server.address() as net.AddressInfo).port;
      resolve();
    });
  });
}

/**
 * Our end of a connection accepted on a wildcard listener: the interface address it reached
 * (its listener's local: advertise when set), or an address no interface lists (another
 * 127.x on Linux): named as is, or advertise.
 */
export function acceptedLocal(transport: TransportKind['name'], group: readonly Listener[], address: string): LocalAddress {
  for (const l of group) if (l.bind === address) return l.local;
  const first = group[0]!;
  if (first.advertised) return first.local;
  return { transport, host: address, port: first.local.port };
}

/** "::ffff:127.0.0.1" from a dual-stack socket is the IPv4 peer 127.0.0.1. */
export function normalizeAddress(a: string): string {
  return a.startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a;
}
