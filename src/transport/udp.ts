/** SIP over UDP (RFC 3261 §18): one socket per listener; a datagram is a message. */
import dgram from 'node:dgram';
import net from 'node:net';
import { RateLimitedLog } from '../log/rate-limited-log.js';
import type { Endpoint } from './endpoint.js';
import { TRANSPORTS } from './names.js';
import { OPEN_GATE, type Listener, type LocalAddress, type Transport, type TransportContext } from './transport.js';

const KIND = TRANSPORTS.udp;
/** Room for bursts (a registration storm, a fork's retransmissions) while the loop is busy. */
const SOCKET_BUFFER_BYTES = 4 << 20;

interface Socket {
  socket: dgram.Socket;
  family: 4 | 6;
}

export class UdpTransport implements Transport {
  readonly name = KIND.name;
  readonly viaToken = KIND.viaToken;
  readonly reliable = KIND.reliable;
  readonly local: LocalAddress;
  private sockets: Socket[] = [];
  /** Where a datagram to an IPv4 / IPv6 address leaves: the first socket of that family, else the first. */
  private v4: dgram.Socket | undefined;
  private v6: dgram.Socket | undefined;
  /** Send errors without a callback land on the socket: one per datagram at worst. */
  private readonly socketErrors: RateLimitedLog;

  constructor(
    private readonly listeners: readonly Listener[],
    private readonly ctx: TransportContext,
  ) {
    this.local = listeners[0]!.local;
    this.socketErrors = new RateLimitedLog(ctx.log, 10_000, 20);
  }

  async start(): Promise<void> {
    for (const l of this.listeners) await this.bind(l);
    const first = this.sockets[0]?.socket;
    this.v4 = this.sockets.find((s) => s.family === 4)?.socket ?? first;
    this.v6 = this.sockets.find((s) => s.family === 6)?.socket ?? first;
  }

  private bind({ spec, local }: Listener): Promise<void> {
    const family = net.isIPv6(spec.host) ? 6 : 4;
    const socket = dgram.createSocket({
      type: family === 6 ? 'udp6' : 'udp4',
      recvBufferSize: SOCKET_BUFFER_BYTES,
      sendBufferSize: SOCKET_BUFFER_BYTES,
      // Destinations are always IP literals (we never resolve names on the hot path); the
      // default dns.lookup would validate each one with a large regex and defer the send.
      lookup: literalLookup,
    });
    const onMessage = this.ctx.onMessage;
    const gate = this.ctx.gate ?? OPEN_GATE;
    socket.on('message', (data, rinfo) => {
      if (!gate.admit(rinfo.address, data)) return;
      onMessage(data, { transport: 'udp', address: rinfo.address, port: rinfo.port }, local);
    });
    // ICMP errors and the like surface here; they must not stop the process.
    socket.on('error', (err) => this.socketErrors.warn({ err, listen: spec.url }, 'udp socket error'));
    this.sockets.push({ socket, family });
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(spec.port, spec.host, () => {
        socket.off('error', reject);
        if (spec.port === 0) local.port = socket.address().port;
        resolve();
      });
    });
  }

  send(dest: Endpoint, data: Buffer, onError?: () => void): void {
    const socket = dest.address.indexOf(':') !== -1 ? this.v6 : this.v4;
    if (socket === undefined) return onError?.();
    if (onError === undefined) {
      // No callback: node then skips the completion callback (a nextTick and a closure per
      // datagram). Responses, ACKs and retransmissions have nobody to tell; a failure
      // surfaces as the socket's 'error' event, logged at a bounded rate.
      socket.send(data, dest.port, dest.address);
      return;
    }
    socket.send(data, dest.port, dest.address, (err) => {
      if (err) {
        this.ctx.log.debug({ err, dest }, 'udp send failed');
        onError();
      }
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.socket.close();
    this.sockets = [];
    this.v4 = this.v6 = undefined;
  }
}

/** dgram lookup for addresses that are already IP literals. */
function literalLookup(
  address: string,
  _opts: unknown,
  cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  cb(null, address, address.indexOf(':') !== -1 ? 6 : 4);
}
