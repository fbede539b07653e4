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
}

/** A call the keepalive follows. */
class Probe {
  readonly caller: EndState | undefined;
  readonly callee: EndState | undefined;
  timer: Timer | undefined;
  sessionTimer: Timer | undefined;
  sessionExpires: number;

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

export class DialogKeepalive {
  private readonly probes = new Map<string, Probe>();
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
    if (this.probes.has(call.id)) return;
    const p = new Probe(this, call);
    this.probes.set(call.id, p);
    this.schedule(p);
    if (p.sessionExpires > 0) this.armSession(p);
  }

  private untrack(call: ActiveCall): void {
    const p = this.probes.get(call.id);
    if (p === undefined) return;
    this.probes.delete(call.id);
    const timers = this.d.layer.timers;
    p.timer = timers.cancel(p.timer);
    p.sessionTimer = timers.cancel(p.sessionTimer);
    for (const e of [p.caller, p.callee]) {
      e?.pending?.terminate();
      if (e) e.pending = undefined;
    }
  }

  /**
   * An in-dialog request passed the proxy: it raises the CSeq towards the other end, and a
   * re-INVITE or UPDATE refreshes the session timer (with its Session-Expires, if it has one).
   */
  sawRequest(call: ActiveCall, fromCaller: boolean, method: string, cseq: number, sessionExpires: number): void {
    const p = this.probes.get(call.id);
    if (p === undefined) return;
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
    if (!p?.caller || !p.callee) return undefined;
    return { caller: p.caller.aliveAt, callee: p.callee.aliveAt };
  }

  /** End a call from here: a BYE to each end (not waited for), then the tracker forgets it. */
  end(call: ActiveCall, why: 'keepalive' | 'session-timer' | 'api'): void {
    const p = this.probes.get(call.id);
    if (p?.caller && p.callee) {
      this.send(p.caller, 'BYE', BYE_REASON[why], NO_USER);
      this.send(p.callee, 'BYE', BYE_REASON[why], NO_USER);
    }
    this.d.calls.end(call, why satisfies EndReason);
  }

  private schedule(p: Probe): void {
    const interval = this.d.settings().interval;
    if (interval > 0 && p.caller) p.timer = this.d.layer.timers.schedule(interval * 1000, DialogKeepalive.tick, p);
  }

  private armSession(p: Probe): void {
    const timers = this.d.layer.timers;
    p.sessionTimer = timers.cancel(p.sessionTimer);
    p.sessionTimer = timers.schedule(p.sessionExpires * 1000, DialogKeepalive.sessionExpired, p);
  }

  // Timer callbacks take their object (timer-queue.ts): no closure per call.
  private static tick(p: Probe): void {
    p.timer = undefined;
    const self = p.owner;
    if (!self.probes.has(p.call.id)) return;
    for (const e of [p.caller!, p.callee!]) {
      if (e.pending !== undefined) {
        // No final answer before the next probe was due: a failure (Timer F's 32 s is not waited for).
        e.pending.terminate();
        e.pending = undefined;
        self.failed(e);
        if (!self.probes.has(p.call.id)) return; // that failure ended the call
      }
    }
    for (const e of [p.caller!, p.callee!]) {
      e.pending = self.send(e, 'OPTIONS', undefined, e);
      self.stats.sent++;
    }
    self.schedule(p);
  }

  private static sessionExpired(p: Probe): void {
    p.sessionTimer = undefined;
    if (p.owner.probes.has(p.call.id)) p.owner.end(p.call, 'session-timer');
  }

  /** A probe failed at one end; enough in a row end the call. */
  failed(e: EndState): void {
    this.stats.failed++;
    e.failures++;
    const p = e.probe;
    if (e.failures >= this.d.settings().failures && this.probes.has(p.call.id)) this.end(p.call, 'keepalive');
  }

  private send(e: EndState, method: 'OPTIONS' | 'BYE', reason: string | undefined, user: ClientUser): ClientTransaction {
    const end = e.end;
    const local = this.d.localFor(end.dest);
    const branch = this.d.ids.branch('ka');
    const cseq = method === 'BYE' ? Math.max(e.cseq, 0) + 1 : Math.max(e.cseq, 0);
    const extra = reason === undefined ? NO_LINES : [reason];
    const data = buildRequest({
      method,
      uri: end.uri,
      via: ourVia(local, branch),
      from: end.from,
      to: end.to,
      callId: e.probe.call.callId,
      cseq,
      routeLines: end.routes,
      extra,
      ascii: isAsciiString(end.uri) && isAsciiString(end.from) && isAsciiString(end.to) && isAsciiString(end.routes),
    });
    return this.d.layer.sendRequest(branch, method, end.dest, data, user);
  }
}

const NO_LINES: readonly string[] = [];
