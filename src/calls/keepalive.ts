/**
 * Calls that never stick (Kamailio's dialog keepalive, RFC 4028 session timers as an observer):
 * every confirmed call the tracker holds is probed with an in-dialog OPTIONS to each end every
 * `calls.keepalive` seconds; an end that fails `keepaliveFailures` probes in a row, or a
 * session timer that runs out without a refresh, ends the call with a BYE to both ends. The
 * operator's "end call" goes the same way.
 *
 * CSeq (RFC 3261 §12.2.2): a probe to an end carries the highest CSeq seen in a request towards
 * that end, never a higher one. A UAS rejects only a CSeq lower than the last it saw, so an
 * equal one is accepted, and the real requests of the other end (whose CSeq only grows) are
 * never refused as out of order because of a probe. Where no request towards that end has been
 * seen yet (the caller, before the callee sent anything), the probe carries 0, below any CSeq
 * the callee will choose. The BYE that ends the call carries one more: nothing follows it.
 */
import { buildRequest } from '../sip/build-request.js';
import { isAsciiString } from '../sip/message.js';
import type { ClientTransaction, ClientUser } from '../transaction/client.js';
import { NO_USER } from '../transaction/client.js';
import type { LocalIds } from '../transaction/ids.js';
import type { TransactionLayer } from '../transaction/layer.js';
import type { Timer } from '../transaction/timer-queue.js';
import type { Endpoint } from '../transport/endpoint.js';
import { ourVia } from '../transport/via.js';
import type { LocalAddress } from '../transport/transport.js';
import type { ActiveCall, DialogEnd, EndReason } from './active-call.js';
import type { CallTracker } from './tracker.js';

export interface KeepaliveSettings {
  /** Seconds between probes; 0: no probes. */
  interval: number;
  /** Failed probes in a row at one end that end the call. */
  failures: number;
}

export interface KeepaliveDeps {
  layer: TransactionLayer;
  ids: LocalIds;
  /** Our Via address for a request to dest. */
  localFor(dest: Endpoint): LocalAddress;
  calls: CallTracker;
  settings(): KeepaliveSettings;
  now?: () => number;
}

/** Why the proxy ends a call itself, with the Reason its BYEs carry (RFC 3326). */
const BYE_REASON: Readonly<Record<'keepalive' | 'session-timer' | 'api', string>> = {
  keepalive: 'Reason: SIP;cause=408;text="Call liveness lost"',
  'session-timer': 'Reason: SIP;cause=408;text="Session timer expired"',
  api: 'Reason: SIP;cause=200;text="Call ended by the operator"',
};

/** One end of a probed call. */
class EndState implements ClientUser {
  /** Highest CSeq seen in a request towards this end; -1: none. */
  cseq: number;
  failures = 0;
  aliveAt: number;
  /** The probe still waiting for its final response. */
  pending: ClientTransaction | undefined;

  constructor(
    readonly probe: Probe,
    readonly end: DialogEnd,
    startedAt: number,
  ) {
    this.cseq = end.cseq;
    this.aliveAt = startedAt;
  }

  onResponse(res: { status: number }): void {
    if (res.status < 200) return;
    this.pending = undefined;
    // Any final answer but 408 and 481 shows the end is there (phones answer 200, 405, 501...).
    if (res.status === 408 || res.status === 481) this.probe.owner.failed(this);
    else {
      this.failures = 0;
      this.aliveAt = this.probe.owner.clock();
    }
  }

  onFailure(): void {
    // Timer F, or a stream transport that could not deliver.
    this.pending = undefined;
    this.probe.owner.failed(this);
  }

  /** No final answer before the next probe was due: drop the probe (Timer F's 32 s is not waited for). */
  overdue(): boolean {
    if (this.pending === undefined) return false;
    this.pending.terminate();
    this.pending = undefined;
    return true;
  }
}

/**
 * The keepalive's state of a call: made when the call is first probed, or earlier when an
 * in-dialog request or a session timer needs it. Most calls end before their first probe and
 * never get one.
 */
class Probe {
  readonly caller: EndState | undefined;
  readonly callee: EndState | undefined;
  sessionTimer: Timer | undefined;
  sessionExpires: number;
  /** When the wheel last sent this call's probes (ms since epoch); 0: never. */
  probedAt = 0;

