/**
 * SIP over TCP (RFC 3261 §18.3): listeners, and connections kept by the remote endpoint's
 * key so that a message to an endpoint reuses the connection the peer opened (phones behind
 * NAT can only be reached that way) or opens one. Accepted and outgoing connections are
 * framed and kept the same way (adopt).
 */
import net from 'node:net';
import { endpointKey, type Endpoint } from './endpoint.js';
import { StreamFramer } from './framer.js';
import { TRANSPORTS } from './names.js';
import { OPEN_GATE, type Listener, type LocalAddress, type Transport, type TransportContext } from './transport.js';

const KIND = TRANSPORTS.tcp;
const MAX_TCP_CONNECTIONS = 10000;
/** A phone keeps its registration connection open; one silent for longer than this is gone. */
const TCP_IDLE_MS = 15 * 60 * 1000;
/** An outgoing connection that is not up by then is given up (its messages are lost). */
const TCP_CONNECT_MS = 10000;

export class TcpTransport implements Transport {
  readonly name = KIND.name;
  readonly viaToken = KIND.viaToken;
  readonly reliable = KIND.reliable;
  readonly local: LocalAddress;
  private servers: net.Server[] = [];
  /** Open connections by endpointKey of the remote end. */
  private readonly conns = new Map<string, net.Socket>();

  constructor(
    private readonly listeners: readonly Listener[],
    private readonly ctx: TransportContext,
  ) {
    this.local = listeners[0]!.local;
  }

  async start(): Promise<void> {
    for (const l of this.listeners) await this.listen(l);
  }

  private listen({ spec, local }: Listener): Promise<void> {
    const server = net.createServer((sock) => {
      const remote: Endpoint = { transport: KIND.name, address: normalizeAddress(sock.remoteAddress ?? ''), port: sock.remotePort ?? 0 };
      if (this.ctx.gate?.admitConnection(remote.address) === false) return void sock.destroy();
      this.adopt(sock, remote, local);
    });
    server.maxConnections = MAX_TCP_CONNECTIONS;
    server.on('error', (err) => this.ctx.log.warn({ err, listen: spec.url }, 'tcp server error'));
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(spec.port, spec.host, () => {
        server.off('error', reject);
        if (spec.port === 0) local.port = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  /**
   * Frame a connection's bytes into messages from remote and keep it, under remote's key, for
   * sending to remote. local: the listener it reached (ours for outgoing ones).
   */
  private adopt(sock: net.Socket, remote: Endpoint, local: LocalAddress): void {
    const key = endpointKey(remote);
    this.conns.set(key, sock);
    sock.setNoDelay(true);
    // Until an outgoing connection is up, the shorter connect bound applies (send() lifts it).
    sock.setTimeout(sock.connecting ? TCP_CONNECT_MS : TCP_IDLE_MS, () => sock.destroy());
    const framer = new StreamFramer();
    const onMessage = this.ctx.onMessage;
    const gate = this.ctx.gate ?? OPEN_GATE;
    sock.on('data', (chunk: Buffer) => {
      for (const ev of framer.push(chunk)) {
        if (ev.kind === 'message') {
          // A source banned now has the rest of its connection refused with it.
          if (!gate.admit(remote.address, ev.data)) return void sock.destroy();
          onMessage(ev.data, remote, local);
        } else if (ev.kind === 'ping') sock.write('\r\n');
        else {
          this.ctx.log.warn({ remote: key, reason: ev.reason }, 'closing tcp connection: bad framing');
          sock.destroy();
          return;
        }
      }
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      if (this.conns.get(key) === sock) this.conns.delete(key);
    });
  }

  send(dest: Endpoint, data: Buffer, onError?: () => void): void {
    let sock = this.conns.get(endpointKey(dest));
    if (sock === undefined || sock.destroyed) {
      if (this.conns.size >= MAX_TCP_CONNECTIONS || !net.isIP(dest.address)) return onError?.();
      const s = net.connect({ host: dest.address, port: dest.port });
      s.once('connect', () => s.setTimeout(TCP_IDLE_MS));
      if (onError !== undefined) s.once('error', () => onError());
      this.adopt(s, dest, this.local);
      sock = s;
    }
    sock.write(data);
  }

  async close(): Promise<void> {
    for (const c of this.conns.values()) c.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.servers = [];
  }
}

/** "::ffff:127.0.0.1" from a dual-stack socket is the IPv4 peer 127.0.0.1. */
function normalizeAddress(a: string): string {
  return a.startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a;
}
