/**
 * Client transactions (RFC 3261 §17.1, with RFC 6026's Accepted state for INVITE).
 * Retransmits the request on UDP (Timers A/E), times out (Timers B/F), ACKs non-2xx final
 * responses itself (§17.1.1.3) and hands every response the user must see to onResponse.
 */
import type { SipMessage } from '../sip/message.js';
import { ownBuffer } from '../lib/own.js';
import type { Endpoint } from '../transport/endpoint.js';
import { TRANSPORTS } from '../transport/names.js';
import type { TxEnv } from './env.js';
import type { Timer } from './timer-queue.js';
import { T2, TIMER_A, TIMER_B, TIMER_D, TIMER_E, TIMER_F, TIMER_K, TIMER_M } from './timer-values.js';

export interface ClientUser {
  /** Provisional and final responses; 2xx retransmissions too (a proxy forwards every 2xx). */
  onResponse(res: SipMessage): void;
  /** Timer B/F fired or the transport failed: the user acts as if 408/503 arrived (§16.7, §8.1.3.1). */
  onFailure(status: 408 | 503): void;
}

type ClientState = 'calling' | 'trying' | 'proceeding' | 'completed' | 'accepted' | 'terminated';

/** A user that wants nothing back: a CANCEL's, or a transaction's once it let go of its own. */
export const NO_USER: ClientUser = { onResponse: () => {}, onFailure: () => {} };
const NO_BYTES = Buffer.alloc(0);

export class ClientTransaction {
  state: ClientState;
  private timerRetransmit: Timer | undefined;
  private timerTimeout: Timer | undefined;
  private timerEnd: Timer | undefined;
  private interval: number;
  private ackBuf: Buffer | undefined;

  constructor(
    private readonly env: TxEnv,
    readonly key: string,
    readonly isInvite: boolean,
    readonly dest: Endpoint,
    private request: Buffer,
    private user: ClientUser,
    /** Builds the ACK for a non-2xx final response (same branch, To of the response). */
    private makeAck: ((res: SipMessage) => Buffer) | undefined,
  ) {
    this.state = isInvite ? 'calling' : 'trying';
    this.interval = isInvite ? TIMER_A : TIMER_E;
  }

  get reliable(): boolean {
    return TRANSPORTS[this.dest.transport].reliable;
  }

  start(): void {
    // A send error is a 503 (§8.1.3.1) where the transport can report one: a TCP connection
    // that fails. A UDP datagram has no such answer (no ICMP on an unconnected socket), and
    // a completion callback per datagram costs; Timer B/F covers a peer that is gone.
    if (this.reliable) this.env.send(this.dest, this.request, () => this.fail(503));
    else {
      this.env.send(this.dest, this.request);
      this.scheduleRetransmit();
    }
    this.timerTimeout = this.env.timers.schedule(this.isInvite ? TIMER_B : TIMER_F, ClientTransaction.timeout, this);
  }

  private scheduleRetransmit(): void {
    this.timerRetransmit = this.env.timers.schedule(this.interval, ClientTransaction.retransmit, this);
  }

  // Timer callbacks take the transaction as their argument: no closure per timer (timers.ts).
  private static retransmit(tx: ClientTransaction): void {
    const s = tx.state;
    if (s !== 'calling' && s !== 'trying' && s !== 'proceeding') return;
    tx.env.send(tx.dest, tx.request);
    // Timer A doubles without cap; Timer E doubles up to T2 and stays at T2 in Proceeding.
    tx.interval = tx.isInvite ? tx.interval * 2 : s === 'proceeding' ? T2 : Math.min(tx.interval * 2, T2);
    tx.scheduleRetransmit();
  }

  private static timeout(tx: ClientTransaction): void {
    tx.fail(408);
  }

  private static end(tx: ClientTransaction): void {
    tx.terminate();
  }

  receive(res: SipMessage): void {
    const code = res.status;
    const s = this.state;
    if (s === 'terminated') return;
    if (code < 200) {
      if (s === 'completed' || s === 'accepted') return;
      if (this.isInvite) {
        // §17.1.1.2: a provisional response stops Timer A, and Timer B only runs in Calling
        // (a ringing branch is bounded by the proxy's Timer C and ring timeout instead).
        this.timerRetransmit = this.env.timers.cancel(this.timerRetransmit);
        this.timerTimeout = this.env.timers.cancel(this.timerTimeout);
      } else if (s === 'trying') {
        this.interval = T2;
      }
      this.state = 'proceeding';
      this.user.onResponse(res);
      return;
    }
    if (this.isInvite && code < 300) {
      if (s !== 'accepted') {
        this.stopRunning();
        this.state = 'accepted';
        this.request = NO_BYTES; // never sent again
        this.makeAck = undefined; // the ACK for a 2xx is the UAC's own (§13.2.2.4)
        this.timerEnd = this.env.timers.schedule(TIMER_M, ClientTransaction.end, this);
      }
      this.user.onResponse(res);
      return;
    }
    if (s === 'completed' || s === 'accepted') {
      // Retransmitted final response: re-send our ACK, do not bother the user (§17.1.1.2).
      if (this.ackBuf) this.env.send(this.dest, this.ackBuf);
      return;
    }
    this.stopRunning();
    this.state = 'completed';
    if (this.isInvite && this.makeAck) {
      // Kept for Timer D (32 s): in a buffer of its own, not a slice pinning a pool slab.
      this.ackBuf = ownBuffer(this.makeAck(res));
      this.env.send(this.dest, this.ackBuf);
    }
    const user = this.user;
    // Completed only absorbs retransmissions (Timer D: 32 s): let go of the request and the
    // user (a whole fork) now rather than keep them alive, and promoted, until it ends.
    this.release();
    user.onResponse(res);
    // Timer D (INVITE) or K (non-INVITE) on UDP; zero on reliable transports.
    if (this.reliable) this.terminate();
    else this.timerEnd = this.env.timers.schedule(this.isInvite ? TIMER_D : TIMER_K, ClientTransaction.end, this);
  }

  private stopRunning(): void {
    this.timerRetransmit = this.env.timers.cancel(this.timerRetransmit);
    this.timerTimeout = this.env.timers.cancel(this.timerTimeout);
  }

  private fail(status: 408 | 503): void {
    const s = this.state;
    if (s === 'completed' || s === 'accepted' || s === 'terminated') return;
    this.terminate();
    this.user.onFailure(status);
  }

  terminate(): void {
    if (this.state === 'terminated') return;
    this.state = 'terminated';
    this.stopRunning();
    this.timerEnd = this.env.timers.cancel(this.timerEnd);
    this.env.terminated(this.key, 'client');
  }

  /**
   * The transaction user passes the transaction on (the proxy's fork, once settled, leaves an
   * Accepted transaction to a relay of 2xx retransmissions).
   */
  handOver(user: ClientUser): void {
    if (this.state !== 'terminated') this.user = user;
  }

  private release(): void {
    this.request = NO_BYTES;
    this.user = NO_USER;
    this.makeAck = undefined;
  }
}
