/**
 * Registrar and proxy basics end to end with SIPp (interface.md, "SIP behaviour"): 404 and
 * 480, the ring timeout (480, all branches cancelled), the caller's CANCEL (487, all branches
 * cancelled), 407 for an unauthenticated device, a caller over TCP, and REGISTER: wrong
 * password, Expires: 0, Contact: *, 423 Interval Too Brief.
 */
import t from 'tap';
import {
  HOSTS,
  allDone,
  assertExit,
  call,
  callIdOf,
  contactsOf,
  countReceived,
  outcomeOf,
  phone,
  portBlock,
  portCounter,
  register,
  startProxy,
} from './harness.js';

const P = portBlock(3);
const port = portCounter(P.base + 50);
const RING_TIMEOUT_SEC = 2;

const DEVICES = {
  'hotline-desk-1': { password: 'secret-1', local: HOSTS.phone1, localPort: P.base + 1 },
  'hotline-desk-2': { password: 'secret-2', local: HOSTS.phone2, localPort: P.base + 2 },
  'anna-desk': { password: 'secret-3', local: HOSTS.phone1, localPort: P.base + 3 },
  'anna-soft': { password: 'secret-4', local: HOSTS.phone2, localPort: P.base + 4 },
  'anna-mobile': { password: 'secret-5', local: HOSTS.phone3, localPort: P.base + 5 },
  'carl-desk': { password: 'secret-6', local: HOSTS.phone4, localPort: P.base + 6 },
  'dora-desk': { password: 'secret-7', local: HOSTS.phone4, localPort: P.base + 7 },
} as const;
type Username = keyof typeof DEVICES;
const devicesOf = (...names: Username[]) => names.map((username) => ({ username, password: DEVICES[username].password }));

const proxy = await startProxy({
  sipPort: P.sip,
  httpPort: P.http,
  registrar: { minExpires: 60, maxExpires: 3600, defaultExpires: 600 },
  calls: { ringTimeout: RING_TIMEOUT_SEC },
  trunks: [{ name: 'carrier', address: HOSTS.trunkIn }],
  extensions: [
    { number: '100', name: 'Service Hotline', busyOnBusy: false, devices: devicesOf('hotline-desk-1', 'hotline-desk-2') },
    { number: '200', name: 'Anna Schmidt', busyOnBusy: true, devices: devicesOf('anna-desk', 'anna-soft', 'anna-mobile') },
    // carl-desk never registers: 300 is a known number without registrations.
    { number: '300', name: 'Carl', busyOnBusy: true, devices: devicesOf('carl-desk') },
    // dora-desk is only used for REGISTER tests and never called.
    { number: '400', name: 'Dora', busyOnBusy: true, devices: devicesOf('dora-desk') },
  ],
});
t.teardown(() => proxy.stop());

const dev = (username: Username) => ({ username, ...DEVICES[username], remote: proxy.remote });
const fromTrunk = () => ({ local: HOSTS.trunkIn, localPort: port(), remote: proxy.remote });

t.test('an unknown number gets 404', async (t) => {
  const r = await call({ ...fromTrunk(), to: '999', expect: 404, timeoutSec: 10 });
  assertExit(t, r, 0, 'INVITE sip:999@pbx.example.test: 404');
});

t.test('REGISTER with a wrong password: challenged again, no binding', async (t) => {
  const r = await register({ ...dev('carl-desk'), password: 'not-the-password', scenario: 'register-wrong-password.xml' });
  assertExit(t, r, 0, 'REGISTER, 401, REGISTER with wrong credentials, 401');
  t.equal(countReceived(r.messages, 'SIP/2.0 200'), 0, 'never a 200');
  t.same(await contactsOf(proxy, '300', 'carl-desk'), [], 'no binding for carl-desk');
});

t.test('a known number without registrations gets 480', async (t) => {
  const r = await call({ ...fromTrunk(), to: '300', expect: 480, timeoutSec: 10 });
  assertExit(t, r, 0, 'INVITE to 300 (carl-desk not registered): 480');
  const out = await outcomeOf(proxy, callIdOf(r.messages));
  t.equal(out.outcome, 'unavailable', 'logged as unavailable');
});

t.test('an unauthenticated device gets 407', async (t) => {
  // Not a trunk address, no credentials: the proxy must challenge, not route.
  const r = await call({ local: HOSTS.phone3, localPort: port(), remote: proxy.remote, to: '100', from: 'anna-mobile', expect: 407, timeoutSec: 10 });
  assertExit(t, r, 0, 'INVITE without credentials from a device: 407');
  t.match(r.messages, /Proxy-Authenticate: Digest .*algorithm=MD5/, 'the challenge offers MD5');
});

t.test('ring timeout: every branch is cancelled, the caller gets 480', async (t) => {
  const phones = [
    await phone({ ...dev('hotline-desk-1'), scenario: 'phone-ring-cancelled-any.xml', timeoutSec: 15 }),
    await phone({ ...dev('hotline-desk-2'), scenario: 'phone-ring-cancelled-any.xml', timeoutSec: 15 }),
  ];
  const started = Date.now();
  const r = await call({ ...fromTrunk(), to: '100', expect: 480, timeoutSec: 15 });
  const elapsed = Date.now() - started;
  assertExit(t, r, 0, 'nobody answers: 480');
  t.ok(
    elapsed >= RING_TIMEOUT_SEC * 1000 - 200 && elapsed < RING_TIMEOUT_SEC * 1000 + 3000,
    `the 480 comes after the ${RING_TIMEOUT_SEC} s ring timeout (${elapsed} ms)`,
  );
  for (const p of await allDone(phones)) {
    assertExit(t, p, 0, 'rang, then CANCEL, 487, ACK');
    t.equal(countReceived(p.messages, 'CANCEL'), 1, 'one CANCEL');
  }
  const out = await outcomeOf(proxy, callIdOf(r.messages));
  t.equal(out.outcome, 'no-answer', 'logged as no-answer');
});

