/**
 * Issue 11, "How it is checked", end to end with SIPp: calls that never stick.
 * Config calls.keepalive 2 s, keepaliveFailures 2: the proxy probes both ends of a confirmed
 * call with an in-dialog OPTIONS every 2 s and ends the call after 2 failed probes in a row at
 * one end, so an end that vanished is noticed within 2 x (2 + 1) = 6 s (BOUND_MS; the tests
 * allow SLACK_MS more for SIPp, polling and a loaded machine).
 * (a) the callee vanishes (its SIPp killed with SIGKILL: no BYE): the caller gets the proxy's
 *     BYE with the Reason, `call ended` says why "keepalive", the Busy-on-Busy extension is
 *     free within the bound and a new call to it rings a device that answers;
 * (b) the caller (a device of the Busy-on-Busy extension, authenticated) vanishes: the same
 *     for its own extension;
 * (c) phones that answer the probes with 200, or 405/501: the call stays up for 3 probes at
 *     each end, then one side's BYE goes through and is answered; the probes never carry a
 *     CSeq above what the peer saw (RFC 3261 §12.2.2): the INVITE's towards the callee, 0
 *     towards the caller;
 * (d) RFC 4028: a 2xx with Session-Expires: 4 and no refresh ends the call ("session-timer",
 *     BYE to both ends); re-INVITEs every 2 s keep it up past 4 s;
 * (e) kill -9 of the proxy during a call, the callee vanishes while it is down, restart on the
 *     same storage: the restored call is probed and ended within the bound;
 * (f) DELETE /api/calls/{id} and DELETE /api/devices/{username}/registrations.
 * Each subtest runs its own proxy (same ports, one after the other) and fresh device ports,
 * so no retransmission of an earlier call reaches a later one. Port block 5.
 */
import t, { type Test } from 'tap';
import {
  HOSTS,
  callerOptions,
  callsOf,
  describe,
  phone,
  portBlock,
  portCounter,
  register,
  sipp,
  sippStart,
  startProxy,
  waitFor,
  type CallerOptions,
  type LogLine,
  type Proxy,
  type ProxyOptions,
  type SippProcess,
  type SippResult,
} from './harness.js';

const P = portBlock(5);
const port = portCounter(P.base + 10);

const KEEPALIVE_S = 2;
const FAILURES = 2;
/** keepalive x (failures + 1): the issue's bound for noticing a vanished end. */
const BOUND_MS = KEEPALIVE_S * (FAILURES + 1) * 1000;
const SLACK_MS = 3000;
const LIVENESS_REASON = 'Reason: SIP;cause=408;text="Call liveness lost"';
const SESSION_REASON = 'Reason: SIP;cause=408;text="Session timer expired"';
const OPERATOR_REASON = 'Reason: SIP;cause=200;text="Call ended by the operator"';
/** ka-phone.xml's header line for the 200 when no session timer is wanted. */
const NO_SESSION = 'X-Session-Timer: none';

const PW = {
  'anna-desk': 'ka-pw-1',
  'anna-soft': 'ka-pw-2',
  'anna-mobile': 'ka-pw-3',
  'hotline-desk-1': 'ka-pw-4',
} as const;
type User = keyof typeof PW;
const HOST: Record<User, string> = {
  'anna-desk': HOSTS.phone1,
  'anna-soft': HOSTS.phone2,
  'anna-mobile': HOSTS.phone3,
  'hotline-desk-1': HOSTS.phone4,
};

const baseOptions = {
  sipPort: P.sip,
  httpPort: P.http,
  extensions: [
    {
      number: '200',
      name: 'Anna Schmidt',
      busyOnBusy: true,
      devices: (['anna-desk', 'anna-soft', 'anna-mobile'] as const).map((username) => ({ username, password: PW[username] })),
    },
    { number: '100', name: 'Service Hotline', busyOnBusy: false, devices: [{ username: 'hotline-desk-1', password: PW['hotline-desk-1'] }] },
  ],
  trunks: [{ name: 'carrier-in', address: HOSTS.trunkIn }],
  calls: { keepalive: KEEPALIVE_S, keepaliveFailures: FAILURES },
} satisfies ProxyOptions;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------
// One proxy per subtest; every SIPp of the subtest is stopped at its end, then the proxy.

interface Ctx {
  proxy: Proxy;
  procs: SippProcess[];
}

