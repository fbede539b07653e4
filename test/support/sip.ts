/**
 * Shared by the unit tests (not a test file itself): parsing literal SIP text, reading an
 * IncomingRequest the way the dispatcher does, and a timer queue on a hand-advanced clock.
 */
import { parseCSeq, tagOf, topVia } from '../../src/sip/headers.js';
import type { SipMessage } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import { stampVia } from '../../src/sip/stamp-via.js';
import type { IncomingRequest } from '../../src/transaction/request.js';
import type { Timer, TimerQueue } from '../../src/transaction/timer-queue.js';
import { replyTarget } from '../../src/transport/reply-target.js';
import type { Endpoint } from '../../src/transport/endpoint.js';
import type { LocalAddress } from '../../src/transport/transport.js';

/** Literal SIP text with "\n" line ends (written as CRLF), parsed; throws when it does not parse. */
export function sip(text: string): SipMessage {
  const r = parseMessage(Buffer.from(text.replace(/\r?\n/g, '\r\n')));
  if (!r.ok) throw new Error(`test message does not parse: ${r.error}`);
  return r.msg;
}

export const CALLER: Endpoint = { transport: 'udp', address: '192.0.2.10', port: 5060 };
export const LOCAL_UDP: LocalAddress = { transport: 'udp', host: '10.0.0.1', port: 5060 };
export const LOCAL_TCP: LocalAddress = { transport: 'tcp', host: '10.0.0.1', port: 5060 };

/** The IncomingRequest the dispatcher would build (no checks: the message must be well-formed). */
export function incoming(req: SipMessage, source: Endpoint = CALLER, local: LocalAddress = LOCAL_UDP): IncomingRequest {
  const via = topVia(req);
  const cseq = parseCSeq(req.header('cseq'));
  if (!via || !cseq) throw new Error('test request without Via or CSeq');
  const mf = req.header('max-forwards');
  return {
    req,
    source,
    local,
    via,
    stampedVia: stampVia(via.value, via, source.address, source.port, source.transport === 'udp'),
    replyTo: replyTarget(via, source),
    callId: req.header('call-id') ?? '',
    fromTag: tagOf(req.header('from')),
    toTag: tagOf(req.header('to')),
    cseq: cseq.seq,
    maxForwards: mf === undefined ? 70 : Number(mf),
    key: '',
  };
}

/** A timer queue on a fake clock: advance(ms) runs what falls due, in deadline order. */
export class FakeTimers {
  now = 0;
  pending = 0;
  private timers: Timer[] = [];
  schedule<A>(delayMs: number, fn: (arg: A) => void, arg?: A): Timer {
    const timer: Timer = { at: this.now + delayMs, index: 0, fn: fn as (arg: never) => void, arg };
    this.timers.push(timer);
    this.pending++;
    return timer;
  }
  cancel(timer: Timer | undefined): undefined {
    if (timer && timer.index >= 0) {
      timer.index = -1;
      this.pending--;
    }
    return undefined;
  }
  clear(): void {
    for (const x of this.timers) x.index = -1;
    this.timers = [];
    this.pending = 0;
  }
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let next: Timer | undefined;
      for (const x of this.timers) if (x.index >= 0 && x.at <= end && (!next || x.at < next.at)) next = x;
      if (!next) break;
      this.now = next.at;
      next.index = -1;
      this.pending--;
      (next.fn as (arg: unknown) => void)(next.arg);
    }
    this.timers = this.timers.filter((x) => x.index >= 0);
    this.now = end;
  }
  /** For the constructors that take the real queue. */
  get queue(): TimerQueue {
    return this as unknown as TimerQueue;
  }
}

export interface Sent {
  at: number;
  dest: Endpoint;
  data: string;
}
