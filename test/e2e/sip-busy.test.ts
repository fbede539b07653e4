/**
 * Busy on Busy end to end with SIPp (interface.md, the table and "A call is up"): extension
 * 200 (busyOnBusy true, three devices) answers 486 at once while one of its calls is up,
 * without ringing any device, whether a device of 200 is callee or caller (to another
 * extension or out through the trunk); it rings again after the BYE; a DND/decline reply
 * from one device (486, 603, 480) neither stops the others ringing nor makes 200 busy.
 */
import t, { type Test } from 'tap';
import {
  HOSTS,
  allDone,
  assertExit,
  assertNotRung,
  call,
  callIdOf,
  callStart,
  callsOf,
  contactsOf,
  countReceived,
  idlePhone,
  outcomeOf,
  phone,
  portBlock,
  portCounter,
  register,
  sippServer,
  startProxy,
  waitFor,
  type SippProcess,
} from './harness.js';

const P = portBlock(2);
const port = portCounter(P.base + 50);
const TRUNK_OUT_PORT = P.base + 31;

const DEVICES = {
  'anna-desk': { password: 'secret-3', local: HOSTS.phone1, localPort: P.base + 1 },
  'anna-soft': { password: 'secret-4', local: HOSTS.phone2, localPort: P.base + 2 },
  'anna-mobile': { password: 'secret-5', local: HOSTS.phone3, localPort: P.base + 3 },
  'hotline-desk-1': { password: 'secret-1', local: HOSTS.phone4, localPort: P.base + 4 },
} as const;
type Username = keyof typeof DEVICES;
const ANNA: Username[] = ['anna-desk', 'anna-soft', 'anna-mobile'];

const proxy = await startProxy({
  sipPort: P.sip,
  httpPort: P.http,
  extensions: [
    {
      number: '200',
      name: 'Anna Schmidt',
      busyOnBusy: true,
      devices: ANNA.map((username) => ({ username, password: DEVICES[username].password })),
    },
    {
      number: '100',
      name: 'Service Hotline',
      busyOnBusy: false,
      devices: [{ username: 'hotline-desk-1', password: 'secret-1' }],
    },
  ],
  trunks: [
    // The first trunk takes calls to non-local numbers; its port pins where they go.
    { name: 'carrier-out', address: `${HOSTS.trunkOut}:${TRUNK_OUT_PORT}` },
    // Inbound callers: trusted by address, any port, so several can call at once.
    { name: 'carrier-in', address: HOSTS.trunkIn },
  ],
});
t.teardown(() => proxy.stop());

const dev = (username: Username) => ({ username, ...DEVICES[username], remote: proxy.remote });
const fromTrunk = () => ({ local: HOSTS.trunkIn, localPort: port(), remote: proxy.remote });

/** Every device of 200 listens and must not ring; resolves once all are bound. */
function idleAnna(timeoutSec: number, who: Username[] = ANNA): Promise<SippProcess[]> {
  return Promise.all(who.map((u) => idlePhone({ ...dev(u), timeoutSec })));
}

/** A call to 200 from the trunk must get 486 at once; the idle devices must not ring. */
async function expectBusy(t: Test, idle: SippProcess[], why: string): Promise<void> {
  const started = Date.now();
  const r = await call({ ...fromTrunk(), to: '200', expect: 486, timeoutSec: 10 });
  const elapsed = Date.now() - started;
  assertExit(t, r, 0, `${why}: a new call to 200 gets 486`);
  t.ok(elapsed < 2500, `${why}: the 486 comes at once (${elapsed} ms including SIPp start-up)`);
  const out = await outcomeOf(proxy, callIdOf(r.messages));
  t.equal(out.outcome, 'busy-on-busy', `${why}: logged as busy-on-busy`);
  for (const r of await allDone(idle)) assertNotRung(t, r, `${why}: no device of 200 rings`);
}

t.test('registration of the devices', async (t) => {
  for (const u of Object.keys(DEVICES) as Username[]) {
    assertExit(t, await register(dev(u)), 0, `${u}: REGISTER, 401, REGISTER with credentials, 200`);
    const ext = u.startsWith('anna') ? '200' : '100';
    t.equal((await contactsOf(proxy, ext, u)).length, 1, `${u} has one contact`);
  }
});

