/**
 * The transport registry: opens the configured listeners (one Transport per transport name,
 * holding all its listeners), sends each message on the transport its destination names, and
 * says which address is ours on each transport.
 */
import type { Logger } from 'pino';
import type { Endpoint } from './endpoint.js';
import type { TransportName } from './names.js';
import { TcpTransport } from './tcp.js';
import { OPEN_GATE, type ListenSpec, type Listener, type LocalAddress, type MessageHandler, type SourceGate, type Transport, type TransportContext } from './transport.js';
import { UdpTransport } from './udp.js';


/** One line per transport: a new transport is its class plus its line here. */
const FACTORY: { readonly [N in TransportName]: (listeners: readonly Listener[], ctx: TransportContext) => Transport } = {
  udp: (listeners, ctx) => new UdpTransport(listeners, ctx),
  tcp: (listeners, ctx) => new TcpTransport(listeners, ctx),
};

export class Transports {
  /** Every listener's address, in configuration order. */
  readonly locals: LocalAddress[] = [];
  private readonly byName = new Map<TransportName, Transport>();

  constructor(
    private readonly listen: readonly ListenSpec[],
    private readonly advertise: string | undefined,
    private readonly log: Logger,
    private readonly onMessage: MessageHandler,
    private readonly gate: SourceGate = OPEN_GATE,
  ) {}

  async start(): Promise<void> {
    const groups = new Map<TransportName, Listener[]>();
    for (const spec of this.listen) {
      const local: LocalAddress = { transport: spec.transport, host: this.advertised(spec.host), port: spec.port };
      this.locals.push(local);
      const group = groups.get(spec.transport);
      if (group) group.push({ spec, local });
      else groups.set(spec.transport, [{ spec, local }]);
    }
    const ctx: TransportContext = { log: this.log, onMessage: this.onMessage, gate: this.gate };
    for (const [name, listeners] of groups) {
      const t = FACTORY[name](listeners, ctx);
      this.byName.set(name, t);
      await t.start();
    }
  }

  private advertised(bindHost: string): string {
    if (this.advertise) return this.advertise;
    if (bindHost === '0.0.0.0' || bindHost === '::') return bindHost === '::' ? '::1' : '127.0.0.1';
    return bindHost;
  }

  /** Our Via/Record-Route address for a transport (its first listener; the first listener of all when none). */
  localFor(transport: TransportName): LocalAddress {
    return this.byName.get(transport)?.local ?? this.locals[0]!;
  }

  /** Fire and forget (see Transport.send); a transport we do not listen on fails at once. */
  send(dest: Endpoint, data: Buffer, onError?: () => void): void {
    const t = this.byName.get(dest.transport);
    if (t === undefined) return onError?.();
    t.send(dest, data, onError);
  }

  async close(): Promise<void> {
    const all = [...this.byName.values()];
    this.byName.clear();
    await Promise.all(all.map((t) => t.close()));
  }
}