async function setUp(t: Test, storageDir?: string): Promise<Ctx> {
  const ctx: Ctx = { proxy: await startProxy({ ...baseOptions, storageDir }), procs: [] };
  t.teardown(async () => {
    await Promise.all(ctx.procs.map((p) => p.stop()));
    await ctx.proxy.stop();
  });
  return ctx;
}

interface Device {
  username: User;
  password: string;
  local: string;
  localPort: number;
  remote: string;
}

/** A device of `username` at a fresh port on its host, registered. */
async function registered(t: Test, ctx: Ctx, username: User): Promise<Device> {
  const d: Device = { username, password: PW[username], local: HOST[username], localPort: port(), remote: ctx.proxy.remote };
  const r = await register(d);
  t.equal(r.code, 0, `${username} registered at ${d.local}:${d.localPort}`, { details: r.code !== 0 ? describe(r) : undefined });
  return d;
}

interface ProbeAnswers {
  /** Status answered to the probes: 200, 405 or 501. */
  probe?: '200' | '405' | '501';
  /** Hang up after this many probes (0: never, wait for a BYE). */
  hangup?: number;
}

/** A registered device in ka-phone.xml: answers a call, the probes, refreshes; BYE ends it. */
async function kaPhone(ctx: Ctx, d: Device, o: ProbeAnswers & { session?: string; timeoutSec?: number } = {}): Promise<SippProcess> {
  const p = await phone({
    ...d,
    scenario: 'ka-phone.xml',
    register: false,
    ringMs: 200,
    timeoutSec: o.timeoutSec ?? 30,
    vars: { session: o.session ?? NO_SESSION },
    globals: { probe: o.probe ?? '200', hangup: String(o.hangup ?? 0) },
  });
  ctx.procs.push(p);
  return p;
}

/** Another device (phone-answer.xml, phone-ring-cancelled.xml) for the call after the test's call. */
async function plainPhone(ctx: Ctx, d: Device, scenario: string): Promise<SippProcess> {
  const p = await phone({ ...d, scenario, register: false, ringMs: 300, timeoutSec: 15 });
  ctx.procs.push(p);
  return p;
}

/**
 * A caller in ka-caller.xml (or another scenario) with a Call-ID of our own: SIPp writes its
 * message trace buffered, so the Call-ID cannot be read from it while SIPp runs.
 */
function kaCaller(ctx: Ctx, c: Omit<CallerOptions, 'remote'> & ProbeAnswers & { tag: string }): { proc: SippProcess; callId: string } {
  const callId = `ka-${c.tag}-${process.pid}-${Date.now()}@${c.local}`;
  const { probe, hangup, tag: _tag, ...caller } = c;
  const proc = sippStart({
    ...callerOptions({ scenario: 'ka-caller.xml', timeoutSec: 30, ...caller, remote: ctx.proxy.remote }),
    globals: { probe: probe ?? '200', hangup: String(hangup ?? 0) },
    extra: ['-cid_str', callId],
  });
  ctx.procs.push(proc);
  return { proc, callId };
}

function fromTrunk(): { local: string; localPort: number; from: string } {
  return { local: HOSTS.trunkIn, localPort: port(), from: 'carrier' };
}

// ---------------------------------------------------------------------------------------
// The API and the log

async function activeCalls(proxy: Proxy, number: string): Promise<number> {
  return (await proxy.apiJson<{ activeCalls: number }>(`/api/extensions/${number}`)).activeCalls;
}

/** Polls until `number` has `count` active calls; resolves with the ms waited, or an error message. */
async function activeCallsBecome(proxy: Proxy, number: string, count: number, timeoutMs: number): Promise<number | string> {
  const started = Date.now();
  return waitFor(`activeCalls ${count} on ${number}`, async () => (await activeCalls(proxy, number)) === count, timeoutMs, 50).then(
    () => Date.now() - started,
    (e: Error) => e.message,
  );
}

function callEnded(proxy: Proxy, callId: string, timeoutMs = 3000): Promise<LogLine | undefined> {
  return proxy.waitForLog((l) => l.msg === 'call ended' && l.callId === callId, timeoutMs).catch(() => undefined);
}

/** A SIPp that should be finishing: stopped (SIGTERM) if not done within `ms`. */
async function doneWithin(proc: SippProcess, ms: number): Promise<SippResult> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)));
  const first = await Promise.race([proc.done, late]);
  clearTimeout(timer);
  return first === 'late' ? proc.stop() : first;
}

