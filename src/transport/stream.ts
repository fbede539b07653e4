/**
 * SIP over a byte stream (RFC 3261 §18.3), shared by TCP (tcp.ts) and TLS (tls.ts): listeners,
 * and connections kept by the remote endpoint's key so that a message to an endpoint reuses
 * the connection the peer opened (phones behind NAT can only be reached that way) or opens
 * one. Accepted and outgoing connections are framed and kept the same way (adopt). A
 * subclass only says how a server is made and how a connection is opened.
 */
import net from 'node:net';
import { isWildcard } from './addresses.js';
import { acceptedLocal, Connections, listenerGroups, listenOn, normalizeAddress } from './connections.js';
import { endpointKey, type Endpoint } from './endpoint.js';
import { StreamFramer } from './framer.js';
import type { TransportKind } from './names.js';
import { OPEN_GATE, type Listener, type LocalAddress, type Transport, type TransportContext } from './transport.js';

const MAX_TCP_CONNECTIONS = 10000;
/** A phone keeps its registration connection open; one silent for longer than this is gone. */
const TCP_IDLE_MS = 15 * 60 * 1000;
/** An outgoing connection that is not up by then is given up (its messages are lost). */
const TCP_CONNECT_MS = 10000;

interface Conn {
  sock: net.Socket;
  /** Our end of it, as Via and Record-Route name it. */
  local: LocalAddress;
}

/** What an outgoing connection needs: the peer, and our address to connect from (a wildcard listener's interface address). */
export interface ConnectTo {
  host: string;
  port: number;
  localAddress: string | undefined;
}

export abstract class StreamTransport implements Transport {
  readonly name: TransportKind['name'];
  readonly viaToken: string;
  readonly reliable = true;
  readonly locals: readonly LocalAddress[];
  protected servers: net.Server[] = [];
  private readonly conns: Connections<Conn>;

  constructor(
    kind: TransportKind,
    private readonly listeners: readonly Listener[],
    private readonly ctx: TransportContext,
  ) {
    this.name = kind.name;
    this.viaToken = kind.viaToken;
    this.locals = listeners.map((l) => l.local);
    this.conns = new Connections(listeners, ctx);
  }

  /**
   * A server handing each connection, once it can carry SIP (after the TLS handshake), to
   * onStream. The source gate is asked on the raw 'connection' event, before any handshake.
   */
  protected abstract createServer(onStream: (sock: net.Socket) => void): net.Server;
  /** Opens a connection; the socket emits readyEvent once it can carry SIP. */
  protected abstract connect(to: ConnectTo): net.Socket;
  /** 'connect' for TCP, 'secureConnect' for TLS. */
  protected abstract readonly readyEvent: string;

  async start(): Promise<void> {
    for (const group of listenerGroups(this.listeners)) await this.listen(group);
  }

  private listen(group: Listener[]): Promise<void> {
    const spec = group[0]!.spec;
    const wildcard = isWildcard(spec.host);
    const name = this.name;
    const server = this.createServer((sock) => {
      if (sock.destroyed) return;
      const local = wildcard ? acceptedLocal(name, group, normalizeAddress(sock.localAddress ?? '')) : group[0]!.local;
      const remote: Endpoint = { transport: name, address: normalizeAddress(sock.remoteAddress ?? ''), port: sock.remotePort ?? 0, local };
      this.adopt(sock, remote, local, false);
    });
    // Before a TLS handshake is paid for: a banned source costs an accept and a close.
    server.prependListener('connection', (sock: net.Socket) => {
      if (this.ctx.gate?.admitConnection(normalizeAddress(sock.remoteAddress ?? '')) === false) sock.destroy();
    });
    server.maxConnections = MAX_TCP_CONNECTIONS;
    server.on('error', (err) => this.ctx.log.warn({ err, listen: spec.url }, `${name} server error`));
    this.servers.push(server);
    return listenOn(server, group);
  }

  /**
   * Frame a connection's bytes into messages from remote and keep it, under remote's key, for
   * sending to remote. local: our end of it. outgoing: we opened it and it is not up yet.
   */
  private adopt(sock: net.Socket, remote: Endpoint, local: LocalAddress, outgoing: boolean): void {
    const conn: Conn = { sock, local };
    const closed = this.conns.add(remote, conn);
    sock.setNoDelay(true);
    // Until an outgoing connection is up, the shorter connect bound applies (send() lifts it).
    // (sock.connecting cannot tell: a TLS socket over a connecting TCP socket is not "connecting".)
    sock.setTimeout(outgoing ? TCP_CONNECT_MS : TCP_IDLE_MS, () => sock.destroy());
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
          this.ctx.log.warn({ remote: endpointKey(remote), reason: ev.reason }, `closing ${this.name} connection: bad framing`);
          sock.destroy();
          return;
        }
      }
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', closed);
  }

  localFor(dest: Endpoint): LocalAddress {
    return this.conns.localFor(dest);
  }

  send(dest: Endpoint, data: Buffer, onError?: () => void): void {
    const conn = this.conns.get(dest);
    let sock = conn?.sock;
    if (sock === undefined || sock.destroyed) {
      if (this.conns.size >= MAX_TCP_CONNECTIONS || !net.isIP(dest.address)) return onError?.();
      const from = this.conns.listenerFor(dest.address);
      // An interface address of a wildcard listener: connect from it, so that the peer sees
      // the address our Via names (the kernel's own choice could be another of ours).
      const localAddress = from.bind !== from.spec.host ? from.bind : undefined;
      const s = this.connect({ host: dest.address, port: dest.port, localAddress });
      s.once(this.readyEvent, () => s.setTimeout(TCP_IDLE_MS));
      if (onError !== undefined) s.once('error', () => onError());
      this.adopt(s, { transport: dest.transport, address: dest.address, port: dest.port, local: from.local }, from.local, true);
      sock = s;
    }
    sock.write(data);
  }

  async close(): Promise<void> {
    for (const c of this.conns.values()) c.sock.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.servers = [];
  }
}

