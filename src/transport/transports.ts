/**
 * The transport registry: opens the configured listeners (one Transport per transport name,
 * holding all its listeners), sends each message on the transport its destination names, and
 * says which address is ours for a destination.
 *
 * A wildcard listener (0.0.0.0, ::) stands for every address of this host when the listeners
 * open (interfaces.ts): Via and Record-Route then name the address a message arrived on, or
 * the one it leaves from, never a guess (`advertise`, when set, is named instead). Addresses
 * added to the host later are not served until a restart.
 */
import dgram from 'node:dgram';
import os from 'node:os';
import type { Logger } from 'pino';
import { isWildcard } from './addresses.js';
import type { Endpoint } from './endpoint.js';
import { interfaceAddresses, wildcardAddresses, type InterfaceAddress } from './interfaces.js';
import type { TransportName } from './names.js';
import type { TlsMaterial } from '../lib/tls-files.js';
import { TcpTransport } from './tcp.js';
import { TlsTransport } from './tls.js';
import { OPEN_GATE, type ListenSpec, type Listener, type LocalAddress, type MessageHandler, type SourceGate, type Transport, type TransportContext } from './transport.js';
import { UdpTransport } from './udp.js';
import { WsTransport } from './ws.js';

/** One line per transport: a new transport is its class plus its line here. */
const FACTORY: { readonly [N in TransportName]: (listeners: readonly Listener[], ctx: TransportContext, options: TransportsOptions) => Transport } = {
  udp: (listeners, ctx) => new UdpTransport(listeners, ctx),
  tcp: (listeners, ctx) => new TcpTransport(listeners, ctx),
  tls: (listeners, ctx, options) => {
    // Config refuses a tls:// listener without a tls section; this is the registry's own guard.
    if (options.tls === undefined) throw new Error('a tls:// listener needs tls.cert and tls.key');
    return new TlsTransport(listeners, ctx, options.tls());
  },
  ws: (listeners, ctx) => new WsTransport('ws', listeners, ctx),
  wss: (listeners, ctx, options) => new WsTransport('wss', listeners, ctx, options.tls),
};

/** Off-link addresses (documentation ranges) whose route tells which of our addresses the default route uses. */
const ROUTE_PROBE: Readonly<Record<4 | 6, string>> = { 4: '198.51.100.1', 6: '2001:db8::1' };

export interface TransportsOptions {
  /** The host's interface addresses; default: os.networkInterfaces() at start. */
  interfaces?: () => InterfaceAddress[];
  /** The source address of the host's default route for a family; default: asks the kernel. */
  routeSource?: (family: 4 | 6) => Promise<string | undefined>;
  /** Asked before a datagram is parsed or a connection adopted (security/); default: everyone. */
  gate?: SourceGate;
  /**
   * The certificate of config `tls` (readTlsFiles) for tls:// and wss:// listeners, read when
   * they open so that a bad file fails start(); required when there is one.
   */
  tls?: () => TlsMaterial;
  /** A stream connection closed (see TransportContext.onConnectionClosed). */
  onConnectionClosed?: (remote: Endpoint) => void;
}

export class Transports {
  /** Every listener's address (wildcards expanded), in configuration order. */
  readonly locals: LocalAddress[] = [];
  private readonly byName = new Map<TransportName, Transport>();

  constructor(
    private readonly listen: readonly ListenSpec[],
    private readonly advertise: string | undefined,
    private readonly log: Logger,
    private readonly onMessage: MessageHandler,
    private readonly options: TransportsOptions = {},
  ) {}

  async start(): Promise<void> {
    const listeners = await this.listeners();
    const groups = new Map<TransportName, Listener[]>();
    for (const l of listeners) {
      const group = groups.get(l.spec.transport);
      if (group) group.push(l);
      else groups.set(l.spec.transport, [l]);
    }
    const ctx: TransportContext = { log: this.log, onMessage: this.onMessage, gate: this.options.gate ?? OPEN_GATE, onConnectionClosed: this.options.onConnectionClosed };
    for (const [name, group] of groups) {
      const t = FACTORY[name](group, ctx, this.options);
      this.byName.set(name, t);
      await t.start();
    }
    // After start: port 0 (tests) is the bound port by now; a UDP address that could not bind is gone.
    for (const t of this.byName.values()) this.locals.push(...t.locals);
    this.locals.sort((a, b) => order(listeners, a) - order(listeners, b));
  }