/** Gone without a word: SIGKILL, so SIPp sends no BYE for its call. */
async function vanish(proc: SippProcess): Promise<number> {
  process.kill(proc.pid!, 'SIGKILL');
  await proc.done;
  return Date.now();
}

// ---------------------------------------------------------------------------------------
// SIPp message traces (-trace_msg): one block per message, "UDP message received [n] bytes :"
// or "UDP message sent (n bytes):", then the message.

interface Traced {
  received: boolean;
  startLine: string;
  text: string;
}

function traced(messages: string): Traced[] {
  const out: Traced[] = [];
  const re = /message (received \[\d+\] bytes :|sent \(\d+ bytes\):)\s*\r?\n\s*([^\r\n]*)([\s\S]*?)(?=\r?\n-{20,}|$)/g;
  for (const m of messages.matchAll(re)) out.push({ received: m[1]!.startsWith('received'), startLine: m[2]!, text: `${m[2]!}${m[3]!}` });
  return out;
}

/** Requests of `method` this SIPp received, in order. */
function receivedRequests(messages: string, method: string): Traced[] {
  return traced(messages).filter((m) => m.received && m.startLine.startsWith(`${method} `));
}

function header(m: Traced, name: string): string | undefined {
  const re = new RegExp(`^${name}:[ \\t]*([^\\r\\n]*)`, 'im');
  return re.exec(m.text)?.[1]?.trim();
}

function cseqOf(m: Traced): number {
  return Number(/^(\d+)/.exec(header(m, 'CSeq') ?? '')?.[1] ?? NaN);
}

function withDetails(r: SippResult, proxy?: Proxy): { details: string } {
  return { details: `${describe(r, 10000)}${proxy ? `\n--- proxy\n${proxy.output(6000)}` : ''}` };
}

/** SIPp ended its run as the scenario says (exit 0). */
function assertOk(t: Test, r: SippResult, message: string, proxy?: Proxy): void {
  t.equal(r.code, 0, `${message} (${r.label})`, r.code !== 0 ? withDetails(r, proxy) : {});
}

/** The end received exactly one BYE, from the proxy, with `reason`. */
function assertByeWithReason(t: Test, r: SippResult, reason: string, who: string): void {
  const byes = receivedRequests(r.messages, 'BYE');
  t.equal(byes.length > 0 ? byes.filter((b) => b.text.includes(reason)).length : -1, byes.length, `${who} got the proxy's BYE with ${reason}`, {
    details: describe(r, 10000),
  });
}

/** The URI in a Contact header value. */
function contactUri(value: string | undefined): string | undefined {
  return /<([^>]+)>/.exec(value ?? '')?.[1];
}

/**
 * The probes are in-dialog requests sent the way each end is reached: Request-URI its Contact,
 * the call's Call-ID, both tags. RFC 3261 §12.2.2: they never carry a CSeq above what the peer
 * used, so the peer's next request is not refused as out of order.
 */
function assertProbes(t: Test, callee: SippResult, caller: SippResult, callId: string): void {
  const all = traced(callee.messages);
  const invite = all.find((m) => m.received && m.startLine.startsWith('INVITE '));
  const answer = all.find((m) => !m.received && m.startLine.startsWith('SIP/2.0 200') && / INVITE$/.test(header(m, 'CSeq') ?? ''));
  const calleeContact = contactUri(answer && header(answer, 'Contact'));
  const callerContact = contactUri(invite && header(invite, 'Contact'));
  const inDialog = (m: Traced, contact: string | undefined) =>
    m.startLine === `OPTIONS ${contact} SIP/2.0` && header(m, 'Call-ID') === callId && /;tag=/.test(header(m, 'To') ?? '') && /;tag=/.test(header(m, 'From') ?? '');

  // Towards the callee: the CSeq of the last INVITE (initial or re-INVITE) it received before the probe.
  let lastInvite = NaN;
  let checked = 0;
  const bad: string[] = [];
  for (const m of all) {
    if (!m.received) continue;
    if (m.startLine.startsWith('INVITE ')) lastInvite = cseqOf(m);
    if (m.startLine.startsWith('OPTIONS ')) {
      checked++;
      if (header(m, 'CSeq') !== `${lastInvite} OPTIONS`) bad.push(`CSeq ${header(m, 'CSeq')} after INVITE ${lastInvite}`);
      if (!inDialog(m, calleeContact)) bad.push(`not in the dialog or not to the Contact ${calleeContact}: ${m.text.slice(0, 400)}`);
    }
  }
  t.same(bad, [], `the ${checked} probes to the callee: to its Contact, in the dialog, CSeq of its last INVITE`, { details: describe(callee, 10000) });

  // Towards the caller: 0, the callee sent no request of its own before.
  const toCaller = receivedRequests(caller.messages, 'OPTIONS');
  t.same(
    toCaller.map((m) => `${header(m, 'CSeq')}${inDialog(m, callerContact) ? '' : ` not in the dialog or not to ${callerContact}`}`),
    toCaller.map(() => '0 OPTIONS'),
    `the ${toCaller.length} probes to the caller: to its Contact, in the dialog, CSeq 0 (the callee had sent nothing)`,
    { details: describe(caller, 10000) },
  );
}

