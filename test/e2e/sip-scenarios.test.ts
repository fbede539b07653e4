/**
 * Self-test of the SIPp scenarios, without sipbob: each UAC scenario runs against the UAS
 * scenario it will meet through the proxy (or a stand-in from test/scenarios/selftest/), on
 * loopback. This keeps the scenarios honest: when an e2e test fails, the proxy is at fault,
 * not a broken scenario. It also proves the scenarios fail when they get the wrong thing.
 */
import t from 'tap';
import {
  HOSTS,
  assertExit,
  assertNotRung,
  sippServer,
  call,
  countReceived,
  describe,
  portBlock,
  register,
  sipp,
  type SippOptions,
} from './harness.js';

const P = portBlock(0);
let next = P.base;
const port = () => next++;

/** A UAS scenario, listening before the peer starts. */
const uas = (opts: SippOptions) => sippServer({ timeoutSec: 15, ...opts });

t.test('register.xml against a digest registrar', async (t) => {
  const regPort = port();
  const server = await uas({
    scenario: 'selftest/registrar.xml',
    local: HOSTS.caller1,
    localPort: regPort,
    vars: { user: 'anna-desk', pass: 'secret-3' },
  });
  const r = await register({
    username: 'anna-desk',
    password: 'secret-3',
    local: HOSTS.phone1,
    localPort: port(),
    remote: `${HOSTS.caller1}:${regPort}`,
  });
  assertExit(t, r, 0, 'follows its scenario');
  t.match(r.messages, /Authorization: Digest username="anna-desk"/, 'answers the challenge');
  t.match(r.messages, /Expires: 600/);
  const s = await server.done;
  assertExit(t, s, 0, 'follows its scenario');
});

t.test('register-wrong-password.xml: credentials rejected, 401 again', async (t) => {
  const regPort = port();
  const server = await uas({
    scenario: 'selftest/registrar.xml',
    local: HOSTS.caller1,
    localPort: regPort,
    vars: { user: 'anna-desk', pass: 'secret-3' },
  });
  const r = await register({
    scenario: 'register-wrong-password.xml',
    username: 'anna-desk',
    password: 'wrong',
    local: HOSTS.phone1,
    localPort: port(),
    remote: `${HOSTS.caller1}:${regPort}`,
  });
  assertExit(t, r, 0, 'follows its scenario');
  const s = await server.done;
  assertExit(t, s, 0, 'follows its scenario');
});

t.test('register.xml fails when the registrar rejects the password', async (t) => {
  const regPort = port();
  const server = await uas({
    scenario: 'selftest/registrar.xml',
    local: HOSTS.caller1,
    localPort: regPort,
    vars: { user: 'anna-desk', pass: 'secret-3' },
  });
  const r = await register({
    username: 'anna-desk',
    password: 'wrong',
    local: HOSTS.phone1,
    localPort: port(),
    remote: `${HOSTS.caller1}:${regPort}`,
    timeoutSec: 4,
  });
  t.not(r.code, 0, 'a second 401 is a failure for register.xml');
  await server.done;
});

t.test('register-brief.xml: 423 with Min-Expires', async (t) => {
  const regPort = port();
  const server = await uas({ scenario: 'selftest/registrar-brief.xml', local: HOSTS.caller1, localPort: regPort });
  const r = await register({
    scenario: 'register-brief.xml',
    username: 'anna-desk',
    password: 'secret-3',
    expires: 10,
    local: HOSTS.phone1,
    localPort: port(),
    remote: `${HOSTS.caller1}:${regPort}`,
  });
  assertExit(t, r, 0, 'follows its scenario');
  t.match(r.messages, /Min-Expires: 60/);
  await server.done;
});

t.test('unregister.xml sends Contact: * with Expires: 0', async (t) => {
  const regPort = port();
  const server = await uas({
    scenario: 'selftest/registrar.xml',
    local: HOSTS.caller1,
    localPort: regPort,
    vars: { user: 'anna-desk', pass: 'secret-3' },
  });
  const r = await register({
    scenario: 'unregister.xml',
    username: 'anna-desk',
    password: 'secret-3',
    local: HOSTS.phone1,
    localPort: port(),
    remote: `${HOSTS.caller1}:${regPort}`,
  });
  assertExit(t, r, 0, 'follows its scenario');
  t.match(r.messages, /Contact: \*\s*\r?\n\s*Expires: 0/);
  await server.done;
});

t.test('caller.xml as a device: 407, ACK on the same branch, authenticated INVITE, Route set', async (t) => {
  const p = port();
  const server = await uas({
    scenario: 'selftest/challenger.xml',
    local: HOSTS.phone1,
    localPort: p,
    vars: { user: 'anna-desk', pass: 'secret-3' },
  });
  const r = await call({
    local: HOSTS.caller1,
    localPort: port(),
    remote: `${HOSTS.phone1}:${p}`,
    to: '100',
    from: 'anna-desk',
    password: 'secret-3',
    pauseMs: 200,
  });
  assertExit(t, r, 0, 'follows its scenario');
  t.match(r.messages, /Proxy-Authorization: Digest username="anna-desk"/);
  const s = await server.done;
  assertExit(t, s, 0, 'follows its scenario');
});

t.test('caller.xml as a trunk against phone-answer.xml', async (t) => {
  const p = port();
  const ph = await uas({ scenario: 'phone-answer.xml', local: HOSTS.phone1, localPort: p, pauseMs: 300 });
  const r = await call({ local: HOSTS.trunkIn, localPort: port(), remote: `${HOSTS.phone1}:${p}`, to: '100', pauseMs: 300 });
  assertExit(t, r, 0, 'follows its scenario');
  const s = await ph.done;
  assertExit(t, s, 0, 'follows its scenario');
  t.equal(countReceived(s.messages, 'INVITE'), 1, 'one INVITE received by the phone');
  t.equal(countReceived(s.messages, 'BYE'), 1);
});

