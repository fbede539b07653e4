/**
 * The portal in headless Chromium (Debian's /usr/bin/chromium via playwright-core; never a
 * downloaded browser) against the real HTTP server and an in-test fake AdminView. The lead's
 * end-to-end tests drive the real proxy; this one checks what a person sees and clicks.
 * With UPDATE_SCREENSHOTS=1 it also refreshes the screenshots in docs/ (otherwise they go to a
 * temp dir, so a test run leaves the work tree clean).
 */
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startHttp } from '../../src/http/server.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import type { AdminView, CallView, DeviceView, ExtensionView } from '../../src/http/view.js';
import { CHROMIUM, launchChromium, watch } from './operator-kit.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SHOTS = process.env.UPDATE_SCREENSHOTS === '1' ? resolve(ROOT, 'docs') : mkdtempSync(join(tmpdir(), 'sipbob-shots-'));
const ADMIN_TOKEN = 'portal-admin-token';
const DEVICES: Record<string, { password: string; extension: string }> = {
  'hotline-desk-1': { password: 'hl-secret-1', extension: '100' },
  'hotline-desk-2': { password: 'hl-secret-2', extension: '100' },
  'hotline-soft': { password: 'hl-secret-3', extension: '100' },
  'anna-desk': { password: 'anna-secret-3', extension: '200' },
  'anna-soft': { password: 'anna-secret-4', extension: '200' },
  'anna-mobile': { password: 'anna-secret-5', extension: '200' },
};

/** Where each device is registered; a device missing here is not registered. */
const REGISTERED: Record<string, { contact: string; ua: string; inMs: number }> = {
  'hotline-desk-1': { contact: 'sip:hotline-desk-1@192.0.2.31:5060', ua: 'Yealink SIP-T54W 96.86.0.75', inMs: 512_000 },
  'hotline-desk-2': { contact: 'sip:hotline-desk-2@192.0.2.32:5060', ua: 'Yealink SIP-T46U 108.86.0.45', inMs: 233_000 },
  'anna-desk': { contact: 'sip:anna-desk@192.0.2.21:5062;transport=udp', ua: 'Snom D785 10.1.159.12', inMs: 545_000 },
  'anna-mobile': { contact: 'sip:anna-mobile@203.0.113.7:49152;transport=tcp', ua: 'Linphone-Android/5.2.5', inMs: 3_300_000 },
};

class FakeView implements AdminView {
  changes: Array<[string, boolean]> = [];
  private readonly ext = new Map([
    ['100', { name: 'Service Hotline', busyOnBusy: false, calls: 2 }],
    ['200', { name: 'Anna Schmidt', busyOnBusy: true, calls: 0 }],
  ]);

  private view(number: string): ExtensionView | undefined {
    const e = this.ext.get(number);
    if (e === undefined) return undefined;
    const devices: DeviceView[] = Object.entries(DEVICES)
      .filter(([, d]) => d.extension === number)
      .map(([username]) => {
        const r = REGISTERED[username];
        const transport = r?.contact.includes('transport=tcp') ? 'tcp' : 'udp';
        return {
          username,
          registrations: r
            ? [{ contact: r.contact, expiresAt: new Date(Date.now() + r.inMs).toISOString(), source: `${transport}:${r.contact.split('@')[1]!.split(';')[0]}`, transport, userAgent: r.ua }]
            : [],
        };
      });
    return { number, name: e.name, busyOnBusy: e.busyOnBusy, activeCalls: e.calls, devices };
  }
  listExtensions(): ExtensionView[] {
    return [...this.ext.keys()].map((n) => this.view(n)!);
  }
  getExtension(number: string): ExtensionView | undefined {
    return this.view(number);
  }
  setBusyOnBusy(number: string, value: boolean): boolean {
    const e = this.ext.get(number);
    if (e === undefined) return false;
    e.busyOnBusy = value;
    this.changes.push([number, value]);
    return true;
  }
  endCall(): boolean {
    return false;
  }

  removeRegistrations(): boolean {
    return false;
  }

  listCalls(): CallView[] {
    return [];
  }
  deviceLogin(username: string, password: string): string | undefined {
    const d = DEVICES[username];
    return d !== undefined && d.password === password ? d.extension : undefined;
  }
  adminToken(): string | undefined {
    return ADMIN_TOKEN;
  }
  ready(): boolean {
    return true;
  }
}

