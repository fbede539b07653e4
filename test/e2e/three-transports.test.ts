/**
 * The scene of issue 13's "done means": one Busy-on-Busy extension with three devices on three
 * transports — a desk phone over TLS (our own Node TLS phone, tls-kit.ts), a softphone over
 * UDP (SIPp) and a browser phone over WSS (sip.js in headless Chromium, browser-phone-kit.ts).
 * A call from a SIPp trunk rings all three at once; the browser answers and the other two get
 * the CANCEL; a second call meanwhile gets 486; after the browser's BYE a third call rings all
 * three again and the TLS phone answers it, the other two being cancelled.
 * Each answer waits until the test has seen the INVITE at all three devices, so the forking is
 * checked, not raced.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { assertExit, call, callStart, contactsOf, countReceived, phone, portBlock, startProxy, waitFor } from './harness.js';
import { CHROMIUM, openBrowserPhone, startBrowserPhoneHost } from './browser-phone-kit.js';
import { SDP, TlsPhone } from './tls-kit.js';
import { header } from './raw-sip.js';
import { makeCa, makeCert } from '../support/test-certs.js';

if (!existsSync(CHROMIUM)) {
  t.plan(0, `${CHROMIUM} is missing (install Debian's chromium package; .ci/run does)`);
  process.exit(0);
}

const P = portBlock(20);
const TLS_PORT = P.sip + 1;
const WSS_PORT = P.base + 1;
/** Loopback hosts of this file: the desk phone, the softphone, the trunk. */
const DESK_HOST = '127.0.0.81';
const SOFT_HOST = '127.0.0.82';
const TRUNK_HOST = '127.0.0.83';
const DESK = { username: 'eva-desk', password: 'desk-pw-8101' };
const SOFT = { username: 'eva-soft', password: 'soft-pw-8102', local: SOFT_HOST, localPort: P.base + 2 };
const WEB = { username: 'eva-web', password: 'web-pw-8103' };
const EXT = '400';

const ca = makeCa();
const cert = makeCert(ca, 'proxy');
const proxy = await startProxy({
  sipPort: P.sip,
  httpPort: P.http,
  listen: [`udp://127.0.0.1:${P.sip}`, `tls://127.0.0.1:${TLS_PORT}`, `wss://127.0.0.1:${WSS_PORT}`],
  tls: { cert: cert.certFile, key: cert.keyFile },
  extensions: [
    {
      number: EXT,
      name: 'Eva Three',
      busyOnBusy: true,
      devices: [
        { username: DESK.username, password: DESK.password },
        { username: SOFT.username, password: SOFT.password },
        { username: WEB.username, password: WEB.password },
      ],
    },
  ],
  trunks: [{ name: 'carrier', address: TRUNK_HOST }],
});
const host = await startBrowserPhoneHost().catch(async (e: unknown) => {
  await proxy.stop();
  throw e;
});

t.teardown(async () => {
  await host.close();
  await proxy.stop();
  ca.remove();
});

const invites = (ph: TlsPhone) => ph.received.filter((m) => m.startsWith('INVITE ')).length;

/** The TLS phone rings and loses the race: 180, then the CANCEL (answered 200 and 487, ACK). */
async function deskCancelled(desk: TlsPhone, inv: string, tag: string): Promise<string> {
  desk.reply(inv, '180 Ringing', { toTag: tag });
  const callId = header(inv, 'call-id')[0]!;
  const cancel = await desk.next((m) => m.startsWith('CANCEL ') && m.includes(callId), 20_000);
  desk.reply(cancel, '200 OK', { toTag: tag });
  desk.reply(inv, '487 Request Terminated', { toTag: tag });
  await desk.next((m) => m.startsWith('ACK ') && m.includes(callId), 20_000);
  return cancel;
}