t.test('caller-wait-bye.xml against phone-answer-hangup.xml', async (t) => {
  const p = port();
  const ph = await uas({ scenario: 'phone-answer-hangup.xml', local: HOSTS.phone1, localPort: p, pauseMs: 200 });
  const r = await call({
    scenario: 'caller-wait-bye.xml',
    local: HOSTS.trunkIn,
    localPort: port(),
    remote: `${HOSTS.phone1}:${p}`,
    to: '100',
  });
  assertExit(t, r, 0, 'follows its scenario');
  const s = await ph.done;
  assertExit(t, s, 0, 'follows its scenario');
});

t.test('caller-expect.xml: the expected final code passes, another fails', async (t) => {
  for (const [declines, expect, ok] of [
    [486, 486, true],
    [603, 603, true],
    [486, 480, false],
  ] as const) {
    const p = port();
    const ph = await uas({
      scenario: 'phone-decline.xml',
      local: HOSTS.phone1,
      localPort: p,
      pauseMs: 0,
      globals: { code: String(declines) },
    });
    const r = await call({
      local: HOSTS.trunkIn,
      localPort: port(),
      remote: `${HOSTS.phone1}:${p}`,
      to: '200',
      expect,
      timeoutSec: 15,
    });
    if (ok) {
      assertExit(t, r, 0, `phone ${declines}, expected ${expect}: passes`);
    } else {
      assertExit(t, r, 1, `phone ${declines}, expected ${expect}: fails`);
      t.match(r.log, `WRONG final response ${declines}, expected ${expect}`);
    }
    const s = await ph.done;
    assertExit(t, s, 0, `the phone got its ACK`);
  }
});

t.test('caller-expect.xml: an unexpected 200 is hung up and fails', async (t) => {
  const p = port();
  const ph = await uas({ scenario: 'phone-answer.xml', local: HOSTS.phone1, localPort: p, pauseMs: 0 });
  const r = await call({ local: HOSTS.trunkIn, localPort: port(), remote: `${HOSTS.phone1}:${p}`, to: '200', expect: 486, timeoutSec: 15 });
  assertExit(t, r, 1, 'follows its scenario');
  t.match(r.log, 'WRONG final response 200, expected 486');
  const s = await ph.done;
  assertExit(t, s, 0, `the phone got ACK and BYE`);
});

t.test('caller-cancel.xml: one 180, two forked 180s, and the 487 before the 200 of the CANCEL', async (t) => {
  for (const scenario of ['phone-ring-cancelled-any.xml', 'selftest/cancel-487-first.xml', 'selftest/forked-ringing.xml']) {
    const p = port();
    const ph = await uas({ scenario, local: HOSTS.phone1, localPort: p });
    const r = await call({
      scenario: 'caller-cancel.xml',
      local: HOSTS.trunkIn,
      localPort: port(),
      remote: `${HOSTS.phone1}:${p}`,
      to: '100',
      pauseMs: 300,
    });
    assertExit(t, r, 0, scenario);
    const s = await ph.done;
    assertExit(t, s, 0, 'follows its scenario');
  }
});

t.test('phone-ring-cancelled.xml and phone-slow-ring-cancelled.xml require the Reason of a call completed elsewhere', async (t) => {
  const cases = [
    { scenario: 'phone-ring-cancelled.xml', reason: 'SIP;cause=200;text="Call completed elsewhere"', ok: true },
    { scenario: 'phone-ring-cancelled.xml', reason: 'SIP;cause=487;text="Request Terminated"', ok: false },
    { scenario: 'phone-slow-ring-cancelled.xml', reason: 'SIP;cause=200;text="Call completed elsewhere"', ok: true },
  ];
  for (const c of cases) {
    const p = port();
    const ph = await uas({ scenario: c.scenario, local: HOSTS.phone1, localPort: p, timeoutSec: 6 });
    const r = await sipp({
      scenario: 'selftest/cancel-elsewhere.xml',
      local: HOSTS.caller1,
      localPort: port(),
      remote: `${HOSTS.phone1}:${p}`,
      vars: { reason: c.reason },
      timeoutSec: 6,
    });
    const s = await ph.done;
    if (c.ok) {
      assertExit(t, s, 0, c.scenario);
      assertExit(t, r, 0, `487 carries the whole Via list and the INVITE's CSeq`);
    } else {
      t.not(s.code, 0, `Reason ${c.reason} must fail the phone`, { sipp: describe(s) });
    }
  }
});

t.test('phone-must-not-ring.xml: idle exits 97/99, an INVITE fails it', async (t) => {
  const idle = await uas({ scenario: 'phone-must-not-ring.xml', local: HOSTS.phone2, localPort: port(), timeoutSec: 1, timeoutIsError: false });
  assertNotRung(t, await idle.done, 'idle phone');

  const p = port();
  const rung = await uas({ scenario: 'phone-must-not-ring.xml', local: HOSTS.phone2, localPort: p, timeoutSec: 5, timeoutIsError: false });
  const r = await call({ local: HOSTS.trunkIn, localPort: port(), remote: `${HOSTS.phone2}:${p}`, to: '200', expect: 480 });
  assertExit(t, r, 0, 'follows its scenario');
  const s = await rung.done;
  assertExit(t, s, 1, `a rung idle phone fails`);
  t.match(s.log, 'UNEXPECTED INVITE');
});
