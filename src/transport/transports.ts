/**
 * SIP listeners (UDP and TCP) and the sending side: where a message goes is an Endpoint; a TCP
 * endpoint reuses the connection the peer opened (phones behind NAT can only be reached that
 * way) or opens one.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { Logger } from 'pino';
import { RateLimitedLog } from '../log/rate-limited-log.js';
import type { ListenConfig, TransportName } from '../config/types.js';
import { StreamFramer } from './framer.js';

export interface Endpoint {
  transport: TransportName;
  address: string;
  port: number;
}

/** Host and port this proxy puts in Via and Record-Route for one transport. */
export interface LocalAddress {
  transport: TransportName;
  host: string;
  port: number;
}

export type MessageHandler = (data: Buffer, source: Endpoint, local: LocalAddress) => void;

const MAX_TCP_CONNECTIONS = 10000;
/** A phone keeps its registration connection open; one silent for longer than this is gone. */
const TCP_IDLE_MS = 15 * 60 * 1000;

export function endpointKey(e: Endpoint): string {
  return `${e.transport}:${e.address}:${e.port}`;
}

export class Transports {
  private udp: { socket: dgram.Socket; local: LocalAddress; family: 4 | 6 }[] = [];
  private tcpServers: { server: net.Server; local: LocalAddress }[] = [];
  private conns = new Map<string, net.Socket>();
  readonly locals: LocalAddress[] = [];

  /** Send errors without a callback land on the socket: one per datagram at worst. */
  private readonly socketErrors: RateLimitedLog;

  constructor(
    private readonly listen: readonly ListenConfig[],
    private readonly advertise: string | undefined,
    private readonly log: Logger,
    private readonly onMessage: MessageHandler,
  ) {
    this.socketErrors = new RateLimitedLog(log, 10_000, 20);
  }

  async start(): Promise<void> {
    for (const l of this.listen) {
      const local: LocalAddress = { transport: l.transport, host: this.advertised(l.host), port: l.port };
      this.locals.push(local);
      if (l.transport === 'udp') await this.startUdp(l, local);
      else await this.startTcp(l, local);
    }
  }

  private advertised(bindHost: string): string {
    if (this.advertise) return this.advertise;
    if (bindHost === '0.0.0.0' || bindHost === '::') return bindHost === '::' ? '::1' : '127.0.0.1';
    return bindHost;
  }

  private startUdp(l: ListenConfig, local: LocalAddress): Promise<void> {
    const family = net.isIPv6(l.host) ? 6 : 4;
    const socket = dgram.createSocket({
      type: family === 6 ? 'udp6' : 'udp4',
      recvBufferSize: 4 << 20,
      sendBufferSize: 4 << 20,
      // Destinations are always IP literals (we never resolve names on the hot path); the
      // default dns.lookup would validate each one with a large regex and defer the send.
      lookup: literalLookup,
    });
    socket.on('message', (data, rinfo) => {
      this.onMessage(data, { transport: 'udp', address: rinfo.address, port: rinfo.port }, local);
    });
    // ICMP errors and the like surface here; they must not stop the process.
    socket.on('error', (err) => this.socketErrors.warn({ err, listen: l.url }, 'udp socket error'));
    this.udp.push({ socket, local, family });
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(l.port, l.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  }

  private startTcp(l: ListenConfig, local: LocalAddress): Promise<void> {
    const server = net.createServer((sock) => this.adopt(sock, local));
    server.maxConnections = MAX_TCP_CONNECTIONS;
    server.on('error', (err) => this.log.warn({ err, listen: l.url }, 'tcp server error'));
    this.tcpServers.push({ server, local });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(l.port, l.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  /** Frame a TCP connection's bytes into messages and remember it for sending back. */
  private adopt(sock: net.Socket, local: LocalAddress): void {
    const remote: Endpoint = { transport: 'tcp', address: normalizeAddress(sock.remoteAddress ?? ''), port: sock.remotePort ?? 0 };
    const key = endpointKey(remote);
    this.conns.set(key, sock);
    sock.setNoDelay(true);
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    const framer = new StreamFramer();
    sock.on('data', (chunk: Buffer) => {
      for (const ev of framer.push(chunk)) {
        if (ev.kind === 'message') this.onMessage(ev.data, remote, local);
        else if (ev.kind === 'ping') sock.write('\r\n');
        else {
          this.log.warn({ remote: key, reason: ev.reason }, 'closing tcp connection: bad framing');
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

  /** Our Via/Record-Route address for a transport (the first listener of that kind). */
  localFor(transport: TransportName): LocalAddress {
    return this.locals.find((l) => l.transport === transport) ?? this.locals[0]!;
  }

  hasTransport(transport: TransportName): boolean {
    return this.locals.some((l) => l.transport === transport);
  }

  /** Fire and forget: SIP recovers from loss by retransmission; errors are logged, never thrown. */
  send(dest: Endpoint, data: Buffer, onError?: () => void): void {
    if (dest.transport === 'udp') {
      const fam = dest.address.indexOf(':') !== -1 ? 6 : 4;
      const u = this.udp.find((x) => x.family === fam) ?? this.udp[0];
      if (!u) return onError?.();
      if (onError === undefined) {
        // No callback: node then skips the completion callback (a nextTick and a closure per
        // datagram). Responses, ACKs and retransmissions have nobody to tell; a failure
        // surfaces as the socket's 'error' event, logged at a bounded rate.
        u.socket.send(data, dest.port, dest.address);
        return;
      }
      u.socket.send(data, dest.port, dest.address, (err) => {
        if (err) {
          this.log.debug({ err, dest }, 'udp send failed');
          onError();
        }
      });
      return;
    }
    const key = endpointKey(dest);
    let sock = this.conns.get(key);
    if (sock === undefined || sock.destroyed) {
      if (this.conns.size >= MAX_TCP_CONNECTIONS || !net.isIP(dest.address)) return onError?.();
      const local = this.localFor('tcp');
      sock = net.connect({ host: dest.address, port: dest.port });
      sock.setTimeout(10000, () => sock?.destroy());
      sock.once('connect', () => sock?.setTimeout(TCP_IDLE_MS));
      sock.once('error', () => onError?.());
      this.adoptOutgoing(sock, dest, local);
    }
    sock.write(data);
  }

  private adoptOutgoing(sock: net.Socket, dest: Endpoint, local: LocalAddress): void {
    const key = endpointKey(dest);
    this.conns.set(key, sock);
    const framer = new StreamFramer();
    sock.on('data', (chunk: Buffer) => {
      for (const ev of framer.push(chunk)) {
        if (ev.kind === 'message') this.onMessage(ev.data, dest, local);
        else if (ev.kind === 'error') {
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

  async close(): Promise<void> {
    for (const u of this.udp) u.socket.close();
    for (const c of this.conns.values()) c.destroy();
    await Promise.all(this.tcpServers.map((s) => new Promise<void>((r) => s.server.close(() => r()))));
    this.udp = [];
    this.tcpServers = [];
  }
}

/** "::ffff:127.0.0.1" from a dual-stack socket is the IPv4 peer 127.0.0.1. */
function normalizeAddress(a: string): string {
  return a.startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a;
}

/** dgram lookup for addresses that are already IP literals. */
function literalLookup(
  address: string,
  _opts: unknown,
  cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  cb(null, address, address.indexOf(':') !== -1 ? 6 : 4);
}