t.test('busy on busy: 486 at once while a call is up, no device rings; after the BYE it rings again', async (t) => {
  const desk = await phone({ ...dev('anna-desk'), scenario: 'phone-answer.xml', register: false, ringMs: 300, timeoutSec: 30 });
  const soft = await phone({ ...dev('anna-soft'), scenario: 'phone-ring-cancelled.xml', register: false });
  const mobile = await phone({ ...dev('anna-mobile'), scenario: 'phone-ring-cancelled.xml', register: false });
  const caller1 = callStart({ ...fromTrunk(), to: '200', pauseMs: 8000, timeoutSec: 30 });
  for (const r of await allDone([soft, mobile])) assertExit(t, r, 0, 'rang and lost to anna-desk');
  await waitFor('the call to 200 is up', async () => (await callsOf(proxy, '200')).length === 1, 5000);

  // anna-desk is in the call (its sipp still runs it); the two others listen and must stay silent.
  await expectBusy(t, await idleAnna(3, ['anna-soft', 'anna-mobile']), 'anna-desk in a call');

  const r1 = await caller1.done;
  assertExit(t, r1, 0, 'the first call: 200, ACK, BYE');
  const rd = await desk.done;
  assertExit(t, rd, 0, 'anna-desk answered and got the BYE');
  t.equal(countReceived(rd.messages, 'INVITE'), 1, 'anna-desk got no second INVITE while in the call');
  await waitFor('no call left on 200', async () => (await callsOf(proxy, '200')).length === 0, 5000);

  // After the BYE, 200 rings again: this time anna-soft answers.
  const phones = [
    await phone({ ...dev('anna-desk'), scenario: 'phone-ring-cancelled.xml', register: false }),
    await phone({ ...dev('anna-soft'), scenario: 'phone-answer.xml', register: false, ringMs: 300 }),
    await phone({ ...dev('anna-mobile'), scenario: 'phone-ring-cancelled.xml', register: false }),
  ];
  const r3 = await call({ ...fromTrunk(), to: '200', pauseMs: 300 });
  assertExit(t, r3, 0, 'after the BYE a new call rings and is answered');
  for (const r of await allDone(phones)) assertExit(t, r, 0, 'every device rang again');
  await waitFor('no call left on 200', async () => (await callsOf(proxy, '200')).length === 0, 5000);
});

t.test('a call placed by a device of 200 makes 200 busy', async (t) => {
  await t.test('device calls another extension (authenticated with 407)', async (t) => {
    const hotline = await phone({ ...dev('hotline-desk-1'), scenario: 'phone-answer.xml', register: false, ringMs: 300, timeoutSec: 30 });
    // anna-desk calls from its own host, on another port than its registered contact.
    const outgoing = callStart({
      local: DEVICES['anna-desk'].local,
      localPort: port(),
      remote: proxy.remote,
      to: '100',
      from: 'anna-desk',
      password: 'secret-3',
      pauseMs: 6000,
      timeoutSec: 30,
    });
    await waitFor('the outgoing call of anna-desk is up', async () => (await callsOf(proxy, '200')).length === 1, 6000);
    const calls = await callsOf(proxy, '200');
    t.match(calls, [{ extension: '200', device: 'anna-desk', direction: 'outbound' }], '/api/calls shows the call of 200 as outbound');

    await expectBusy(t, await idleAnna(3), 'anna-desk calling 100');

    const ro = await outgoing.done;
    assertExit(t, ro, 0, 'anna-desk: 407, INVITE with credentials, 200, ACK, BYE');
    t.match(ro.messages, /Proxy-Authorization: Digest username="anna-desk"/, 'the device authenticated');
    assertExit(t, await hotline.done, 0, 'hotline-desk-1 answered and got the BYE');
    await waitFor('no call left on 200', async () => (await callsOf(proxy, '200')).length === 0, 5000);
  });

  await t.test('device calls a non-local number, out through the first trunk', async (t) => {
    const carrier = await sippServer({
      scenario: 'phone-answer.xml',
      local: HOSTS.trunkOut,
      localPort: TRUNK_OUT_PORT,
      pauseMs: 300,
      timeoutSec: 30,
      label: 'carrier trunk (phone-answer.xml)',
    });
    const outgoing = callStart({
      local: DEVICES['anna-soft'].local,
      localPort: port(),
      remote: proxy.remote,
      to: '004930555123',
      from: 'anna-soft',
      password: 'secret-4',
      pauseMs: 6000,
      timeoutSec: 30,
    });
    await waitFor('the outgoing call of anna-soft is up', async () => (await callsOf(proxy, '200')).length === 1, 6000);

    await expectBusy(t, await idleAnna(3), 'anna-soft calling out');

    assertExit(t, await outgoing.done, 0, 'anna-soft: call through the trunk answered and ended');
    const rc = await carrier.done;
    assertExit(t, rc, 0, 'the carrier got the INVITE, answered, got ACK and BYE');
    t.match(rc.messages, /INVITE sip:004930555123@127\.0\.0\.31/, 'the trunk received the dialled number');
    await waitFor('no call left on 200', async () => (await callsOf(proxy, '200')).length === 0, 5000);
  });
});