// ---------------------------------------------------------------------------------------

t.test('(a) the callee vanishes: the caller gets a BYE, 200 is free within the bound and rings again', async (t) => {
  const ctx = await setUp(t);
  const { proxy } = ctx;
  const desk = await registered(t, ctx, 'anna-desk');
  const soft = await registered(t, ctx, 'anna-soft');

  const answering = await kaPhone(ctx, desk);
  const losing = await plainPhone(ctx, soft, 'phone-ring-cancelled.xml');
  const { proc: caller, callId } = kaCaller(ctx, { ...fromTrunk(), to: '200', tag: 'a' });
  const up = await activeCallsBecome(proxy, '200', 1, 6000);
  t.type(up, 'number', `the call to 200 is up (${up})`);
  assertOk(t, await doneWithin(losing, 5000), 'anna-soft rang and lost to anna-desk');

  const killedAt = await vanish(answering);
  const freed = await activeCallsBecome(proxy, '200', 0, BOUND_MS + SLACK_MS);
  const ms = Date.now() - killedAt;
  t.type(freed, 'number', `200 is free ${ms} ms after the callee vanished (bound ${BOUND_MS} + ${SLACK_MS} ms)`, {
    details: typeof freed === 'string' ? proxy.output(6000) : undefined,
  });
  t.ok(ms <= BOUND_MS + SLACK_MS, `within the bound (${ms} ms)`);
  const ended = await callEnded(proxy, callId);
  t.equal(ended?.why, 'keepalive', '`call ended` says why: keepalive', { details: JSON.stringify(ended) });
  t.same(await callsOf(proxy, '200'), [], '/api/calls has no call of 200');

  const rc = await doneWithin(caller, 5000);
  assertOk(t, rc, 'the caller answered probes, then got a BYE and answered it', proxy);
  assertByeWithReason(t, rc, LIVENESS_REASON, 'the caller');
  t.ok(receivedRequests(rc.messages, 'OPTIONS').length >= 1, 'the caller was probed too');

  // 200 rings again: anna-soft answers; anna-desk's binding is left over and does not answer.
  const answers = await plainPhone(ctx, soft, 'phone-answer.xml');
  const again = await sipp(callerOptions({ ...fromTrunk(), remote: proxy.remote, to: '200', pauseMs: 300, timeoutSec: 10 }));
  assertOk(t, again, 'a new call to 200 rings and is answered', proxy);
  assertOk(t, await doneWithin(answers, 5000), 'anna-soft rang, answered and got the BYE');
});