t.test("the caller's CANCEL: 487, every branch cancelled, even after a device declined", async (t) => {
  const phones = [
    // anna-desk is on DND and declines at once; the caller must still get 487, not 486.
    await phone({ ...dev('anna-desk'), scenario: 'phone-decline.xml', ringMs: 0, globals: { code: '486' } }),
    await phone({ ...dev('anna-soft'), scenario: 'phone-ring-cancelled-any.xml' }),
    await phone({ ...dev('anna-mobile'), scenario: 'phone-ring-cancelled-any.xml' }),
  ];
  // caller-cancel.xml sends CANCEL 1 s after the last 180, long after anna-desk's 486.
  const r = await call({ ...fromTrunk(), scenario: 'caller-cancel.xml', to: '200', timeoutSec: 15 });
  assertExit(t, r, 0, 'INVITE, 180, CANCEL: 200 for the CANCEL, 487 for the INVITE');
  const [desk, soft, mobile] = await allDone(phones);
  assertExit(t, desk!, 0, 'anna-desk declined with 486');
  assertExit(t, soft!, 0, 'anna-soft was cancelled');
  assertExit(t, mobile!, 0, 'anna-mobile was cancelled');
  const out = await outcomeOf(proxy, callIdOf(r.messages));
  t.equal(out.outcome, 'cancelled', 'logged as cancelled');
});

t.test("a device's final response that arrives after the caller's CANCEL is still ACKed", async (t) => {
  // hotline-desk-1 never sends a provisional and declines 2.5 s after the INVITE, i.e.
  // after the caller's CANCEL (1 s after hotline-desk-2's 180). The proxy may not CANCEL a
  // branch without a provisional (RFC 3261 9.1) but must ACK its final (17.1.1.3).
  const phones = [
    await phone({ ...dev('hotline-desk-1'), scenario: 'phone-decline.xml', register: false, ringMs: 2500, globals: { code: '486' } }),
    await phone({ ...dev('hotline-desk-2'), scenario: 'phone-ring-cancelled-any.xml', register: false }),
  ];
  const r = await call({ ...fromTrunk(), scenario: 'caller-cancel.xml', to: '100', timeoutSec: 15 });
  assertExit(t, r, 0, 'the caller gets 487');
  const [late, cancelled] = await allDone(phones);
  assertExit(t, late!, 0, 'hotline-desk-1: its late 486 was ACKed');
  assertExit(t, cancelled!, 0, 'hotline-desk-2 was cancelled');
});

t.test('a caller over TCP reaches phones registered over UDP', async (t) => {
  const phones = [
    await phone({ ...dev('hotline-desk-1'), scenario: 'phone-answer.xml', register: false, ringMs: 300 }),
    await phone({ ...dev('hotline-desk-2'), scenario: 'phone-ring-cancelled.xml', register: false }),
  ];
  const r = await call({ ...fromTrunk(), to: '100', pauseMs: 300, transport: 't1', timeoutSec: 15 });
  assertExit(t, r, 0, 'over TCP: 200, ACK, BYE');
  for (const p of await allDone(phones)) assertExit(t, p, 0, 'UDP phone');
});

t.test('registrar: several contacts, Expires: 0 removes one, Contact: * removes all', async (t) => {
  const first = { ...dev('dora-desk') };
  const second = { ...dev('dora-desk'), localPort: port() };
  const contact = (p: number) => `sip:dora-desk@${HOSTS.phone4}:${p};transport=UDP`;

  assertExit(t, await register(first), 0, 'first contact registered');
  const r2 = await register(second);
  assertExit(t, r2, 0, 'second contact registered');
  t.same((await contactsOf(proxy, '400', 'dora-desk')).sort(), [contact(first.localPort), contact(second.localPort)].sort(), 'both contacts bound');
  const ok = r2.messages.slice(r2.messages.lastIndexOf('SIP/2.0 200'));
  t.match(ok, `${HOSTS.phone4}:${first.localPort}`, 'the 200 lists the first contact');
  t.match(ok, `${HOSTS.phone4}:${second.localPort}`, 'the 200 lists the second contact');

  assertExit(t, await register({ ...first, expires: 0 }), 0, 'Expires: 0 for the first contact');
  t.same(await contactsOf(proxy, '400', 'dora-desk'), [contact(second.localPort)], 'only the second contact is left');

  assertExit(t, await register(first), 0, 'first contact registered again');
  assertExit(t, await register({ ...first, scenario: 'unregister.xml' }), 0, 'Contact: *, Expires: 0');
  t.same(await contactsOf(proxy, '400', 'dora-desk'), [], 'no contact left');
});

t.test('registrar: an Expires below minExpires gets 423 with Min-Expires', async (t) => {
  const r = await register({ ...dev('dora-desk'), scenario: 'register-brief.xml', expires: 10 });
  assertExit(t, r, 0, 'REGISTER with Expires: 10 gets 423');
  t.match(r.messages, /^\s*Min-Expires:\s*60\s*$/m, 'Min-Expires: 60 (registrar.minExpires)');
  t.same(await contactsOf(proxy, '400', 'dora-desk'), [], 'no binding made');
});
