/**
 * Prometheus metrics (prom-client 15) on a registry of our own, so that several proxies in one
 * process (tests) never share counters and nothing leaks into prom-client's global registry.
 *
 * The SIP hot path only bumps plain numbers; prom-client objects are filled in at scrape time
 * from each metric's collect(). A scrape happens every few seconds, a SIP message thousands of
 * times a second, so the cost belongs to the scrape.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { KNOWN_METHODS } from '../sip/methods.js';
import { CALL_OUTCOMES, type CallOutcomeName } from '../proxy/fork.js';
import type { MessageCounter } from '../transaction/dispatcher.js';

/** Read at scrape time only; implemented by the core over its in-memory state. */
export interface MetricsSource {
  registeredDevices(): number;
  contacts(): number;
  activeCallsByExtension(): ReadonlyMap<string, number>;
  transactionsInFlight(): number;
  /** Calls ended since start, by reason (bye, keepalive, session-timer, api, expired). */
  endedCalls(): ReadonlyMap<string, number>;
  /** In-dialog keepalive OPTIONS sent, and those that failed (no answer in time, 408, 481). */
  keepaliveProbes(): { readonly sent: number; readonly failed: number };
  /**
   * Source addresses banned now; bans made and messages dropped unparsed from banned sources
   * since start, by reason (flood, auth-failures). Absent: no such series.
   */
  bans?(): { readonly active: number; readonly issued: ReadonlyMap<string, number>; readonly dropped: ReadonlyMap<string, number> };
  /** Shared state (storage.redis): reachable or not, failed commands, resyncs, dead instances reaped. Absent: no such series. */
  redis?(): { readonly up: boolean; readonly errors: number; readonly resyncs: number; readonly reaped: number };
}

/** What the SIP side feeds: messages in (the dispatcher's counter), messages out, call outcomes. */
export interface SipMetrics extends MessageCounter {
  /** A message we send, counted by what its first bytes say. */
  sent(data: Buffer): void;
  callOutcome(o: CallOutcomeName): void;
}

/** The `outcome` label of a call outcome: the log's name with underscores (busy-on-busy -> busy_on_busy). */
const OUTCOME_LABEL = new Map<CallOutcomeName, string>(CALL_OUTCOMES.map((o) => [o, o.replaceAll('-', '_')]));

/**
 * The only label values we export for `kind`. The method of a request comes off the wire, so an
 * open set would let anyone create one time series per random method name (unbounded memory in
 * us and in Prometheus); everything else is counted as "other".
 */
const KNOWN_KINDS: readonly string[] = [...KNOWN_METHODS, '1xx', '2xx', '3xx', '4xx', '5xx', '6xx'];
const OTHER_KIND = 'other';

/**
 * Per-label totals. Pre-filled with one counter object per label, so that the hot path is one
 * Map lookup (a get and a set were two, for each of the ~20 messages of a call) and no
 * allocation.
 */
class LabelCounts {
  private readonly counts = new Map<string, { n: number }>();
  private other = 0;

  constructor() {
    for (const k of KNOWN_KINDS) this.counts.set(k, { n: 0 });
  }

  bump(label: string): void {
    const c = this.counts.get(label);
    if (c === undefined) this.other++;
    else c.n++;
  }

  /** Non-zero totals only: a series appears once something was seen, like a plain Counter. */
  *entries(): IterableIterator<[string, number]> {
    for (const [k, c] of this.counts) if (c.n > 0) yield [k, c.n];
    if (this.other > 0) yield [OTHER_KIND, this.other];
  }
}

