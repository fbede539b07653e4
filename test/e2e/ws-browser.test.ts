/**
 * A real browser phone: sip.js (node_modules/sip.js/lib, unbundled ESM) in Debian's headless
 * Chromium registers over wss:// with its device password, is rung by a forked call together
 * with a SIPp device of the same extension, answers with its own WebRTC SDP, the SIPp device
 * gets the CANCEL, a second call meanwhile gets 486 (Busy on Busy), and the browser hangs up
 * (its BYE reaches the SIPp caller through the proxy). The page and sip.js are served by a
 * loopback HTTP server of this test.
 */
import t from 'tap';
import http from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { HOSTS, ROOT, assertExit, call, callStart, contactsOf, phone, portBlock, startProxy, waitFor } from './harness.js';
import { CHROMIUM } from './operator-kit.js';
import { makeCa, makeCert } from '../support/test-certs.js';
import { chromium } from 'playwright-core';

if (!existsSync(CHROMIUM)) {
  t.plan(0, `${CHROMIUM} is missing (install Debian's chromium package; .ci/run does)`);
  process.exit(0);
}

const P = portBlock(19);
const WSS_PORT = P.base + 1;
const SOFT = { username: 'anna-soft', password: 'secret-4', local: HOSTS.phone2, localPort: P.base + 2 };
const WEB = { username: 'anna-web', password: 'secret-6' };
const SIPJS = path.join(ROOT, 'node_modules', 'sip.js', 'lib');

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

// The page: a phone that registers, answers after a moment, and hangs up when told to.
const PAGE = `<!doctype html><meta charset="utf-8"><title>sip.js phone</title>
<script type="module">
import { UserAgent, Registerer } from './sipjs/index.js';
const events = (window.events = []);
let session;
window.startPhone = async (cfg) => {
  const ua = new UserAgent({
    uri: UserAgent.makeURI('sip:' + cfg.username + '@pbx.example.test'),
    transportOptions: { server: cfg.server },
    authorizationUsername: cfg.username,
    authorizationPassword: cfg.password,
    logLevel: 'warn',
    // Headless on loopback there is no STUN server to wait for: offer the host candidates at once.
    sessionDescriptionHandlerFactoryOptions: { iceGatheringTimeout: 300, peerConnectionConfiguration: { iceServers: [] } },
    delegate: {
      onInvite: (invitation) => {
        session = invitation;
        events.push('invite');
        invitation.stateChange.addListener((s) => events.push('session:' + s));
        setTimeout(() => invitation.accept().catch((e) => events.push('accept failed: ' + e)), 800);
      },
    },
  });
  await ua.start();
  const registerer = new Registerer(ua);
  registerer.stateChange.addListener((s) => events.push('registerer:' + s));
  await registerer.register();
};
window.hangup = () => session.bye();
</script>`;

const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  if (url === '/') {
    res.writeHead(200, { 'content-type': 'text/html' });
    return void res.end(PAGE);
  }
  // Only files under sip.js's lib: the path is resolved and checked to stay inside it.
  const file = path.resolve(SIPJS, '.' + decodeURIComponent(url.replace(/^\/sipjs/, '').split('?')[0]!));
  if (!url.startsWith('/sipjs/') || !file.startsWith(SIPJS + path.sep) || !existsSync(file)) {
    res.writeHead(404);
    return void res.end();
  }
  res.writeHead(200, { 'content-type': 'text/javascript' });
  res.end(readFileSync(file));
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
const pageUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    // The proxy's certificate comes from this test's throwaway CA.
    '--ignore-certificate-errors',
  ],
});

t.teardown(async () => {
  await browser.close();
  await new Promise<void>((r) => server.close(() => r()));
  await proxy.stop();
  ca.remove();
});

t.test('sip.js over wss: registers, is rung with a SIPp device, answers, Busy on Busy, hangs up', async (t) => {
  const page = await browser.newPage();
  const console: string[] = [];
  page.on('console', (m) => console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => console.push(`pageerror: ${e.message}`));
  const events = () => page.evaluate(() => (window as unknown as { events: string[] }).events);
  await page.goto(pageUrl);
  await page.evaluate((cfg) => (window as unknown as { startPhone(c: object): Promise<void> }).startPhone(cfg), {
    server: `wss://127.0.0.1:${WSS_PORT}`,
    username: WEB.username,
    password: WEB.password,
  });
  await waitFor('registered', async () => (await events()).includes('registerer:Registered'), 10_000);
  const contacts = await contactsOf(proxy, '200', WEB.username);
  t.equal(contacts.length, 1, 'one binding for the browser');
  t.match(contacts[0], /\.invalid/, `the browser's .invalid Contact: ${contacts[0]}`);

  const soft = await phone({ ...SOFT, remote: proxy.remote, scenario: 'phone-ring-cancelled.xml', timeoutSec: 20 });
  const caller = callStart({ scenario: 'caller-webrtc-wait-bye.xml', local: HOSTS.trunkIn, localPort: P.base + 10, remote: proxy.remote, to: '200', timeoutSec: 30 });
  await waitFor('the browser answered', async () => (await events()).includes('session:Established'), 10_000).catch((e: Error) => {
    throw new Error(`${e.message}; events ${JSON.stringify(console)}`);
  });
  t.pass('the browser answered (Established)');
  assertExit(t, await soft.done, 0, 'the SIPp device of the same extension rang and got the CANCEL');

  // Busy on Busy: 200 is talking on the browser, so a second call is refused.
  const busy = await call({ local: HOSTS.trunkIn, localPort: P.base + 11, remote: proxy.remote, to: '200', expect: 486 });
  assertExit(t, busy, 0, 'a second call while the browser talks gets 486');

  await page.evaluate(() => (window as unknown as { hangup(): Promise<void> }).hangup());
  assertExit(t, await caller.done, 0, "the browser's BYE reached the SIPp caller through the proxy");
  await waitFor('terminated', async () => (await events()).includes('session:Terminated'), 5000);
  t.notOk(console.some((l) => l.startsWith('pageerror')), 'no page errors');
  await page.close();
});
