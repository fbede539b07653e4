/**
 * A browser phone for e2e tests: sip.js (node_modules/sip.js/lib, unbundled ESM) on a page
 * served by a loopback HTTP server of the test, in Debian's headless Chromium with fake media
 * devices. The page records what happens in window.events ('invite', 'session:<state>',
 * 'registerer:<state>') and answers either by itself after a delay or when told to.
 */
import http from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT, waitFor } from './harness.js';
import { CHROMIUM } from './operator-kit.js';

export { CHROMIUM };

const SIPJS = path.join(ROOT, 'node_modules', 'sip.js', 'lib');

// The page: a phone that registers, answers after answerAfterMs (or on answer() when that is
// null), and hangs up when told to.
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
        if (cfg.answerAfterMs !== null) setTimeout(() => window.answer(), cfg.answerAfterMs);
      },
    },
  });
  await ua.start();
  const registerer = new Registerer(ua);
  registerer.stateChange.addListener((s) => events.push('registerer:' + s));
  await registerer.register();
};
window.answer = () => session.accept().catch((e) => events.push('accept failed: ' + e));
window.hangup = () => session.bye();
</script>`;

export interface BrowserPhoneHost {
  browser: Browser;
  pageUrl: string;
  /** Closes the browser and the page server. */
  close(): Promise<void>;
}

/** Serves the page and sip.js on an ephemeral loopback port and launches Chromium. */
export async function startBrowserPhoneHost(): Promise<BrowserPhoneHost> {
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
  const closeServer = () => new Promise<void>((r) => server.close(() => r()));
  let browser: Browser;
  try {
    browser = await chromium.launch({
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
        // The proxy's certificate comes from the test's throwaway CA.
        '--ignore-certificate-errors',
      ],
    });
  } catch (e) {
    await closeServer();
    throw e;
  }
  return {
    browser,
    pageUrl,
    async close() {
      await browser.close();
      await closeServer();
    },
  };
}

export interface BrowserPhone {
  page: Page;
  /** Console lines and page errors of the page, for failure messages. */
  console: string[];
  /** window.events so far. */
  events(): Promise<string[]>;
  /** Waits until window.events contains `event` at least `count` times. */
  waitForEvent(event: string, timeoutMs: number, count?: number): Promise<void>;
  /** Accepts the ringing invitation (for answerAfterMs: null). */
  answer(): Promise<void>;
  hangup(): Promise<void>;
}

/** Opens the page and registers over `server` (a wss:// URL); resolves once registered. */
export async function openBrowserPhone(
  host: BrowserPhoneHost,
  cfg: { server: string; username: string; password: string; answerAfterMs: number | null },
): Promise<BrowserPhone> {
  const page = await host.browser.newPage();
  const console: string[] = [];
  page.on('console', (m) => console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => console.push(`pageerror: ${e.message}`));
  const events = () => page.evaluate(() => (window as unknown as { events: string[] }).events);
  const waitForEvent = async (event: string, timeoutMs: number, count = 1) => {
    await waitFor(`browser event ${event} x${count}`, async () => (await events()).filter((e) => e === event).length >= count, timeoutMs).catch(async (e: Error) => {
      throw new Error(`${e.message}; events ${JSON.stringify(await events().catch(() => []))}; console ${JSON.stringify(console)}`);
    });
  };
  await page.goto(host.pageUrl);
  await page.evaluate((c) => (window as unknown as { startPhone(c: object): Promise<void> }).startPhone(c), cfg);
  await waitForEvent('registerer:Registered', 10_000);
  return {
    page,
    console,
    events,
    waitForEvent,
    answer: () => page.evaluate(() => (window as unknown as { answer(): Promise<void> }).answer()),
    hangup: () => page.evaluate(() => (window as unknown as { hangup(): Promise<void> }).hangup()),
  };
}