  constructor(
    readonly owner: DialogKeepalive,
    readonly call: ActiveCall,
  ) {
    const ends = call.ends;
    this.caller = ends ? new EndState(this, ends.caller, call.startedAt) : undefined;
    this.callee = ends ? new EndState(this, ends.callee, call.startedAt) : undefined;
    this.sessionExpires = call.sessionExpires;
  }
}

/** The wheel turns once a second: a probe goes out between `interval` and `interval` + 1 s after the last. */
const STEP_MS = 1000;

export class DialogKeepalive {
  /** Calls that have keepalive state (see Probe), by call id. */
  private readonly probes = new Map<string, Probe>();
  /**
   * A timing wheel of call ids, one slot per second of the interval (plus one), as Kamailio's
   * dialog timer keeps one list per expiry: following a call costs an array push, not a timer
   * and a heap entry of its own, and a call that ends first is simply not found when its slot
   * comes up (the tracker is asked). Only the wheel's own timer runs, and only while it holds ids.
   */
  private wheel: string[][] = [];
  /** The slot the next turn looks at. */
  private hand = 0;
  private queued = 0;
  private turnTimer: Timer | undefined;
  private readonly now: () => number;
  /** Probes sent, and probes that failed (no final answer in time, 408, 481), for /metrics. */
  readonly stats = { sent: 0, failed: 0 };

  constructor(private readonly d: KeepaliveDeps) {
    this.now = d.now ?? Date.now;
    d.calls.events.add((e) => {
      if (e.type === 'confirmed') this.track(e.call);
      else this.untrack(e.call);
    });
  }

  clock(): number {
    return this.now();
  }

  /** Follow a call: confirmed now, or restored from the store after a restart. */
  track(call: ActiveCall): void {
    if (call.sessionExpires > 0 && !this.probes.has(call.id)) this.armSession(this.probeOf(call));
    if (call.ends !== null) this.enqueue(call.id, 1);
  }

  private untrack(call: ActiveCall): void {
    const p = this.probes.get(call.id);
    if (p === undefined || p.call !== call) return;
    this.probes.delete(call.id);
    p.sessionTimer = this.d.layer.timers.cancel(p.sessionTimer);
    p.caller?.overdue();
    p.callee?.overdue();
  }

  private probeOf(call: ActiveCall): Probe {
    let p = this.probes.get(call.id);
    if (p === undefined || p.call !== call) {
      p = new Probe(this, call);
      this.probes.set(call.id, p);
    }
    return p;
  }

  /**
   * An in-dialog request passed the proxy: it raises the CSeq towards the other end, and a
   * re-INVITE or UPDATE refreshes the session timer (with its Session-Expires, if it has one).
   */
  sawRequest(call: ActiveCall, fromCaller: boolean, method: string, cseq: number, sessionExpires: number): void {
    if (this.d.calls.byId(call.id) !== call) return;
    const p = this.probeOf(call);
    const towards = fromCaller ? p.callee : p.caller;
    if (towards && cseq > towards.cseq) towards.cseq = cseq;
    if ((method === 'INVITE' || method === 'UPDATE') && (p.sessionExpires > 0 || sessionExpires > 0)) {
      if (sessionExpires > 0) p.sessionExpires = sessionExpires;
      this.armSession(p);
    }
  }

  /** When each end last proved alive (ms since epoch), or undefined for a call not followed. */
  aliveAt(call: ActiveCall): { caller: number; callee: number } | undefined {
    const p = this.probes.get(call.id);
    if (p?.call === call && p.caller && p.callee) return { caller: p.caller.aliveAt, callee: p.callee.aliveAt };
    // Not probed yet: alive since the 2xx.
    return call.ends === null ? undefined : { caller: call.startedAt, callee: call.startedAt };
  }

  /** End a call from here: a BYE to each end (not waited for), then the tracker forgets it. */
  end(call: ActiveCall, why: 'keepalive' | 'session-timer' | 'api'): void {
    const p = this.probes.get(call.id);
    const ends = call.ends;
    if (ends !== null) {
      const reason = BYE_REASON[why];
      const own = p?.call === call;
      this.send(call, ends.caller, own ? p.caller!.cseq : ends.caller.cseq, 'BYE', reason, NO_USER);
      this.send(call, ends.callee, own ? p.callee!.cseq : ends.callee.cseq, 'BYE', reason, NO_USER);
    }
    this.d.calls.end(call, why satisfies EndReason);
  }

