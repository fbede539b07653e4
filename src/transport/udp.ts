/**
 * SIP over UDP (RFC 3261 §18): one socket per listener (a wildcard listener is one per
 * interface address, transports.ts); a datagram is a message. A datagram leaves from the
 * socket its destination's `local` names (a reply leaves from the socket its request reached),
 * else from the socket chosen for its address (local-choice.ts), so the source address the
 * peer sees is the one our Via names.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { RateLimitedLog } from '../log/rate-limited-log.js';
import type { Endpoint } from './endpoint.js';
import { LocalChoice } from './local-choice.js';
import { isStun, stunBindingResponse } from './stun.js';
import { TRANSPORTS } from './names.js';
import { OPEN_GATE, type Listener, type LocalAddress, type Transport, type TransportContext } from './transport.js';

const KIND = TRANSPORTS.udp;
/** Room for bursts (a registration storm, a fork's retransmissions) while the loop is busy. */
const SOCKET_BUFFER_BYTES = 4 << 20;

interface Bound extends Listener {
  socket: dgram.Socket;
}

export class UdpTransport implements Transport {
  readonly name = KIND.name;
  readonly viaToken = KIND.viaToken;
  readonly reliable = KIND.reliable;
  readonly locals: readonly LocalAddress[];
  private bound: Bound[] = [];
  /** The socket of each listener's local, for destinations that name the listener they came through. */
  private byLocal = new Map<LocalAddress, dgram.Socket>();
  private choice = new LocalChoice<Bound>([]);
  /** Send errors without a callback land on the socket: one per datagram at worst. */
  private readonly socketErrors: RateLimitedLog;

  constructor(
    private readonly listeners: readonly Listener[],
    private readonly ctx: TransportContext,
  ) {
    this.locals = listeners.map((l) => l.local);
    this.socketErrors = new RateLimitedLog(ctx.log, 10_000, 20);
  }

  async start(): Promise<void> {
    // Port 0 (tests): the addresses of one wildcard spec share the port the first one got.
    const ports = new Map<Listener['spec'], number>();
    for (const l of this.listeners) {
      const port = l.spec.port === 0 ? (ports.get(l.spec) ?? 0) : l.spec.port;
      const socket = await this.bind(l, port);
      if (socket === undefined) continue;
      if (l.spec.port === 0) {
        l.local.port = socket.address().port;
        ports.set(l.spec, l.local.port);
      }
      const b: Bound = { ...l, socket };
      this.bound.push(b);
      this.byLocal.set(l.local, socket);
    }
    if (this.bound.length === 0) throw new Error(`no UDP listener could bind (${this.listeners.map((l) => l.spec.url).join(', ')})`);
    this.choice = new LocalChoice(this.bound);
  }

  /** Binds one listener; undefined (and a warning) when an interface address is not available. */
  private bind(l: Listener, port: number): Promise<dgram.Socket | undefined> {
    const { spec, local } = l;
    const family = net.isIPv6(l.bind) ? 6 : 4;
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
      // RFC 5626 STUN keep-alive: answered here, never parsed as SIP.
      if (data[0]! < 2 && isStun(data)) {
        const res = stunBindingResponse(data, rinfo.address, rinfo.port);
        if (res !== undefined) socket.send(res, rinfo.port, rinfo.address);
        return;
      }
      onMessage(data, { transport: 'udp', address: rinfo.address, port: rinfo.port, local }, local);
    });
    // ICMP errors and the like surface here; they must not stop the process.
    socket.on('error', (err) => this.socketErrors.warn({ err, listen: spec.url, bind: l.bind }, 'udp socket error'));
    return new Promise((resolve, reject) => {
      const failed = (err: NodeJS.ErrnoException): void => {
        // An address of a wildcard listener that vanished or is not ready yet (IPv6 duplicate
        // address detection) is skipped; a configured address, or a port taken, fails the start.
        if (l.bind !== spec.host && err.code === 'EADDRNOTAVAIL') {
          this.ctx.log.warn({ listen: spec.url, bind: l.bind, err: err.message }, 'interface address skipped');
          socket.close();
          resolve(undefined);
        } else reject(err);
      };
      socket.once('error', failed);
      socket.bind(port, l.bind, () => {
        socket.off('error', failed);
        resolve(socket);
      });
    });
  }

  localFor(dest: Endpoint): LocalAddress {
    const l = dest.local;
    if (l !== undefined && this.byLocal.has(l)) return l;
    return (this.choice.choose(dest.address) ?? this.bound[0])?.local ?? this.locals[0]!;
  }

  send(dest: Endpoint, data: Buffer, onError?: () => void): void {
    const l = dest.local;
    const socket = (l !== undefined ? this.byLocal.get(l) : undefined) ?? this.choice.choose(dest.address)?.socket;
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
    for (const b of this.bound) b.socket.close();
    this.bound = [];
    this.byLocal.clear();
    this.choice = new LocalChoice<Bound>([]);
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