t.test('(b) the caller, a device of 200, vanishes: the callee gets a BYE, 200 is free within the bound and rings again', async (t) => {
  const ctx = await setUp(t);
  const { proxy } = ctx;
  const desk = await registered(t, ctx, 'anna-desk');
  const soft = await registered(t, ctx, 'anna-soft');
  const hotline = await registered(t, ctx, 'hotline-desk-1');

  const answering = await kaPhone(ctx, hotline);
  // anna-desk calls 100 from its own host, on another port than its registered contact.
  const { proc: caller, callId } = kaCaller(ctx, {
    local: desk.local,
    localPort: port(),
    to: '100',
    from: 'anna-desk',
    password: PW['anna-desk'],
    tag: 'b',
  });
  const up = await activeCallsBecome(proxy, '200', 1, 6000);
  t.type(up, 'number', `the outgoing call of anna-desk is up: 200 is in a call (${up})`);

  const killedAt = await vanish(caller);
  const freed = await activeCallsBecome(proxy, '200', 0, BOUND_MS + SLACK_MS);
  const ms = Date.now() - killedAt;
  t.type(freed, 'number', `200 is free ${ms} ms after its device vanished`, { details: typeof freed === 'string' ? proxy.output(6000) : undefined });
  t.ok(ms <= BOUND_MS + SLACK_MS, `within the bound (${ms} ms)`);
  t.equal(await activeCalls(proxy, '100'), 0, '100 (the callee) is out of the call too');
  const ended = await callEnded(proxy, callId);
  t.equal(ended?.why, 'keepalive', '`call ended` says why: keepalive', { details: JSON.stringify(ended) });

  const rh = await doneWithin(answering, 5000);
  assertOk(t, rh, 'hotline-desk-1 answered probes, then got a BYE and answered it', proxy);
  assertByeWithReason(t, rh, LIVENESS_REASON, 'the callee');

  // 200 rings again, both devices; anna-soft answers.
  const ringing = await plainPhone(ctx, desk, 'phone-ring-cancelled.xml');
  const answers = await plainPhone(ctx, soft, 'phone-answer.xml');
  const again = await sipp(callerOptions({ ...fromTrunk(), remote: proxy.remote, to: '200', pauseMs: 300, timeoutSec: 10 }));
  assertOk(t, again, 'a new call to 200 rings and is answered', proxy);
  assertOk(t, await doneWithin(answers, 5000), 'anna-soft answered');
  assertOk(t, await doneWithin(ringing, 5000), 'anna-desk rang and was cancelled');
});

const phonesThatAnswer = [
  { name: 'both answer 200, the caller (a trunk) hangs up', callee: '200', caller: '200', hangsUp: 'caller', device: false },
  { name: 'the callee answers 405, the caller (a device) 501; the callee hangs up', callee: '405', caller: '501', hangsUp: 'callee', device: true },
] as const;

for (const v of phonesThatAnswer) {
  t.test(`(c) phones that answer the probes: ${v.name}; the call stays up, then the BYE goes through`, async (t) => {
    const ctx = await setUp(t);
    const { proxy } = ctx;
    const desk = await registered(t, ctx, 'anna-desk');
    const probes = 3;
    const answering = await kaPhone(ctx, desk, { probe: v.callee, hangup: v.hangsUp === 'callee' ? probes : 0 });
    const from = v.device ? { local: HOSTS.phone4, localPort: port(), from: 'hotline-desk-1', password: PW['hotline-desk-1'] } : fromTrunk();
    const { proc: caller, callId } = kaCaller(ctx, { ...from, to: '200', probe: v.caller, hangup: v.hangsUp === 'caller' ? probes : 0, tag: `c${v.callee}` });
    const up = await activeCallsBecome(proxy, '200', 1, 6000);
    t.type(up, 'number', `the call is up (${up})`);
    const upAt = Date.now();

    const ended = await callEnded(proxy, callId, (probes + 2) * KEEPALIVE_S * 1000);
    const lasted = Date.now() - upAt;
    t.equal(ended?.why, 'bye', `the call ended by the ${v.hangsUp}'s BYE after ${lasted} ms`, { details: JSON.stringify(ended) ?? proxy.output(6000) });
    t.ok(lasted >= (probes - 0.5) * KEEPALIVE_S * 1000, `it stayed up for ${probes} probe intervals (${lasted} ms)`);
    const [re, rr] = [await doneWithin(answering, 5000), await doneWithin(caller, 5000)];
    assertOk(t, re, `the callee answered ${v.callee} to every probe`, proxy);
    assertOk(t, rr, `the caller answered ${v.caller} to every probe`, proxy);
    t.ok(receivedRequests(re.messages, 'OPTIONS').length >= probes, `the callee answered ${receivedRequests(re.messages, 'OPTIONS').length} probes`);
    t.ok(receivedRequests(rr.messages, 'OPTIONS').length >= probes, `the caller answered ${receivedRequests(rr.messages, 'OPTIONS').length} probes`);
    const [hangsUp, other] = v.hangsUp === 'caller' ? [rr, re] : [re, rr];
    t.match(hangsUp.messages, /message sent[^\n]*\r?\n\s*BYE [\s\S]*message received[^\n]*\r?\n\s*SIP\/2\.0 200 /, `the ${v.hangsUp}'s BYE was answered 200 through the proxy`);
    const byes = receivedRequests(other.messages, 'BYE');
    t.equal(byes.length, 1, 'the other end got the BYE');
    t.notMatch(byes[0]?.text ?? '', /^Reason:/m, 'the phone\'s own BYE, not one of the proxy');
    if (v.device) t.match(rr.messages, /Proxy-Authorization: Digest username="hotline-desk-1"/, 'the device caller authenticated (its INVITE has CSeq 2)');
    assertProbes(t, re, rr, callId);
    t.equal(await activeCalls(proxy, '200'), 0, '200 is free after the BYE');
  });
}

