/**
 * Parallel forking to a shared extension (a hotline, busyOnBusy false), end to end with SIPp:
 * every registered device rings, the first 200 wins, the others get CANCEL with
 * `Reason: SIP;cause=200;text="Call completed elsewhere"`, and a second call while the first
 * is up still rings. interface.md, "SIP behaviour" and the Busy on Busy table.
 */
import t from 'tap';
import {
  HOSTS,
  allDone,
  assertExit,
  call,
  callIdOf,
  callStart,
  callsOf,
  contactsOf,
  countReceived,
  outcomeOf,
  phone,
  portBlock,
  portCounter,
  startProxy,
  waitFor,
  type LogLine,
} from './harness.js';

const P = portBlock(1);
const port = portCounter(P.base + 50);

const DEVICES = {
  'hotline-desk-1': { password: 'secret-1', local: HOSTS.phone1, localPort: P.base + 1 },
  'hotline-desk-2': { password: 'secret-2', local: HOSTS.phone2, localPort: P.base + 2 },
  'hotline-desk-3': { password: 'secret-3', local: HOSTS.phone3, localPort: P.base + 3 },
} as const;
type Username = keyof typeof DEVICES;

const proxy = await startProxy({
  sipPort: P.sip,
  httpPort: P.http,
  extensions: [
    {
      number: '100',
      name: 'Service Hotline',
      busyOnBusy: false,
      devices: Object.entries(DEVICES).map(([username, d]) => ({ username, password: d.password })),
    },
  ],
  // Inbound calls come from a trusted trunk (by source address, any port), so no 407.
  trunks: [{ name: 'carrier', address: HOSTS.trunkIn }],
});
t.teardown(() => proxy.stop());

const dev = (username: Username) => ({ username, ...DEVICES[username], remote: proxy.remote });
const REASON = /^\s*Reason: SIP;cause=200;text="Call completed elsewhere"\s*$/m;

/** Branch statuses of a "call outcome" log line, by device. */
function branches(line: LogLine): Record<string, number> {
  const out: Record<string, number> = {};
  for (const b of (line.branches as Array<{ device: string; status: number }> | undefined) ?? []) out[b.device] = b.status;
  return out;
}

t.test('three devices ring; the first 200 wins; the others get CANCEL with the Reason; a second call still rings', async (t) => {
  // desk-1 answers after 600 ms, and answers the second call too (-m 2: a hotline agent
  // taking a waiting call); desk-2 and desk-3 never answer, so they must be CANCELled.
  const desk1 = await phone({ ...dev('hotline-desk-1'), scenario: 'phone-answer.xml', ringMs: 600, calls: 2, timeoutSec: 40 });
  const desk2 = await phone({ ...dev('hotline-desk-2'), scenario: 'phone-ring-cancelled.xml', timeoutSec: 15 });
  const desk3 = await phone({ ...dev('hotline-desk-3'), scenario: 'phone-ring-cancelled.xml', timeoutSec: 15 });
  for (const u of Object.keys(DEVICES) as Username[]) {
    t.same(await contactsOf(proxy, '100', u), [`sip:${u}@${DEVICES[u].local}:${DEVICES[u].localPort};transport=UDP`], `${u} registered one contact`);
  }

  // Call A stays up for 8 s while call B is placed.
  const callerA = callStart({ local: HOSTS.trunkIn, localPort: port(), remote: proxy.remote, to: '100', pauseMs: 8000, timeoutSec: 30 });
  const [r2, r3] = await allDone([desk2, desk3]);
  for (const r of [r2!, r3!]) {
    assertExit(t, r, 0, 'rang (180), then CANCEL with Reason cause=200, 487, ACK');
    t.equal(countReceived(r.messages, 'INVITE'), 1, 'one INVITE');
    t.match(r.messages, REASON, 'the CANCEL carries exactly the Reason of interface.md');
    t.match(r.messages, new RegExp(`Record-Route:.*127\\.0\\.0\\.1:${P.sip}`), 'the forked INVITE is record-routed');
  }
  const idA = callIdOf(callerA.messages());
  const outA = await outcomeOf(proxy, idA);
  t.equal(outA.outcome, 'answered', 'call A: outcome answered');
  // The line is written when the 200 is relayed; the losing branches are still being
  // cancelled then, so only the winner's status is fixed.
  t.same(Object.keys(branches(outA)).sort(), Object.keys(DEVICES).sort(), 'call A forked to all three devices');
  t.equal(branches(outA)['hotline-desk-1'], 200, 'call A: desk-1 answered');
  await waitFor('call A in /api/calls', async () => (await callsOf(proxy, '100')).length === 1, 5000);

  // Call B while A is up: a shared extension rings all devices again.
  const desk2b = await phone({ ...dev('hotline-desk-2'), scenario: 'phone-ring-cancelled.xml', register: false, timeoutSec: 15 });
  const desk3b = await phone({ ...dev('hotline-desk-3'), scenario: 'phone-ring-cancelled.xml', register: false, timeoutSec: 15 });
  const callerB = callStart({ local: HOSTS.trunkIn, localPort: port(), remote: proxy.remote, to: '100', pauseMs: 1500, timeoutSec: 20 });
  await waitFor('calls A and B both up', async () => (await callsOf(proxy, '100')).length === 2, 6000).catch((err: Error) => {
    t.fail(err.message);
  });
  const rB = await callerB.done;
  assertExit(t, rB, 0, 'call B, placed while A is up, is answered');
  const [r2b, r3b] = await allDone([desk2b, desk3b]);
  assertExit(t, r2b!, 0, 'desk-2 rang for call B and was cancelled');
  assertExit(t, r3b!, 0, 'desk-3 rang for call B and was cancelled');
  const outB = await outcomeOf(proxy, callIdOf(rB.messages));
  t.equal(outB.outcome, 'answered', 'call B: outcome answered');

  const rA = await callerA.done;
  assertExit(t, rA, 0, 'call A: 200, ACK, BYE 200 through the proxy');
  const r1 = await desk1.done;
  assertExit(t, r1, 0, 'desk-1 answered both calls and got both BYEs');
  t.equal(countReceived(r1.messages, 'INVITE'), 2, 'desk-1 got two INVITEs');
  t.equal(countReceived(r1.messages, 'BYE'), 2, 'desk-1 got two BYEs');
  await waitFor('no call left on 100', async () => (await callsOf(proxy, '100')).length === 0, 5000);
});

