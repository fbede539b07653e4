/**
 * NAT keep-alives towards UDP phones that do not use outbound (Kamailio nathelper's natping):
 * a home router forgets a UDP mapping after some idle seconds, and the next INVITE to the
 * phone is then dropped at its NAT. A CRLFCRLF datagram every `registrar.natKeepalive` seconds
 * keeps the mapping open; phones ignore it (RFC 5626 §3.5.1 keep-alive bytes, RFC 3261 §7.5
 * padding). Stateless: no OPTIONS transactions for thousands of phones.
 */
import type { Binding } from '../location/binding.js';
import type { Endpoint } from '../transport/endpoint.js';

const PING = Buffer.from('\r\n\r\n');

export class NatKeepalive {
  private lastAt = 0;

  constructor(
    private readonly bindings: () => Iterable<Binding>,
    private readonly send: (dest: Endpoint, data: Buffer) => void,
    /** Seconds between rounds, read each time (SIGHUP applies); 0: off. */
    private readonly interval: () => number,
  ) {}

  /** Called often (every second); sends a round when one is due. Returns how many were sent. */
  maybeRun(now: number): number {
    const every = this.interval();
    if (every <= 0 || now - this.lastAt < every * 1000) return 0;
    this.lastAt = now;
    let n = 0;
    for (const b of this.bindings()) {
      // Outbound phones keep their flow alive themselves (STUN/CRLF); streams need no help;
      // another instance's device is kept alive by that instance, which holds its pinhole.
      if (b.dest.transport !== 'udp' || b.instance !== undefined || b.owner !== undefined || b.expiresAt <= now) continue;
      this.send(b.dest, PING);
      n++;
    }
    return n;
  }
}
