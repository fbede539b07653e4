/**
 * Issue 14, routing across instances, end to end: two sipbob processes, A on 127.0.2.1 and B on
 * 127.0.2.2, sharing one throwaway redis-server, SIPp as phones and as the trunk.
 * - A call arriving at B for a phone registered through A is relayed by A (its owner): the
 *   phone sees both instances in the Record-Route set, answers; the keepalive probes of B
 *   (which tracks the call) reach the phone through A; the caller's BYE goes B -> A -> phone.
 * - The phone at A hangs up: its BYE goes A -> B -> caller.
 * - A device registered through B and one through A of the same extension ring together, for
 *   a call at either instance; the one that loses is CANCELled through its owner.
 * Port blocks 21 (A, SIPp) and 22 (B), Redis on 26391.
 */
import t from 'tap';
import { startRedis } from '../support/redis-server.js';
import {
  assertExit,
  callerOptions,
  countReceived,
  describe,
  phone,
  portBlock,
  portCounter,
  register,
  sippStart,
  startProxy,
  waitFor,
  type ApiExtension,
  type Proxy,
  type ProxyOptions,
  type SippProcess,
  type SippResult,
} from './harness.js';

const PA = portBlock(21);
const PB = portBlock(22);
const A = '127.0.2.1';
const B = '127.0.2.2';
const H = { annaDesk: '127.0.2.11', annaSoft: '127.0.2.12', bobDesk: '127.0.2.13', trunk: '127.0.2.32' } as const;
const REDIS_PORT = 26391;
const KEEPALIVE_S = 1;
const port = portCounter(PA.base + 20);

const PW = { 'anna-desk': 'rt-pw-1', 'anna-soft': 'rt-pw-2', 'bob-desk': 'rt-pw-3' } as const;
type User = keyof typeof PW;
/** Where each device is and which instance it registers through. */
const DEV: Record<User, { local: string; localPort: number; via: 'A' | 'B' }> = {
  'anna-desk': { local: H.annaDesk, localPort: PA.base + 1, via: 'A' },
  'anna-soft': { local: H.annaSoft, localPort: PA.base + 2, via: 'B' },
  'bob-desk': { local: H.bobDesk, localPort: PA.base + 3, via: 'A' },
};

// ---------------------------------------------------------------------------------------
// The cluster

// A throwaway redis-server (test/support/redis-server.ts): nothing saved, killed at exit.
const redis = await startRedis({ port: REDIS_PORT });
const options = (name: string, host: string, p: { sip: number; http: number }): ProxyOptions => ({
  host,
  sipPort: p.sip,
  httpPort: p.http,
  listen: [`udp://${host}:${p.sip}`],
  extensions: [
    { number: '200', name: 'Anna Schmidt', busyOnBusy: false, devices: (['anna-desk', 'anna-soft'] as const).map((username) => ({ username, password: PW[username] })) },
    { number: '300', name: 'Bob Meyer', busyOnBusy: false, devices: [{ username: 'bob-desk', password: PW['bob-desk'] }] },
  ],
  trunks: [{ name: 'carrier-in', address: H.trunk }],
  calls: { keepalive: KEEPALIVE_S, keepaliveFailures: 3 },
  storage: { redis: redis.url },
  cluster: { instance: name, address: `${host}:${p.sip}` },
});
const procs: SippProcess[] = [];
/** Each subtest stops its SIPps at its end: a phone left over by a failure must not hold the next one's port. */
const stopProcs = async () => {
  await Promise.all(procs.splice(0).map((p) => p.stop()));
};
const proxies: Proxy[] = [];
t.teardown(async () => {
  await stopProcs();
  await Promise.all(proxies.map((p) => p.stop()));
  await redis.close();
});
const a = await startProxy(options('sip-a', A, PA));
proxies.push(a);
const b = await startProxy(options('sip-b', B, PB));
proxies.push(b);
const at = { A: a, B: b };
t.afterEach(stopProcs);
const logs = () => `--- A\n${a.output(4000)}\n--- B\n${b.output(4000)}`;

const rrA = `<sip:${A}:${PA.sip};transport=udp;lr>`;
const rrB = `<sip:${B}:${PB.sip};transport=udp;lr>`;
const device = (u: User) => ({ username: u, password: PW[u], local: DEV[u].local, localPort: DEV[u].localPort, remote: at[DEV[u].via].remote });

