/**
 * Server transactions (RFC 3261 §17.2, with RFC 6026's Accepted state for INVITE).
 * The transaction absorbs request retransmissions by re-sending its last response and, on
 * UDP, retransmits final INVITE responses until the ACK arrives.
 */
import type { SipMessage } from '../sip/message.js';
import type { Endpoint } from '../transport/endpoint.js';
import { TRANSPORTS } from '../transport/names.js';
import { ownBuffer } from '../lib/own.js';
import type { TxEnv } from './env.js';
import type { Timer } from './timer-queue.js';
import { T2, TIMER_G, TIMER_H, TIMER_I, TIMER_J, TIMER_L } from './timer-values.js';

type ServerState = 'trying' | 'proceeding' | 'completed' | 'confirmed' | 'accepted' | 'terminated';

/** What a CANCEL matching an INVITE server transaction stops (§9.2): the proxy's fork. */
export interface Cancellable {
  cancel(): void;
}

export class ServerTransaction {
  state: ServerState;
  /** Status of the last response sent, 0 before any. */
  lastStatus = 0;
  private lastResponse: Buffer | undefined;
  private timerRetransmit: Timer | undefined;
  private timerEnd: Timer | undefined;
  private interval = TIMER_G;
  /**
   * Set by the transaction user while a CANCEL still has something to stop; the transaction
   * only carries it (the TU clears it when done, and it goes when the transaction ends).
   */
  cancellable: Cancellable | undefined;

  private req: SipMessage | undefined;

  constructor(
    private readonly env: TxEnv,
    readonly key: string,
    request: SipMessage,
    /** Where responses go (RFC 3261 §18.2.2 with RFC 3581 rport), computed once. */
    readonly replyTo: Endpoint,
    readonly isInvite: boolean,
  ) {
    // An INVITE server transaction starts in Proceeding (§17.2.1), others in Trying (§17.2.2).
    this.state = isInvite ? 'proceeding' : 'trying';
    this.req = request;
  }

  /**
   * The request, until a final response was sent. After that the transaction only absorbs
   * retransmissions for 64*T1, and does not keep the request (and its datagram) alive for it.
   */
  get request(): SipMessage | undefined {
    return this.req;
  }

  get reliable(): boolean {
    return TRANSPORTS[this.replyTo.transport].reliable;
  }

  /** A retransmission of the request arrived (§17.2.1, §17.2.2): re-send the last response. */
  retransmission(): void {
    // RFC 6026 §8.7: in Accepted, INVITE retransmissions are absorbed without answer.
    if (this.state === 'accepted' || this.state === 'terminated') return;
    if (this.lastResponse !== undefined) this.env.send(this.replyTo, this.lastResponse);
  }

  /** Send a response built by the transaction user. */
  respond(status: number, data: Buffer): void {
    const s = this.state;
    if (s === 'terminated' || s === 'confirmed') return;
    if (s === 'completed') return; // a final response was already sent
    if (s === 'accepted') {
      // RFC 6026 §7.1: further 2xx responses from the TU are passed to the transport.
      if (status >= 200 && status < 300) this.env.send(this.replyTo, data);
      return;
    }
    this.lastStatus = status;
    this.lastResponse = data;
    this.env.send(this.replyTo, data);
    if (status < 200) {
      if (s === 'trying') this.state = 'proceeding';
      return;
    }
    this.req = undefined;
    if (this.isInvite && status < 300) {
      this.state = 'accepted';
      this.lastResponse = undefined; // Accepted absorbs retransmissions without answering them
      this.timerEnd = this.env.timers.schedule(TIMER_L, ServerTransaction.end, this);
      return;
    }
    this.state = 'completed';
    // Re-sent for 32 s (Timer H or J): in a buffer of its own, not a slice pinning a pool slab.
    if (!this.reliable) this.lastResponse = ownBuffer(data);
    if (this.isInvite) {
      if (!this.reliable) this.scheduleG();
      this.timerEnd = this.env.timers.schedule(TIMER_H, ServerTransaction.end, this);
    } else {
      // Timer J absorbs retransmissions on UDP; zero for reliable transports.
      if (this.reliable) this.terminate();
      else this.timerEnd = this.env.timers.schedule(TIMER_J, ServerTransaction.end, this);
    }
  }

  private scheduleG(): void {
    this.timerRetransmit = this.env.timers.schedule(this.interval, ServerTransaction.timerG, this);
  }

  // Timer callbacks take the transaction as their argument: no closure per timer (timers.ts).
  private static timerG(tx: ServerTransaction): void {
    if (tx.state !== 'completed' || tx.lastResponse === undefined) return;
    tx.env.send(tx.replyTo, tx.lastResponse);
    tx.interval = Math.min(tx.interval * 2, T2);
    tx.scheduleG();
  }

  private static end(tx: ServerTransaction): void {
    tx.terminate();
  }

  /** ACK for a non-2xx final response (§17.2.1): stop retransmitting, wait Timer I. */
  ack(): void {
    if (this.state !== 'completed') return;
    this.state = 'confirmed';
    this.timerRetransmit = this.env.timers.cancel(this.timerRetransmit);
    this.timerEnd = this.env.timers.cancel(this.timerEnd);
    if (this.reliable) this.terminate();
    else this.timerEnd = this.env.timers.schedule(TIMER_I, ServerTransaction.end, this);
  }

  terminate(): void {
    if (this.state === 'terminated') return;
    this.state = 'terminated';
    this.timerRetransmit = this.env.timers.cancel(this.timerRetransmit);
    this.timerEnd = this.env.timers.cancel(this.timerEnd);
    this.env.terminated(this.key, 'server');
    this.cancellable = undefined;
  }
}