if (!existsSync(CHROMIUM)) {
  // plan(0) reports the whole file as skipped, with the reason.
  t.plan(0, `${CHROMIUM} is missing (install Debian's chromium package; .ci/run does)`);
} else {
  const view = new FakeView();
  const { registry } = createMetrics({
    registeredDevices: () => 4,
    contacts: () => 4,
    activeCallsByExtension: () => new Map([['100', 2]]),
    transactionsInFlight: () => 0,
    endedCalls: () => new Map([['bye', 2], ['keepalive', 1]]),
    keepaliveProbes: () => ({ sent: 7, failed: 1 }),
  });
  const srv = await startHttp({ host: '127.0.0.1', port: 0, view, metrics: registry, logger: pino({ level: 'silent' }) });
  const base = `http://127.0.0.1:${srv.address.port}/`;
  const browser = await launchChromium();
  t.teardown(async () => {
    await browser.close();
    await srv.close();
  });
  mkdirSync(SHOTS, { recursive: true });

  t.test('admin: overview of every extension, then Busy on Busy for 200', async (t) => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    t.teardown(() => context.close());
    const page = await context.newPage();
    const problems = watch(page);
    await page.goto(base);

    await page.fill('#token', 'not-the-token');
    await page.click('#login');
    await page.waitForSelector('#loginError:not([hidden])');
    t.match(await page.textContent('#loginError'), 'This admin token is not valid.');

    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#login');
    await page.waitForSelector('article[data-extension="200"]');
    t.equal(await page.locator('article[data-extension]').count(), 2, 'both extensions');
    const text = await page.innerText('main');
    for (const s of ['Service Hotline', 'Anna Schmidt', 'hotline-desk-1', 'anna-soft', 'Not registered', 'Registered', 'Linphone-Android/5.2.5', 'sip:anna-desk@192.0.2.21:5062;transport=udp', '2 active calls']) {
      t.match(text, s, `overview shows ${s}`);
    }
    await page.screenshot({ path: resolve(SHOTS, 'portal.png'), fullPage: true });

    await page.click('a[aria-label="Settings of extension 200"]');
    await page.waitForSelector('#busyOnBusy');
    t.equal(new URL(page.url()).hash, '#/extensions/200');
    t.match(await page.innerText('main'), 'Incoming calls');
    t.equal(await page.isChecked('#busyOnBusy'), true, 'shows the current value');
    await page.getByLabel('Busy on Busy').uncheck(); // the checkbox is reachable by its label
    await page.click('#save');
    await page.waitForFunction(() => document.querySelector('#status')?.textContent?.startsWith('Saved'));
    t.equal(await page.textContent('#status'), 'Saved — applies to the next call');
    t.same(view.changes, [['200', false]], 'the view got setBusyOnBusy("200", false)');

    // A reload keeps the session (sessionStorage) and shows the saved value.
    await page.reload();
    await page.waitForSelector('#busyOnBusy');
    t.equal(await page.isChecked('#busyOnBusy'), false);

    await page.click('a.back');
    await page.waitForSelector('article[data-extension="100"]');
    await page.click('#logout');
    await page.waitForSelector('#token');
    t.same(problems, [], 'no page or CSP errors');
  });

  t.test('device on a phone: only its own extension', async (t) => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    t.teardown(() => context.close());
    const page = await context.newPage();
    const problems = watch(page);
    await page.goto(base + '#/');

    await page.fill('#username', 'anna-desk');
    await page.fill('#password', 'wrong');
    await page.click('#login');
    await page.waitForSelector('#loginError:not([hidden])');
    t.match(await page.textContent('#loginError'), 'Wrong username or password.');

    await page.fill('#password', DEVICES['anna-desk']!.password);
    await page.click('#login');
    await page.waitForSelector('#busyOnBusy');
    t.equal(new URL(page.url()).hash, '#/extensions/200', 'lands on its own extension');

    const check = async (what: string): Promise<void> => {
      const text = await page.innerText('body');
      t.match(text, 'Extension 200', `${what}: own extension`);
      for (const other of ['100', 'Service Hotline', 'hotline-desk', 'All extensions']) {
        t.notOk(text.includes(other), `${what}: no "${other}"`);
      }
    };
    await check('settings');

    // Other routes lead back to the own extension; the API would answer 403 anyway.
    for (const hash of ['#/', '#/extensions/100']) {
      await page.evaluate((h) => {
        location.hash = h;
      }, hash);
      await page.waitForFunction(() => location.hash === '#/extensions/200');
      await page.waitForSelector('#busyOnBusy');
      await check(hash);
    }

    const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    t.ok(fits, 'no horizontal scrolling at 390 px');

    const before = view.changes.length;
    await page.check('#busyOnBusy');
    t.match(await page.textContent('#status'), 'Not saved yet');
    await page.tap('#save');
    await page.waitForFunction(() => document.querySelector('#status')?.textContent?.startsWith('Saved'));
    await page.screenshot({ path: resolve(SHOTS, 'portal-settings-mobile.png'), fullPage: true });
    t.same(view.changes.slice(before), [['200', true]]);
    t.same(problems, [], 'no page or CSP errors');
  });
}
