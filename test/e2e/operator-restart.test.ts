/**
 * Issue 3, "How it is checked", the restart test, against the real proxy (dist/src/cli.js):
 * devices register and a call to the Busy-on-Busy extension 200 is held up; the proxy is
 * killed with SIGKILL and started again on the same storage dir and ports. Without any
 * device re-registering:
 * - the API still lists the registrations and the active call (activeCalls 1);
 * - a new call to 200 gets 486 at once and no device rings;
 * - a setting changed with PATCH before the kill (extension 100: busyOnBusy false in the
 *   YAML, true by PATCH) is still in effect: 100, whose device is the caller of the held
 *   call, also answers 486;
 * - the held call's BYE passes the restarted proxy along its Record-Route and ends the call;
 * - afterwards calls to 200 and 100 ring their devices again and are answered.
 * A second test: bindings and calls that expired while the proxy was down are gone after
 * the restart (issue 3, "State that survives").
 *
 * The held call is op-caller-hold.xml: it keeps the call up until the test sends it an INFO
 * with the call's Call-ID (straight to the caller's socket, not via the proxy), then hangs up.
 *
 * Own addresses 127.0.0.141-149 and ports (SIP 17161, HTTP 19181, SIPp 27100+) so that no
 * other test file running in parallel can collide with this one.
 */
import t from 'tap';
import { call, describe, idlePhone, phone, portCounter, register, startProxy, waitFor, type Proxy } from './harness.js';
import { activeCallsOn, deviceOf, doneWithin, holdCall, invitedCalls, operatorProxyOptions, stopAtEnd } from './operator-kit.js';

const SIP_PORT = 17161;
const HTTP_PORT = 19181;
const H = {
  annaDesk: '127.0.0.141',
  annaSoft: '127.0.0.142',
  hotline1: '127.0.0.143',
  hotline2: '127.0.0.144',
  trunk: '127.0.0.145',
  trigger: '127.0.0.149',
} as const;
const port = portCounter(27100);

const PW = { 'anna-desk': 'op-restart-pw-3', 'anna-soft': 'op-restart-pw-4', 'hotline-desk-1': 'op-restart-pw-1', 'hotline-desk-2': 'op-restart-pw-2' };

// 100 is busyOnBusy false in the YAML: the first test turns it on by PATCH before the kill.
const proxyOptions = operatorProxyOptions({ pw: PW, trunk: H.trunk, sipPort: SIP_PORT, httpPort: HTTP_PORT });