t.test('(d) session timer: Session-Expires 4 s without a refresh ends the call, BYE to both ends', async (t) => {
  const ctx = await setUp(t);
  const { proxy } = ctx;
  const desk = await registered(t, ctx, 'anna-desk');
  const answering = await kaPhone(ctx, desk, { session: 'Session-Expires: 4;refresher=uac' });
  const { proc: caller, callId } = kaCaller(ctx, { ...fromTrunk(), to: '200', tag: 'd' });
  const up = await activeCallsBecome(proxy, '200', 1, 6000);
  t.type(up, 'number', `the call is up (${up})`);
  const upAt = Date.now();
  const ended = await callEnded(proxy, callId, 4000 + SLACK_MS);
  const lasted = Date.now() - upAt;
  t.equal(ended?.why, 'session-timer', `\`call ended\` says why: session-timer (${lasted} ms after the call was seen up)`, {
    details: JSON.stringify(ended) ?? proxy.output(6000),
  });
  t.ok(lasted >= 3000, `not before the session interval (${lasted} ms)`);
  t.equal(await activeCalls(proxy, '200'), 0, '200 is free');
  const [re, rr] = [await doneWithin(answering, 5000), await doneWithin(caller, 5000)];
  assertOk(t, re, 'the callee got a BYE and answered it', proxy);
  assertOk(t, rr, 'the caller got a BYE and answered it', proxy);
  assertByeWithReason(t, re, SESSION_REASON, 'the callee');
  assertByeWithReason(t, rr, SESSION_REASON, 'the caller');
});

t.test('(d) session timer: re-INVITEs every 2 s keep the call up past Session-Expires 4 s', async (t) => {
  const ctx = await setUp(t);
  const { proxy } = ctx;
  const desk = await registered(t, ctx, 'anna-desk');
  const answering = await kaPhone(ctx, desk, { session: 'Session-Expires: 4;refresher=uac' });
  const callId = `ka-d2-${process.pid}-${Date.now()}@${HOSTS.trunkIn}`;
  const caller = sippStart({
    ...callerOptions({ scenario: 'ka-caller-refresh.xml', ...fromTrunk(), remote: proxy.remote, to: '200', timeoutSec: 30 }),
    extra: ['-cid_str', callId],
  });
  ctx.procs.push(caller);
  const up = await activeCallsBecome(proxy, '200', 1, 6000);
  t.type(up, 'number', `the call is up (${up})`);
  const upAt = Date.now();
  // ka-caller-refresh.xml hangs up after its third probe, about 6 s after the answer.
  const ended = await callEnded(proxy, callId, 6000 + SLACK_MS);
  const lasted = Date.now() - upAt;
  t.equal(ended?.why, 'bye', `ended by the caller's BYE, not the session timer (${lasted} ms)`, { details: JSON.stringify(ended) ?? proxy.output(6000) });
  t.ok(lasted > 4500, `the call stayed up past Session-Expires (${lasted} ms)`);
  const [re, rr] = [await doneWithin(answering, 5000), await doneWithin(caller, 5000)];
  assertOk(t, rr, 'the caller: 3 probes, 2 re-INVITEs answered 200, its BYE answered 200 (no BYE from the proxy)', proxy);
  assertOk(t, re, 'the callee answered the re-INVITEs and got the BYE', proxy);
  t.equal(receivedRequests(re.messages, 'INVITE').length, 3, 'the callee got the INVITE and 2 re-INVITEs');
  t.notMatch(re.messages, /^Reason:/m, 'no BYE of the proxy reached the callee');
  assertProbes(t, re, rr, callId);
});