/** The messages of one kind a SIPp received, each as its text up to the blank line. */
function received(r: SippResult | string, start: RegExp): string[] {
  const text = (typeof r === 'string' ? r : r.messages).replace(/\r/g, '');
  const parts = text.split(/message received \[\d+\] bytes :\s*\n/).slice(1);
  return parts.map((p) => p.trimStart().split('\n\n')[0]!).filter((m) => start.test(m));
}
const vias = (msg: string) => msg.split('\n').filter((l) => /^(Via|v):/i.test(l));
const lines = (msg: string, name: string) => msg.split('\n').filter((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));

function trunkCaller(scenario: string, to: string, via: Proxy, extra: Partial<Parameters<typeof callerOptions>[0]> = {}, globals?: Record<string, string>) {
  const callId = `rt-${scenario.replace('.xml', '')}-${process.pid}-${Date.now()}@${H.trunk}`;
  const opts = callerOptions({ scenario, local: H.trunk, localPort: port(), remote: via.remote, to, from: 'carrier', timeoutSec: 20, ...extra });
  const proc = sippStart({ ...opts, ...(globals ? { globals } : {}), extra: ['-cid_str', callId] });
  procs.push(proc);
  return { proc, callId };
}

async function onPhone(u: User, scenario: string, o: { globals?: Record<string, string>; vars?: Record<string, string>; ringMs?: number } = {}): Promise<SippProcess> {
  const p = await phone({ ...device(u), scenario, register: false, ringMs: o.ringMs ?? 300, timeoutSec: 25, vars: o.vars, globals: o.globals });
  procs.push(p);
  return p;
}

t.test('bindings made through either instance are known to both', async (t) => {
  for (const u of Object.keys(DEV) as User[]) {
    const r = await register(device(u));
    assertExit(t, r, 0, `${u} registered through ${DEV[u].via}`);
  }
  const both = await waitFor(
    'every binding on both instances',
    async () => {
      for (const p of [a, b]) {
        const [e200, e300] = await Promise.all([p.apiJson<ApiExtension>('/api/extensions/200'), p.apiJson<ApiExtension>('/api/extensions/300')]);
        const n = [...e200.devices, ...e300.devices].filter((d) => d.registrations.length === 1).length;
        if (n !== 3) return false;
      }
      return true;
    },
    5000,
  ).catch((e: Error) => e.message);
  t.equal(both, true, 'A and B list the three bindings', { details: both === true ? undefined : logs() });
});

t.test('a call at B rings the phone at A through A; probes and the caller\'s BYE go B -> A -> phone', async (t) => {
  const bob = await onPhone('bob-desk', 'ka-phone.xml', { vars: { session: 'X-Session-Timer: none' }, globals: { probe: '200', hangup: '0' } });
  // The caller answers the probes too and hangs up after its second one.
  const { proc: caller, callId } = trunkCaller('ka-caller.xml', '300', b, {}, { probe: '200', hangup: '2' });
  const [rc, rp] = await Promise.all([caller.done, bob.done]);
  assertExit(t, rc, 0, 'the trunk caller at B: answered, probed, hung up');
  assertExit(t, rp, 0, 'bob at A: rung, answered, probed, BYE received');

  const invite = received(rp, /^INVITE /)[0] ?? '';
  t.match(invite, new RegExp(`^INVITE sip:bob-desk@${H.bobDesk.replace(/\./g, '\\.')}:${DEV['bob-desk'].localPort}`), 'the Request-URI is bob\'s contact');
  t.strictSame(lines(invite, 'record-route').map((l) => l.replace(/^Record-Route:\s*/i, '')), [rrA, rrB], 'A (the owner) then B (which forked) record-routed');
  t.strictSame(lines(invite, 'route'), [], 'no Route left for the phone');
  const iv = vias(invite);
  t.match(iv[0], new RegExp(`SIP/2\\.0/UDP ${A}:${PA.sip};`), 'sent by A');
  t.match(iv[1], new RegExp(`SIP/2\\.0/UDP ${B}:${PB.sip};`), 'forked by B');

  const probes = received(rp, /^OPTIONS /);
  t.ok(probes.length >= 1, `bob was probed (${probes.length} OPTIONS)`, { details: describe(rp) });
  for (const o of probes) {
    const v = vias(o);
    t.ok(v.length === 2 && v[0]!.includes(`${A}:${PA.sip}`) && v[1]!.includes(`${B}:${PB.sip}`), 'a probe of B, relayed by A', { vias: v });
  }
  const bye = received(rp, /^BYE /)[0] ?? '';
  const bv = vias(bye);
  t.ok(bv.length === 3 && bv[0]!.includes(`${A}:${PA.sip}`) && bv[1]!.includes(`${B}:${PB.sip}`) && bv[2]!.includes(H.trunk), 'the caller\'s BYE: trunk -> B -> A -> bob', { vias: bv });

  const outcome = await b.waitForLog((l) => l.msg === 'call outcome' && l.callId === callId, 3000).catch(() => undefined);
  t.equal(outcome?.outcome, 'answered', 'B, which forked, logs the outcome');
  const ended = await b.waitForLog((l) => l.msg === 'call ended' && l.callId === callId, 3000).catch(() => undefined);
  t.equal(ended?.why, 'bye', 'B tracked the call and ended it on the BYE', { details: ended ? JSON.stringify(ended) : logs() });
  t.notOk(a.jsonLogs().some((l) => l.msg === 'call outcome' && l.callId === callId), 'A, which only relayed, logs no outcome');
});