interface Ext {
  number: string;
  busyOnBusy: boolean;
  activeCalls: number;
  devices: Array<{ username: string; registrations: Array<{ contact: string; expiresAt: string; source: string }> }>;
}
interface CallRow {
  id: string;
  extension: string;
  direction: string;
  device: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Registrations of one device in an extension view. */
function regsOf(ext: Ext, username: string): string[] {
  return (ext.devices.find((d) => d.username === username)?.registrations ?? []).map((r) => r.contact);
}

t.test('state survives kill -9: bindings, the held call, a PATCHed setting; BYE after restart', async (t) => {
  let proxy: Proxy = await startProxy(proxyOptions);
  const storageDir = proxy.storageDir;
  const procs = stopAtEnd(t, () => proxy);
  const ext = (n: string) => proxy.apiJson<Ext>(`/api/extensions/${n}`);

  const P = { annaDesk: port(), annaSoft: port(), hotline1: port(), hotline2: port() };
  const remote = proxy.remote;
  const dev = deviceOf(PW, remote);

  // --- Before the kill: four devices register; 100 becomes Busy on Busy through the API.
  const regs = await Promise.all([
    register(dev('anna-desk', H.annaDesk, P.annaDesk)),
    register(dev('anna-soft', H.annaSoft, P.annaSoft)),
    register(dev('hotline-desk-1', H.hotline1, P.hotline1)),
    register(dev('hotline-desk-2', H.hotline2, P.hotline2)),
  ]);
  for (const r of regs) t.equal(r.code, 0, `registered: ${r.label}`, { details: r.code !== 0 ? describe(r) : undefined });

  const patch = await proxy.api('/api/extensions/100', { method: 'PATCH', body: JSON.stringify({ busyOnBusy: true }) });
  t.equal(patch.status, 200, 'PATCH 100 busyOnBusy=true');
  t.equal(((await patch.json()) as Ext).busyOnBusy, true);

  // --- The held call: hotline-desk-1 (a device of 100, so 100 is in the call as caller)
  // calls 200; anna-desk answers, anna-soft is cancelled ("Call completed elsewhere").
  const answering = await phone({ ...dev('anna-desk', H.annaDesk, P.annaDesk), scenario: 'phone-answer.xml', register: false, ringMs: 300, timeoutSec: 40 });
  procs.push(answering);
  const losing = await phone({ ...dev('anna-soft', H.annaSoft, P.annaSoft), scenario: 'phone-ring-cancelled.xml', register: false, timeoutSec: 15 });
  procs.push(losing);
  // A Call-ID of our own (-cid_str): the trigger INFO must carry it (see holdCall).
  const held = holdCall({
    callIdPrefix: 'op-held',
    trigger: H.trigger,
    local: H.hotline1,
    localPort: P.hotline1,
    remote,
    to: '200',
    from: 'hotline-desk-1',
    password: PW['hotline-desk-1'],
    timeoutSec: 40,
    label: 'held call hotline-desk-1 -> 200',
  });
  procs.push(held.proc);
  const up = await waitFor(
    'activeCalls 1 on 200 and 100 before the kill',
    async () => ((await ext('200')).activeCalls === 1 && (await ext('100')).activeCalls === 1 ? true : undefined),
    10000,
    100,
  ).catch((e: Error) => e.message);
  t.equal(up, true, 'the call hotline-desk-1 -> 200 is up: activeCalls 1 on 200 (callee) and 100 (caller)', {
    details: up !== true ? proxy.output(6000) : undefined,
  });
  const lost = await losing.done;
  t.equal(lost.code, 0, 'anna-soft rang and was cancelled by the answer elsewhere', { details: lost.code !== 0 ? describe(lost) : undefined });

  // Writes are batched (the journal is appended on the next turn of the event loop); a short
  // grace is fair, a longer one would hide lost writes. (It also passes with no wait at all.)
  await sleep(100);
  await proxy.kill9();
  t.same(await proxy.exited, { code: null, signal: 'SIGKILL' }, 'killed with SIGKILL');
  const firstOutput = proxy.output(3000);

  // --- Restart on the same storage and ports. No device registers again.
  proxy = await startProxy({ ...proxyOptions, storageDir });
  const restored = await proxy.waitForLog((l) => l['msg'] === 'state restored', 3000).catch(() => undefined);
  t.ok(restored, 'logs "state restored"');
  t.comment(`state restored: ${JSON.stringify(restored)}`);

  const e200 = await ext('200');
  const e100 = await ext('100');
  t.equal(e200.activeCalls, 1, '200 still has its active call after kill -9', { details: e200.activeCalls !== 1 ? `${JSON.stringify(e200)}\n--- first run\n${firstOutput}` : undefined });
  t.equal(e100.activeCalls, 1, '100 (caller side of the held call) still in the call');
  t.equal(e200.busyOnBusy, true);
  t.equal(e100.busyOnBusy, true, 'the PATCHed setting (YAML says false) survived kill -9');
  t.match(regsOf(e200, 'anna-desk'), [new RegExp(`${H.annaDesk.replace(/\./g, '\\.')}:${P.annaDesk}`)], 'anna-desk binding survived');
  t.match(regsOf(e200, 'anna-soft'), [new RegExp(`${H.annaSoft.replace(/\./g, '\\.')}:${P.annaSoft}`)], 'anna-soft binding survived');
  t.equal(regsOf(e100, 'hotline-desk-1').length, 1, 'hotline-desk-1 binding survived');
  t.equal(regsOf(e100, 'hotline-desk-2').length, 1, 'hotline-desk-2 binding survived');
  const calls = await proxy.apiJson<CallRow[]>('/api/calls');
  t.match(
    calls.map((c) => ({ extension: c.extension, direction: c.direction, device: c.device })).sort((a, b) => a.extension.localeCompare(b.extension)),
    [
      { extension: '100', direction: 'outbound', device: 'hotline-desk-1' },
      { extension: '200', direction: 'inbound', device: 'anna-desk' },
    ],
    '/api/calls lists the held call from both sides',
  );

  // --- Busy: new calls to 200 and 100 get 486 at once; no device rings. anna-desk and
  // hotline-desk-1 are busy in the held call (their SIPp must see no new INVITE); the
  // others wait with phone-must-not-ring.xml. The traces are checked once SIPp has exited.
  const idleSoft = await idlePhone({ ...dev('anna-soft', H.annaSoft, P.annaSoft), timeoutSec: 30 });
  procs.push(idleSoft);
  const idleHotline2 = await idlePhone({ ...dev('hotline-desk-2', H.hotline2, P.hotline2), timeoutSec: 30 });
  procs.push(idleHotline2);

  for (const number of ['200', '100']) {
    const started = Date.now();
    const r = await call({ local: H.trunk, localPort: port(), remote, to: number, from: 'carrier', expect: 486, timeoutSec: 12 });
    const ms = Date.now() - started;
    t.equal(r.code, 0, `call to ${number} after the restart: 486 (${ms} ms)`, { details: r.code !== 0 ? `${describe(r)}\n--- proxy\n${proxy.output(6000)}` : undefined });
    t.ok(ms < 3000, `486 for ${number} comes at once (${ms} ms), not after a ring timeout`);
    t.notMatch(r.messages, /SIP\/2\.0 180 /, `no ringing on the call to ${number}`);
  }
  // --- The held call's BYE through the restarted proxy.
  await held.hangup();
  const [heldResult, answerResult] = await Promise.all([doneWithin(held.proc, 8000), doneWithin(answering, 8000)]);
  t.equal(heldResult.code, 0, 'BYE from the caller passed the restarted proxy and got 200', {
    details: heldResult.code !== 0 ? `${describe(heldResult)}\n--- proxy\n${proxy.output(6000)}` : undefined,
  });
  t.equal(answerResult.code, 0, 'anna-desk received the BYE and its call ended', { details: answerResult.code !== 0 ? describe(answerResult) : undefined });
  t.match(heldResult.messages, new RegExp(`INFO sip:held@[^\\r\\n]*\\r?\\n[\\s\\S]*BYE sip:`), 'the BYE was sent after the trigger, i.e. after the restart');
  t.equal(invitedCalls(answerResult.messages).length, 1, 'anna-desk (in the held call) got no second INVITE while busy');
  t.same(invitedCalls(heldResult.messages), [], 'hotline-desk-1 (in the held call) got no INVITE while busy');
  t.match(heldResult.messages, /BYE sip:[^\r\n]*127\.0\.0\.141[^\r\n]*\r?\n[\s\S]*Route: <sip:127\.0\.0\.1:17161/, 'BYE went to the Contact along the Record-Route of the proxy');
  const idle = await waitFor(
    'activeCalls 0 on 200 and 100 after the BYE',
    async () => {
      const [a, b] = await Promise.all([ext('200'), ext('100')]);
      return a.activeCalls === 0 && b.activeCalls === 0 ? true : undefined;
    },
    3000,
  ).catch((e: Error) => e.message);
  t.equal(idle, true, 'the BYE ended the restored call');
  t.same(await proxy.apiJson('/api/calls'), [], '/api/calls is empty');

  const s1 = await idleSoft.stop();
  const s2 = await idleHotline2.stop();
  t.same(invitedCalls(s1.messages), [], 'anna-soft never rang while busy');
  t.same(invitedCalls(s2.messages), [], 'hotline-desk-2 never rang while busy');

  // --- Both extensions ring again, still without any re-registration.
  const softAnswers = await phone({ ...dev('anna-soft', H.annaSoft, P.annaSoft), scenario: 'phone-answer.xml', register: false, ringMs: 300, timeoutSec: 15 });
  const deskLoses = await phone({ ...dev('anna-desk', H.annaDesk, P.annaDesk), scenario: 'phone-ring-cancelled.xml', register: false, timeoutSec: 15 });
  const hot2Answers = await phone({ ...dev('hotline-desk-2', H.hotline2, P.hotline2), scenario: 'phone-answer.xml', register: false, ringMs: 300, timeoutSec: 15 });
  const hot1Loses = await phone({ ...dev('hotline-desk-1', H.hotline1, P.hotline1), scenario: 'phone-ring-cancelled.xml', register: false, timeoutSec: 15 });
  procs.push(softAnswers, deskLoses, hot2Answers, hot1Loses);
  const [to200, to100] = await Promise.all([
    call({ local: H.trunk, localPort: port(), remote, to: '200', from: 'carrier', pauseMs: 300, timeoutSec: 12 }),
    call({ local: H.trunk, localPort: port(), remote, to: '100', from: 'carrier', pauseMs: 300, timeoutSec: 12 }),
  ]);
  t.equal(to200.code, 0, 'after the BYE a call to 200 is answered', { details: to200.code !== 0 ? `${describe(to200)}\n--- proxy\n${proxy.output(6000)}` : undefined });
  t.equal(to100.code, 0, 'after the BYE a call to 100 is answered', { details: to100.code !== 0 ? describe(to100) : undefined });
  for (const p of [softAnswers, deskLoses, hot2Answers, hot1Loses]) {
    const r = await p.done;
    t.equal(r.code, 0, `${r.label}: rang as expected`, { details: r.code !== 0 ? describe(r) : undefined });
  }
});

t.test('bindings and calls that expired while the proxy was down are gone after the restart', async (t) => {
  // Short lifetimes: anna-soft registers for 3 s, calls end after 5 s without a BYE.
  const opts = { ...proxyOptions, registrar: { minExpires: 1, maxExpires: 3600, defaultExpires: 600 }, calls: { ringTimeout: 8, maxCallDuration: 5 } };
  let proxy: Proxy = await startProxy(opts);
  const storageDir = proxy.storageDir;
  const procs = stopAtEnd(t, () => proxy);
  const ext = (n: string) => proxy.apiJson<Ext>(`/api/extensions/${n}`);
  const remote = proxy.remote;
  const P = { annaDesk: port(), annaSoft: port() };
  const dev = deviceOf(PW, remote);

  const regs = await Promise.all([
    register(dev('anna-desk', H.annaDesk, P.annaDesk)),
    register({ ...dev('anna-soft', H.annaSoft, P.annaSoft), expires: 3 }),
  ]);
  for (const r of regs) t.equal(r.code, 0, `registered: ${r.label}`, { details: r.code !== 0 ? describe(r) : undefined });
  const registeredAt = Date.now();

  const answering = await phone({ ...dev('anna-desk', H.annaDesk, P.annaDesk), scenario: 'phone-answer.xml', register: false, ringMs: 200, timeoutSec: 30 });
  procs.push(answering);
  const losing = await phone({ ...dev('anna-soft', H.annaSoft, P.annaSoft), scenario: 'phone-ring-cancelled.xml', register: false, timeoutSec: 10 });
  procs.push(losing);
  const held = holdCall({ callIdPrefix: 'op-restart-expiring', trigger: H.trigger, local: H.trunk, localPort: port(), remote, to: '200', from: 'carrier', timeoutSec: 30, label: 'held call trunk -> 200' });
  procs.push(held.proc);
  const up = await activeCallsOn(ext, '200', 1, 10000, 50);
  const answeredAt = Date.now();
  t.equal(up, true, 'the call is up', { details: up !== true ? proxy.output(6000) : undefined });
  await losing.done;

  await sleep(100);
  await proxy.kill9();
  // Down until both the short binding (3 s) and the call (maxCallDuration 5 s) have expired.
  const wait = Math.max(registeredAt + 3000, answeredAt + 5000) + 700 - Date.now();
  await sleep(Math.max(0, wait));
  proxy = await startProxy({ ...opts, storageDir });

  const e200 = await ext('200');
  t.equal(e200.activeCalls, 0, 'the call that passed maxCallDuration while the proxy was down is gone', { details: JSON.stringify(e200) });
  t.same(regsOf(e200, 'anna-soft'), [], "anna-soft's binding that expired while the proxy was down is gone");
  t.equal(regsOf(e200, 'anna-desk').length, 1, "anna-desk's 600 s binding is still there");
  t.same(await proxy.apiJson('/api/calls'), [], '/api/calls is empty');

  // End the old call at the phone (the proxy passes the BYE along the route, or not; it no
  // longer tracks it), then 200 rings anna-desk only.
  await held.hangup();
  await Promise.all([doneWithin(held.proc, 8000), doneWithin(answering, 8000)]);
  const desk = await phone({ ...dev('anna-desk', H.annaDesk, P.annaDesk), scenario: 'phone-answer.xml', register: false, ringMs: 200, timeoutSec: 15 });
  procs.push(desk);
  const soft = await idlePhone({ ...dev('anna-soft', H.annaSoft, P.annaSoft), timeoutSec: 15 });
  procs.push(soft);
  const r = await call({ local: H.trunk, localPort: port(), remote, to: '200', from: 'carrier', pauseMs: 200, timeoutSec: 12 });
  t.equal(r.code, 0, 'a new call to 200 is not busy and is answered by anna-desk', { details: r.code !== 0 ? `${describe(r)}\n--- proxy\n${proxy.output(6000)}` : undefined });
  const d = await doneWithin(desk, 5000);
  t.equal(d.code, 0, 'anna-desk answered', { details: d.code !== 0 ? describe(d) : undefined });
  const s = await soft.stop();
  t.same(invitedCalls(s.messages), [], 'anna-soft (binding expired) did not ring');
});