t.test('(e) kill -9 of the proxy during a call, the callee vanishes meanwhile: after the restart 200 is free within the bound', async (t) => {
  const ctx = await setUp(t);
  const storageDir = ctx.proxy.storageDir;
  const desk = await registered(t, ctx, 'anna-desk');
  const soft = await registered(t, ctx, 'anna-soft');
  const answering = await kaPhone(ctx, desk);
  const losing = await plainPhone(ctx, soft, 'phone-ring-cancelled.xml');
  const { proc: caller, callId } = kaCaller(ctx, { ...fromTrunk(), to: '200', tag: 'e' });
  const up = await activeCallsBecome(ctx.proxy, '200', 1, 6000);
  t.type(up, 'number', `the call is up (${up})`);
  assertOk(t, await doneWithin(losing, 5000), 'anna-soft rang and lost to anna-desk');

  // The journal is appended on the next turn of the event loop (operator-restart.test.ts).
  await sleep(100);
  await ctx.proxy.kill9();
  await vanish(answering);
  ctx.proxy = await startProxy({ ...baseOptions, storageDir });
  const restartedAt = Date.now();
  const restored = await activeCalls(ctx.proxy, '200');
  t.equal(restored, 1, 'the call was restored from the storage (200 busy right after the restart)', { details: ctx.proxy.output(4000) });

  const freed = await activeCallsBecome(ctx.proxy, '200', 0, BOUND_MS + SLACK_MS);
  const ms = Date.now() - restartedAt;
  t.type(freed, 'number', `200 is free ${ms} ms after the restart`, { details: typeof freed === 'string' ? ctx.proxy.output(6000) : undefined });
  t.ok(ms <= BOUND_MS + SLACK_MS, `within the bound (${ms} ms)`);
  const ended = await callEnded(ctx.proxy, callId);
  t.equal(ended?.why, 'keepalive', '`call ended` says why: keepalive', { details: JSON.stringify(ended) });

  const rc = await doneWithin(caller, 5000);
  assertOk(t, rc, 'the caller, probed by the restarted proxy, got its BYE', ctx.proxy);
  assertByeWithReason(t, rc, LIVENESS_REASON, 'the caller');

  const answers = await plainPhone(ctx, soft, 'phone-answer.xml');
  const again = await sipp(callerOptions({ ...fromTrunk(), remote: ctx.proxy.remote, to: '200', pauseMs: 300, timeoutSec: 10 }));
  assertOk(t, again, 'a new call to 200 rings and is answered', ctx.proxy);
  assertOk(t, await doneWithin(answers, 5000), 'anna-soft answered');
});

t.test('(f) the operator ends a call and removes registrations (DELETE routes)', async (t) => {
  const ctx = await setUp(t);
  const { proxy } = ctx;
  const probe = await proxy.api('/api/calls/no-such-call', { method: 'DELETE' });
  t.equal(probe.status, 404, 'DELETE of an unknown call: 404');
  t.notMatch(await probe.text(), /No such route/, 'the route exists');

  const desk = await registered(t, ctx, 'anna-desk');
  const answering = await kaPhone(ctx, desk);
  const { proc: caller, callId } = kaCaller(ctx, { ...fromTrunk(), to: '200', tag: 'f' });
  const up = await activeCallsBecome(proxy, '200', 1, 6000);
  t.type(up, 'number', `the call is up (${up})`);
  const [row] = await callsOf(proxy, '200');
  const del = await proxy.api(`/api/calls/${encodeURIComponent(row!.id)}`, { method: 'DELETE' });
  t.equal(del.status, 204, 'DELETE /api/calls/{id}: 204');
  t.equal(await activeCalls(proxy, '200'), 0, '200 is free at once');
  const ended = await callEnded(proxy, callId);
  t.equal(ended?.why, 'api', '`call ended` says why: api');
  const [re, rr] = [await doneWithin(answering, 5000), await doneWithin(caller, 5000)];
  assertOk(t, re, 'the callee got a BYE and answered it', proxy);
  assertOk(t, rr, 'the caller got a BYE and answered it', proxy);
  assertByeWithReason(t, re, OPERATOR_REASON, 'the callee');
  assertByeWithReason(t, rr, OPERATOR_REASON, 'the caller');
  t.equal((await proxy.api(`/api/calls/${encodeURIComponent(row!.id)}`, { method: 'DELETE' })).status, 404, 'DELETE again: 404');

  const rm = await proxy.api('/api/devices/anna-desk/registrations', { method: 'DELETE' });
  t.equal(rm.status, 204, 'DELETE /api/devices/anna-desk/registrations: 204');
  const ext = await proxy.apiJson<{ devices: Array<{ username: string; registrations: unknown[] }> }>('/api/extensions/200');
  t.same(ext.devices.find((d) => d.username === 'anna-desk')?.registrations, [], 'anna-desk has no registration left');
});