t.test('one extension, three transports: rung together, one answers, the others are cancelled, Busy on Busy', async (t) => {
  // The three devices register, each over its own transport.
  const desk = await TlsPhone.connect(TLS_PORT, DESK_HOST, ca.pem, DESK);
  t.teardown(() => desk.close());
  t.match(await desk.register(300), /^SIP\/2\.0 200 /, 'desk phone registered over TLS');
  const web = await openBrowserPhone(host, { server: `wss://127.0.0.1:${WSS_PORT}`, username: WEB.username, password: WEB.password, answerAfterMs: null });
  t.teardown(() => web.page.close());
  // The softphone takes two calls (the first and the third); both are answered elsewhere.
  const soft = await phone({ ...SOFT, remote: proxy.remote, scenario: 'phone-ring-cancelled.xml', calls: 2, timeoutSec: 90 });
  t.teardown(() => void soft.stop());
  t.same(await contactsOf(proxy, EXT, DESK.username), [desk.contact], 'the TLS contact is bound');
  t.equal((await contactsOf(proxy, EXT, SOFT.username)).length, 1, 'the UDP contact is bound');
  t.match((await contactsOf(proxy, EXT, WEB.username))[0], /\.invalid/, 'the browser is bound with its .invalid contact');

  // Call 1: all three ring; the browser answers.
  const first = callStart({ scenario: 'caller-webrtc-wait-bye.xml', local: TRUNK_HOST, localPort: P.base + 10, remote: proxy.remote, to: EXT, timeoutSec: 60 });
  t.teardown(() => void first.stop());
  const inv1 = await desk.next((m) => m.startsWith('INVITE '), 20_000);
  t.pass('call 1: the TLS desk phone got the INVITE');
  await soft.waitForMessage(/INVITE sip:/, 20_000);
  t.pass('call 1: the UDP softphone got the INVITE');
  await web.waitForEvent('invite', 20_000);
  t.pass('call 1: the WSS browser got the INVITE');
  desk.reply(inv1, '180 Ringing', { toTag: 'desk-1' });
  await web.answer();
  await web.waitForEvent('session:Established', 20_000);
  t.pass('call 1: the browser answered');
  const cancel1 = await deskCancelled(desk, inv1, 'desk-1');
  t.match(header(cancel1, 'reason')[0], /cause=200/, 'call 1: the desk phone got the CANCEL, completed elsewhere');
  // The softphone's scenario checks its CANCEL (with the Reason) itself; here only that it came.
  await soft.waitForMessage(/CANCEL sip:/, 20_000);
  t.pass('call 1: the softphone got the CANCEL');

  // Call 2 while the browser talks: Busy on Busy, no device rings.
  const busy = await call({ local: TRUNK_HOST, localPort: P.base + 11, remote: proxy.remote, to: EXT, expect: 486, timeoutSec: 30 });
  assertExit(t, busy, 0, 'call 2: 486 Busy Here while the browser talks');
  t.equal(invites(desk), 1, 'call 2 did not ring the desk phone');
  t.equal(countReceived(soft.messages(), 'INVITE'), 1, 'call 2 did not ring the softphone');
  t.equal((await web.events()).filter((e) => e === 'invite').length, 1, 'call 2 did not ring the browser');

  // The browser hangs up: its BYE reaches the trunk's caller, which ends call 1.
  await web.hangup();
  assertExit(t, await first.done, 0, "call 1: the browser's BYE reached the caller through the proxy");
  // Call 3 counts the browser's second Terminated: the first must be this one, not a late echo.
  await web.waitForEvent('session:Terminated', 20_000);
  await waitFor('call 1 gone from the API', async () => (await proxy.apiJson<Array<{ extension: string }>>('/api/calls')).every((c) => c.extension !== EXT), 20_000);

  // Call 3: all three ring again; the desk phone answers this time, the caller hangs up.
  const third = callStart({ local: TRUNK_HOST, localPort: P.base + 12, remote: proxy.remote, to: EXT, pauseMs: 500, timeoutSec: 60 });
  t.teardown(() => void third.stop());
  const inv3 = await desk.next((m) => m.startsWith('INVITE '), 20_000);
  t.pass('call 3: the TLS desk phone got the INVITE');
  await waitFor('call 3 at the softphone', () => countReceived(soft.messages(), 'INVITE') === 2, 20_000);
  t.pass('call 3: the UDP softphone got the INVITE');
  await web.waitForEvent('invite', 20_000, 2);
  t.pass('call 3: the WSS browser got the INVITE');
  desk.reply(inv3, '180 Ringing', { toTag: 'desk-3' });
  desk.reply(inv3, '200 OK', { toTag: 'desk-3', recordRoute: true, contact: true, body: SDP });
  const callId3 = header(inv3, 'call-id')[0]!;
  await desk.next((m) => m.startsWith('ACK ') && m.includes(callId3), 20_000);
  t.pass('call 3: the desk phone answered and got its ACK');
  await web.waitForEvent('session:Terminated', 20_000, 2);
  const events = await web.events();
  t.equal(events.filter((e) => e === 'session:Established').length, 1, 'call 3: the browser was cancelled, not connected');
  assertExit(t, await soft.done, 0, 'the softphone rang for calls 1 and 3 and got the CANCEL both times');
  const bye = await desk.next((m) => m.startsWith('BYE ') && m.includes(callId3), 20_000);
  desk.reply(bye, '200 OK');
  assertExit(t, await third.done, 0, "call 3: the caller's BYE reached the desk phone over TLS");
  t.equal(invites(desk), 2, 'the desk phone rang exactly twice');
  t.notOk(web.console.some((l) => l.startsWith('pageerror')), 'no page errors in the browser phone');
});