t.test('a device whose 180 comes after another answered still gets the CANCEL', async (t) => {
  // desk-1 answers after 200 ms; desk-2 is slow and sends its 180 only after 1 s. RFC 3261
  // 9.1: no CANCEL before a provisional, so the proxy must send it when the 180 arrives.
  const desk1 = await phone({ ...dev('hotline-desk-1'), scenario: 'phone-answer.xml', register: false, ringMs: 200 });
  const desk2 = await phone({ ...dev('hotline-desk-2'), scenario: 'phone-slow-ring-cancelled.xml', register: false, timeoutSec: 8 });
  const desk3 = await phone({ ...dev('hotline-desk-3'), scenario: 'phone-ring-cancelled.xml', register: false, timeoutSec: 8 });
  const r = await call({ local: HOSTS.trunkIn, localPort: port(), remote: proxy.remote, to: '100', pauseMs: 500, timeoutSec: 10 });
  assertExit(t, r, 0, 'answered by desk-1');
  const [r1, r2, r3] = await allDone([desk1, desk2, desk3]);
  assertExit(t, r1!, 0, 'desk-1 answered');
  assertExit(t, r2!, 0, 'desk-2 (slow 180) got CANCEL with the Reason, not left ringing');
  assertExit(t, r3!, 0, 'desk-3 got CANCEL with the Reason');
});

t.test('the callee hangs up: its BYE follows the Record-Route back to the caller', async (t) => {
  const desk1 = await phone({ ...dev('hotline-desk-1'), scenario: 'phone-answer-hangup.xml', ringMs: 300, register: false });
  const desk2 = await phone({ ...dev('hotline-desk-2'), scenario: 'phone-ring-cancelled.xml', register: false });
  const desk3 = await phone({ ...dev('hotline-desk-3'), scenario: 'phone-ring-cancelled.xml', register: false });
  const r = await call({ scenario: 'caller-wait-bye.xml', local: HOSTS.trunkIn, localPort: port(), remote: proxy.remote, to: '100' });
  assertExit(t, r, 0, 'caller: 200, ACK, then BYE from the callee answered 200');
  const [r1, r2, r3] = await allDone([desk1, desk2, desk3]);
  assertExit(t, r1!, 0, 'desk-1 answered and hung up');
  assertExit(t, r2!, 0, 'desk-2 cancelled');
  assertExit(t, r3!, 0, 'desk-3 cancelled');
  await waitFor('the BYE ended the tracked call', async () => (await callsOf(proxy, '100')).length === 0, 5000);
});
