/**
 * A real browser phone: sip.js (node_modules/sip.js/lib, unbundled ESM) in Debian's headless
 * Chromium registers over wss:// with its device password, is rung by a forked call together
 * with a SIPp device of the same extension, answers with its own WebRTC SDP, the SIPp device
 * gets the CANCEL, a second call meanwhile gets 486 (Busy on Busy), and the browser hangs up
 * (its BYE reaches the SIPp caller through the proxy). The page and sip.js are served by a
 * loopback HTTP server of this test.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { HOSTS, assertExit, call, callStart, contactsOf, phone, portBlock, startProxy, waitFor } from './harness.js';
import { CHROMIUM, openBrowserPhone, startBrowserPhoneHost } from './browser-phone-kit.js';
import { makeCa, makeCert } from '../support/test-certs.js';

if (!existsSync(CHROMIUM)) {
  t.plan(0, `${CHROMIUM} is missing (install Debian's chromium package; .ci/run does)`);
  process.exit(0);
}

const P = portBlock(19);
const WSS_PORT = P.base + 1;
const SOFT = { username: 'anna-soft', password: 'secret-4', local: HOSTS.phone2, localPort: P.base + 2 };
const WEB = { username: 'anna-web', password: 'secret-6' };

const ca = makeCa();
const cert = makeCert(ca, 'proxy');
const proxy = await startProxy({
  sipPort: P.sip,
  httpPort: P.http,
  listen: [`udp://127.0.0.1:${P.sip}`, `wss://127.0.0.1:${WSS_PORT}`],
  tls: { cert: cert.certFile, key: cert.keyFile },
  extensions: [
    {
      number: '200',
      name: 'Anna Schmidt',
      busyOnBusy: true,
      devices: [
        { username: SOFT.username, password: SOFT.password },
        { username: WEB.username, password: WEB.password },
      ],
    },
  ],
  trunks: [{ name: 'carrier', address: HOSTS.trunkIn }],
});

const host = await startBrowserPhoneHost();

t.teardown(async () => {
  await host.close();
  await proxy.stop();
  ca.remove();
});

t.test('sip.js over wss: registers, is rung with a SIPp device, answers, Busy on Busy, hangs up', async (t) => {
  const web = await openBrowserPhone(host, { server: `wss://127.0.0.1:${WSS_PORT}`, username: WEB.username, password: WEB.password, answerAfterMs: 800 });
  const contacts = await contactsOf(proxy, '200', WEB.username);
  t.equal(contacts.length, 1, 'one binding for the browser');
  t.match(contacts[0], /\.invalid/, `the browser's .invalid Contact: ${contacts[0]}`);

  const soft = await phone({ ...SOFT, remote: proxy.remote, scenario: 'phone-ring-cancelled.xml', timeoutSec: 20 });
  const caller = callStart({ scenario: 'caller-webrtc-wait-bye.xml', local: HOSTS.trunkIn, localPort: P.base + 10, remote: proxy.remote, to: '200', timeoutSec: 30 });
  await web.waitForEvent('session:Established', 10_000);
  t.pass('the browser answered (Established)');
  assertExit(t, await soft.done, 0, 'the SIPp device of the same extension rang and got the CANCEL');

  // Busy on Busy: 200 is talking on the browser, so a second call is refused.
  const busy = await call({ local: HOSTS.trunkIn, localPort: P.base + 11, remote: proxy.remote, to: '200', expect: 486 });
  assertExit(t, busy, 0, 'a second call while the browser talks gets 486');

  await web.hangup();
  assertExit(t, await caller.done, 0, "the browser's BYE reached the SIPp caller through the proxy");
  await waitFor('terminated', async () => (await web.events()).includes('session:Terminated'), 5000);
  t.notOk(web.console.some((l) => l.startsWith('pageerror')), 'no page errors');
  await web.page.close();
});