t.test('the phone at A hangs up: its BYE goes A -> B -> caller', async (t) => {
  // Both ends answer the keepalive probes (every KEEPALIVE_S): bob hangs up after his first
  // one, so the probe never races a scenario that does not expect it, however slow SIPp runs.
  const bob = await onPhone('bob-desk', 'ka-phone.xml', { vars: { session: 'X-Session-Timer: none' }, globals: { probe: '200', hangup: '1' } });
  const { proc: caller, callId } = trunkCaller('ka-caller.xml', '300', b, {}, { probe: '200', hangup: '0' });
  const [rc, rp] = await Promise.all([caller.done, bob.done]);
  assertExit(t, rc, 0, 'the trunk caller at B got the BYE');
  assertExit(t, rp, 0, 'bob at A hung up');
  const bye = received(rc, /^BYE /)[0] ?? '';
  const bv = vias(bye);
  t.ok(bv.length === 3 && bv[0]!.includes(`${B}:${PB.sip}`) && bv[1]!.includes(`${A}:${PA.sip}`) && bv[2]!.includes(H.bobDesk), 'bob -> A -> B -> trunk', { vias: bv, details: describe(rc) });
  const ended = await b.waitForLog((l) => l.msg === 'call ended' && l.callId === callId, 3000).catch(() => undefined);
  t.ok(ended, 'B ended the call it tracks');
});

// anna-desk (through A) answers, anna-soft (through B) is CANCELled: at B the remote branch
// wins, at A the remote branch is the one CANCELled (through B, with B's Route).
for (const via of ['B', 'A'] as const) {
  const answers: User = 'anna-desk';
  const loses: User = 'anna-soft';
  t.test(`one extension, a device through each instance: a call at ${via} rings both, ${answers} (through ${DEV[answers].via}) answers`, async (t) => {
    const winner = await onPhone(answers, 'phone-answer.xml', { ringMs: 800 });
    const loser = await onPhone(loses, 'phone-ring-cancelled-any.xml');
    const { proc: caller } = trunkCaller('caller.xml', '200', at[via], { pauseMs: 500 });
    const [rc, rw, rl] = await Promise.all([caller.done, winner.done, loser.done]);
    assertExit(t, rc, 0, `the trunk caller at ${via}`);
    assertExit(t, rw, 0, `${answers} answered`);
    assertExit(t, rl, 0, `${loses} rang and was CANCELled`);
    t.equal(countReceived(rl.messages, 'INVITE'), 1, `${loses} rang`);
    const remote = via === 'B' ? rw : rl;
    const inv = received(remote, /^INVITE /)[0] ?? '';
    const owner = via === 'B' ? rrA : rrB;
    const forker = via === 'B' ? rrB : rrA;
    t.strictSame(lines(inv, 'record-route').map((l) => l.replace(/^Record-Route:\s*/i, '')), [owner, forker], 'the remote device: through its owner');
    const cancel = received(rl, /^CANCEL /)[0] ?? '';
    const cv = vias(cancel);
    // A CANCEL is hop by hop (§16.10): the owner makes its own for its branch.
    t.ok(cv.length === 1 && cv[0]!.includes(`${B}:${PB.sip}`), `the CANCEL for the device at B comes from B${via === 'A' ? ', which relayed A\'s CANCEL' : ''}`, { vias: cv });
  });
}