for (const code of [486, 603]) {
  t.test(`DND: a device declining with ${code} does not stop the others; only the real call makes 200 busy`, async (t) => {
    const phones = [
      await phone({ ...dev('anna-desk'), scenario: 'phone-decline.xml', register: false, ringMs: 0, globals: { code: String(code) } }),
      await phone({ ...dev('anna-soft'), scenario: 'phone-answer.xml', register: false, ringMs: 800, timeoutSec: 30 }),
      await phone({ ...dev('anna-mobile'), scenario: 'phone-ring-cancelled.xml', register: false }),
    ];
    const caller = callStart({ ...fromTrunk(), to: '200', pauseMs: 5000, timeoutSec: 30 });
    const [desk, , mobile] = phones;
    assertExit(t, await desk!.done, 0, `anna-desk declined with ${code} and got the ACK`);
    assertExit(t, await mobile!.done, 0, 'anna-mobile kept ringing until anna-soft answered');
    await waitFor('the call is up', async () => (await callsOf(proxy, '200')).length === 1, 5000);
    const up = await callsOf(proxy, '200');
    t.match(up, [{ device: 'anna-soft' }], 'the call of 200 is the one anna-soft answered');

    // Busy now, because of anna-soft's call (anna-desk and anna-mobile listen, must not ring).
    await expectBusy(t, await idleAnna(3, ['anna-desk', 'anna-mobile']), `anna-soft in a call, anna-desk on DND (${code})`);

    const rc = await caller.done;
    assertExit(t, rc, 0, 'the caller got 200 from anna-soft, then BYE');
    assertExit(t, await phones[1]!.done, 0, 'anna-soft answered and got the BYE');
    const out = await outcomeOf(proxy, callIdOf(rc.messages));
    t.equal(out.outcome, 'answered');
    await waitFor('no call left on 200', async () => (await callsOf(proxy, '200')).length === 0, 5000);
  });
}

t.test('every device declines: the caller gets the 6xx (RFC 3261 16.7), and 200 is not busy afterwards', async (t) => {
  const decline = (u: Username, code: number) =>
    phone({ ...dev(u), scenario: 'phone-decline.xml', register: false, ringMs: 0, globals: { code: String(code) } });
  const phones = [await decline('anna-desk', 486), await decline('anna-soft', 480), await decline('anna-mobile', 603)];
  const r = await call({ ...fromTrunk(), to: '200', expect: 603, timeoutSec: 10 });
  assertExit(t, r, 0, 'a 6xx is preferred over the 4xx answers');
  for (const p of await allDone(phones)) assertExit(t, p, 0, 'declined and got the ACK');
  const out = await outcomeOf(proxy, callIdOf(r.messages));
  t.equal(out.outcome, 'declined', 'logged as declined');

  // Declines never make the extension busy: the next call rings every device at once.
  const again = [
    await phone({ ...dev('anna-desk'), scenario: 'phone-answer.xml', register: false, ringMs: 200 }),
    await phone({ ...dev('anna-soft'), scenario: 'phone-ring-cancelled.xml', register: false }),
    await phone({ ...dev('anna-mobile'), scenario: 'phone-ring-cancelled.xml', register: false }),
  ];
  const r2 = await call({ ...fromTrunk(), to: '200', pauseMs: 300 });
  assertExit(t, r2, 0, 'the next call rings and is answered');
  for (const p of await allDone(again)) assertExit(t, p, 0, 'rang');
});