export function createMetrics(source: MetricsSource): { registry: Registry; sip: SipMetrics } {
  const registry = new Registry();
  // Process metrics, GC, heap, and nodejs_eventloop_lag_seconds (issue 3 asks for event-loop lag).
  // The lag histogram samples every 100 ms instead of prom-client's 10 ms: at 10 ms the event
  // loop woke up about 200 times a second (strace: epoll_pwait) with nothing else to do. A stall
  // that spans a sample's due time still delays that sample by the rest of the stall, so long
  // stalls always show; shorter ones in proportion to their length.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });

  const inCounts = new LabelCounts();
  const outCounts = new LabelCounts();
  const outcomes = new Map<string, number>([...OUTCOME_LABEL.values()].map((o) => [o, 0]));

  new Gauge({
    name: 'sipbob_registered_devices',
    help: 'Devices with at least one unexpired registration',
    registers: [registry],
    collect() {
      this.set(source.registeredDevices());
    },
  });

  new Gauge({
    name: 'sipbob_contacts',
    help: 'Unexpired contact bindings (a device may hold several)',
    registers: [registry],
    collect() {
      this.set(source.contacts());
    },
  });

  new Gauge({
    name: 'sipbob_active_calls',
    help: 'Confirmed calls per extension (the number Busy on Busy looks at)',
    labelNames: ['extension'] as const,
    registers: [registry],
    collect() {
      // reset() first so an extension whose calls ended (or that was removed) drops out.
      this.reset();
      for (const [extension, n] of source.activeCallsByExtension()) this.set({ extension }, n);
    },
  });

  new Gauge({
    name: 'sipbob_transactions_in_flight',
    help: 'SIP transactions not yet terminated',
    registers: [registry],
    collect() {
      this.set(source.transactionsInFlight());
    },
  });

  // The counters below are rebuilt from our monotonic totals at every scrape: reset() then
  // inc(total) yields exactly the total, so to Prometheus they are ordinary counters.
  // inc(0) keeps every label visible from the first scrape, so rate() works from the start.
  const labelledTotals = (name: string, help: string, label: string, totals: () => Iterable<[string, number]>): void => {
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        this.reset();
        for (const [value, n] of totals()) this.inc({ [label]: value }, n);
      },
    });
  };
  const total = (name: string, help: string, value: () => number): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(value());
      },
    });
  };
  labelledTotals('sipbob_calls_total', 'Finished call attempts by outcome', 'outcome', () => outcomes);
  labelledTotals(
    'sipbob_calls_ended_total',
    'Confirmed calls that ended, by reason (bye, keepalive, session-timer, api, expired)',
    'reason',
    () => source.endedCalls(),
  );
  total('sipbob_keepalive_probes_sent_total', 'In-dialog OPTIONS sent to the ends of confirmed calls', () => source.keepaliveProbes().sent);
  total(
    'sipbob_keepalive_probes_failed_total',
    'Keepalive probes without a final answer before the next was due, or answered 408 or 481',
    () => source.keepaliveProbes().failed,
  );

  const redis = source.redis?.bind(source);
  if (redis !== undefined) {
    new Gauge({
      name: 'sipbob_redis_up',
      help: '1 while Redis (storage.redis) answers, 0 while this instance serves from memory alone',
      registers: [registry],
      collect() {
        this.set(redis().up ? 1 : 0);
      },
    });
    total('sipbob_redis_errors_total', 'Redis commands that failed (unreachable, slow or refused)', () => redis().errors);
    total('sipbob_redis_resyncs_total', "Times this instance re-wrote what it owns to Redis and reloaded the others' state", () => redis().resyncs);
    total('sipbob_cluster_instances_reaped_total', 'Instances whose lease ran out and that this instance reaped', () => redis().reaped);
  }

  const bans = source.bans?.bind(source);
  if (bans !== undefined) {
    // Label values as the outcomes': auth-failures -> auth_failures.
    const labelled = (m: ReadonlyMap<string, number>): Iterable<[string, number]> => [...m].map(([k, n]) => [k.replaceAll('-', '_'), n]);
    new Gauge({
      name: 'sipbob_bans_active',
      help: 'Source addresses banned now (flood or password guessing); their messages are dropped unparsed',
      registers: [registry],
      collect() {
        this.set(bans().active);
      },
    });
    labelledTotals('sipbob_bans_total', 'Bans of source addresses, by reason (flood, auth_failures)', 'reason', () => labelled(bans().issued));
    labelledTotals(
      'sipbob_dropped_messages_total',
      'Datagrams, stream messages and connections from banned sources, dropped unparsed, by the ban\'s reason',
      'reason',
      () => labelled(bans().dropped),
    );
  }

  new Counter({
    name: 'sipbob_sip_messages_total',
    help: 'SIP messages by direction and kind (request method or response status class)',
    labelNames: ['direction', 'kind'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [kind, n] of inCounts.entries()) this.inc({ direction: 'in', kind }, n);
      for (const [kind, n] of outCounts.entries()) this.inc({ direction: 'out', kind }, n);
    },
  });

  const sip: SipMetrics = {
    request(method) {
      inCounts.bump(method);
    },
    response(status) {
      inCounts.bump(statusKind(status));
    },
    sent(data) {
      outCounts.bump(outgoingKind(data));
    },
    callOutcome(o) {
      const label = OUTCOME_LABEL.get(o)!;
      outcomes.set(label, outcomes.get(label)! + 1);
    },
  };

  return { registry, sip };
}

/** KNOWN_KINDS by first byte, for outgoingKind and statusKind: constant label strings, nothing decoded. */
const STATUS_BY_DIGIT = new Map<number, string>();
const METHODS_BY_FIRST = new Map<number, string[]>();
for (const k of KNOWN_KINDS) {
  const c = k.charCodeAt(0);
  if (k.endsWith('xx')) STATUS_BY_DIGIT.set(c, k);
  else METHODS_BY_FIRST.set(c, [...(METHODS_BY_FIRST.get(c) ?? []), k]);
}

/** The `kind` label of a received response: a constant string (no template string to hash per message). */
export function statusKind(status: number): string {
  return STATUS_BY_DIGIT.get(48 + Math.floor(status / 100)) ?? OTHER_KIND;
}

/**
 * The `kind` label of an outgoing message, read off its first bytes: a status class or a known
 * method as the constant string of KNOWN_KINDS. Only another method is decoded (LabelCounts
 * then counts it as "other").
 */
export function outgoingKind(data: Buffer): string {
  if (data[0] === 83 && data[1] === 73 && data[2] === 80 && data[3] === 47) return STATUS_BY_DIGIT.get(data[8]!) ?? OTHER_KIND;
  for (const m of METHODS_BY_FIRST.get(data[0]!) ?? []) {
    if (data[m.length] !== 32) continue;
    let i = 1;
    while (i < m.length && data[i] === m.charCodeAt(i)) i++;
    if (i === m.length) return m;
  }
  const sp = data.indexOf(32);
  return data.toString('latin1', 0, sp > 0 && sp < 20 ? sp : 0);
}