  /** Put a call id in the slot the wheel reaches after `interval` seconds (`ahead`: 1 from outside a turn, 0 during one). */
  private enqueue(id: string, ahead: number): void {
    const interval = this.d.settings().interval;
    if (interval <= 0) return;
    if (this.wheel.length !== interval + 1) this.resize(interval + 1);
    if (this.turnTimer === undefined) {
      // A stopped wheel starts now: its next turn is a whole step away.
      this.turnTimer = this.d.layer.timers.schedule(STEP_MS, DialogKeepalive.turn, this);
      ahead = 0;
    }
    // Otherwise the next turn is at most a step away: from outside a turn, the slot `interval`
    // turns ahead is reached between `interval` and `interval` + 1 s from now.
    this.wheel[(this.hand + interval - 1 + ahead) % this.wheel.length]!.push(id);
    this.queued++;
  }

  /** The interval changed (a reload): every id is due one new interval from now. */
  private resize(size: number): void {
    const ids = this.wheel.flat();
    this.wheel = Array.from({ length: size }, () => []);
    this.hand = 0;
    this.wheel[size - 1] = ids;
  }

  // Timer callbacks take their object (timer-queue.ts): no closure.
  private static turn(self: DialogKeepalive): void {
    self.turnTimer = undefined;
    const slot = self.wheel[self.hand];
    if (slot === undefined) return;
    self.wheel[self.hand] = [];
    self.hand = (self.hand + 1) % self.wheel.length;
    self.queued -= slot.length;
    for (const id of slot) self.visit(id);
    if (self.queued > 0 && self.turnTimer === undefined) self.turnTimer = self.d.layer.timers.schedule(STEP_MS, DialogKeepalive.turn, self);
  }

  /** A call's slot came up: count the probes left unanswered, send new ones, come back in an interval. */
  private visit(id: string): void {
    const call = this.d.calls.byId(id);
    if (call === undefined || call.ends === null) return; // ended since: forget it
    const p = this.probeOf(call);
    const now = this.now();
    // The same call queued twice (a restored call tracked again): once per interval is enough.
    if (now - p.probedAt < STEP_MS) return;
    p.probedAt = now;
    const caller = p.caller!;
    const callee = p.callee!;
    if (caller.overdue()) {
      this.failed(caller);
      if (this.d.calls.byId(id) !== call) return; // that failure ended the call
    }
    if (callee.overdue()) {
      this.failed(callee);
      if (this.d.calls.byId(id) !== call) return;
    }
    caller.pending = this.send(call, caller.end, caller.cseq, 'OPTIONS', undefined, caller);
    callee.pending = this.send(call, callee.end, callee.cseq, 'OPTIONS', undefined, callee);
    this.stats.sent += 2;
    this.enqueue(id, 0);
  }

  private armSession(p: Probe): void {
    const timers = this.d.layer.timers;
    p.sessionTimer = timers.cancel(p.sessionTimer);
    p.sessionTimer = timers.schedule(p.sessionExpires * 1000, DialogKeepalive.sessionExpired, p);
  }

  private static sessionExpired(p: Probe): void {
    p.sessionTimer = undefined;
    const self = p.owner;
    if (self.d.calls.byId(p.call.id) === p.call) self.end(p.call, 'session-timer');
  }

  /** A probe failed at one end; enough in a row end the call. */
  failed(e: EndState): void {
    this.stats.failed++;
    e.failures++;
    const call = e.probe.call;
    if (e.failures >= this.d.settings().failures && this.d.calls.byId(call.id) === call) this.end(call, 'keepalive');
  }

  /** CSeq: the highest seen towards that end for a probe (0 if none), one more for the BYE that ends the call. */
  private send(call: ActiveCall, end: DialogEnd, seen: number, method: 'OPTIONS' | 'BYE', reason: string | undefined, user: ClientUser): ClientTransaction {
    const local = this.d.localFor(end.dest);
    const branch = this.d.ids.branch('ka');
    const cseq = method === 'BYE' ? Math.max(seen, 0) + 1 : Math.max(seen, 0);
    const extra = reason === undefined ? NO_LINES : [reason];
    const data = buildRequest({
      method,
      uri: end.uri,
      via: ourVia(local, branch),
      from: end.from,
      to: end.to,
      callId: call.callId,
      cseq,
      routeLines: end.routes,
      extra,
      ascii: isAsciiString(end.uri) && isAsciiString(end.from) && isAsciiString(end.to) && isAsciiString(end.routes),
    });
    return this.d.layer.sendRequest(branch, method, end.dest, data, user);
  }
}

const NO_LINES: readonly string[] = [];