  /** The configured specs as listeners: a wildcard one per interface address. */
  private async listeners(): Promise<Listener[]> {
    const advertise = this.advertise || undefined;
    let all: InterfaceAddress[] | undefined;
    const interfaces = (): InterfaceAddress[] => (all ??= (this.options.interfaces ?? (() => interfaceAddresses(os.networkInterfaces())))());
    const out: Listener[] = [];
    for (const spec of this.listen) {
      const local = (host: string): LocalAddress => ({ transport: spec.transport, host: advertise ?? host, port: spec.port });
      if (!isWildcard(spec.host)) {
        const known = interfaces().find((a) => a.address === spec.host);
        out.push({ spec, bind: spec.host, local: local(spec.host), prefix: known?.prefix, advertised: advertise !== undefined });
        continue;
      }
      const addrs = wildcardAddresses(spec.host as '0.0.0.0' | '::', interfaces());
      if (addrs.length === 0) {
        // No interface address of the family: bind the wildcard itself and name loopback, as before.
        this.log.warn({ listen: spec.url }, 'no interface address found for a wildcard listener; binding the wildcard');
        out.push({ spec, bind: spec.host, local: local(spec.host === '::' ? '::1' : '127.0.0.1'), advertised: advertise !== undefined });
        continue;
      }
      for (const a of addrs) out.push({ spec, bind: a.address, local: local(a.address), prefix: a.prefix, advertised: advertise !== undefined });
      this.log.info({ listen: spec.url, addresses: addrs.map((a) => a.address), advertise }, 'wildcard listener: one address each');
    }
    await this.markPreferred(out);
    return out;
  }

  /** Marks, per transport and family, the listener the default route leaves from (when there is a choice). */
  private async markPreferred(listeners: Listener[]): Promise<void> {
    const probe = this.options.routeSource ?? routeSource;
    const sources = new Map<4 | 6, Promise<string | undefined>>();
    const groups = new Map<string, Listener[]>();
    for (const l of listeners) {
      const key = `${l.spec.transport}/${l.bind.indexOf(':') !== -1 ? 6 : 4}`;
      const g = groups.get(key);
      if (g) g.push(l);
      else groups.set(key, [l]);
    }
    for (const [key, g] of groups) {
      if (g.length < 2) continue;
      const family = key.endsWith('/6') ? 6 : 4;
      let p = sources.get(family);
      if (p === undefined) sources.set(family, (p = probe(family)));
      const src = await p;
      const hit = g.find((l) => l.bind === src);
      if (hit) hit.preferred = true;
    }
  }

  /** Our Via/Record-Route address for a message to dest (see Transport.localFor); the first listener's when dest's transport has none. */
  localFor(dest: Endpoint): LocalAddress {
    const t = this.byName.get(dest.transport);
    return t !== undefined ? t.localFor(dest) : this.locals[0]!;
  }

  /** Fire and forget (see Transport.send); a transport we do not listen on fails at once. */
  send(dest: Endpoint, data: Buffer, onError?: () => void): void {
    const t = this.byName.get(dest.transport);
    if (t === undefined) return onError?.();
    t.send(dest, data, onError);
  }

  /** A renewed certificate (SIGHUP) for the tls:// and wss:// listeners; open connections keep theirs. */
  setTlsCertificate(material: TlsMaterial): void {
    const tls = this.byName.get('tls');
    if (tls instanceof TlsTransport) tls.setCertificate(material);
    const wss = this.byName.get('wss');
    if (wss instanceof WsTransport) wss.setCertificate(material);
  }

  async close(): Promise<void> {
    const all = [...this.byName.values()];
    this.byName.clear();
    await Promise.all(all.map((t) => t.close()));
  }
}

function order(listeners: readonly Listener[], local: LocalAddress): number {
  return listeners.findIndex((l) => l.local === local);
}

/**
 * The address the kernel would send from to an off-link destination (the default route's
 * source): connecting a UDP socket only looks the route up, nothing is sent. Undefined
 * without a default route.
 */
async function routeSource(family: 4 | 6): Promise<string | undefined> {
  const s = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
  try {
    return await new Promise<string | undefined>((resolve) => {
      s.once('error', () => resolve(undefined));
      s.connect(9, ROUTE_PROBE[family], () => {
        try {
          resolve(s.address().address);
        } catch {
          resolve(undefined);
        }
      });
    });
  } finally {
    try {
      s.close();
    } catch {
      // never bound
    }
  }
}
