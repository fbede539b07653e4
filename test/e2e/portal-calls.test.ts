/**
 * Issue 11, the portal part of "Operations on calls": headless Chromium (Debian's
 * /usr/bin/chromium driven by playwright-core; never a downloaded browser) against the REAL
 * proxy (dist/src/cli.js) with a real call (SIPp):
 * - anna-desk (extension 200) calls 100 and hotline-desk-1 answers; the admin opens the calls
 *   view, sees the call with both parties and clicks "End call": GET /api/calls is empty and
 *   both extensions have no active call (the BYEs to the phones are tested on the SIP side);
 * - the admin removes the registrations of anna-soft on the page of extension 200;
 * - a device user sees neither the calls view nor these buttons.
 * A screenshot of the calls view goes to /tmp/portal-calls.png.
 * Skipped only when /usr/bin/chromium is missing.
 *
 * Own addresses 127.0.0.171-179 and ports (SIP 17191, HTTP 19184, SIPp 27700+) so that no
 * other test file running in parallel can collide with this one.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { ADMIN_TOKEN, contactsOf, describe, phone, portCounter, register, startProxy, type ApiCall, type Proxy } from './harness.js';
import { CHROMIUM, activeCallsOn, deviceOf, holdCall, launchChromium, operatorProxyOptions, stopAtEnd, watch } from './operator-kit.js';

const SIP_PORT = 17191;
const HTTP_PORT = 19184;
const H = {
  annaDesk: '127.0.0.171',
  annaSoft: '127.0.0.172',
  hotline1: '127.0.0.173',
  trunk: '127.0.0.175',
  trigger: '127.0.0.179',
} as const;
const port = portCounter(27700);
const SCREENSHOT = '/tmp/portal-calls.png';

const PW = {
  'anna-desk': 'portal-calls-pw-anna-desk',
  'anna-soft': 'portal-calls-pw-anna-soft',
  'hotline-desk-1': 'portal-calls-pw-hotline-1',
  'hotline-desk-2': 'portal-calls-pw-hotline-2',
} as const;
type User = keyof typeof PW;

interface Ext {
  number: string;
  activeCalls: number;
}

if (!existsSync(CHROMIUM)) {
  t.plan(0, `${CHROMIUM} is missing (install Debian's chromium package; .ci/run does)`);
} else {
  const options = operatorProxyOptions({ pw: PW, trunk: H.trunk, sipPort: SIP_PORT, httpPort: HTTP_PORT });
  // No keepalive probes: this test is about the API and the portal, and a probe the SIPp
  // scenarios do not expect would end the call on its own.
  const proxy: Proxy = await startProxy({ ...options, calls: { ...options.calls, keepalive: 0 } });
  let browser: Browser | undefined;
  const procs = stopAtEnd(t, () => proxy, () => browser?.close());
  const remote = proxy.remote;
  const base = `http://127.0.0.1:${HTTP_PORT}/`;
  const P = { annaDesk: port(), annaSoft: port(), hotline1: port() };
  const dev = deviceOf<User>(PW, remote);
  const ext = (n: string) => proxy.apiJson<Ext>(`/api/extensions/${n}`);

  browser = await launchChromium(15000);

  async function signIn(page: Page, how: { token: string } | { username: User }): Promise<void> {
    await page.goto(base);
    if ('token' in how) {
      await page.fill('#token', how.token);
    } else {
      await page.fill('#username', how.username);
      await page.fill('#password', PW[how.username]);
    }
    await page.click('#login');
    await page.waitForSelector('#logout');
  }

  t.test('anna-soft registers', async (t) => {
    const r = await register(dev('anna-soft', H.annaSoft, P.annaSoft));
    t.equal(r.code, 0, `registered: ${r.label}`, { details: r.code !== 0 ? describe(r) : undefined });
  });

  t.test('the admin sees the call 200 -> 100 with both parties and ends it', async (t) => {
    // hotline-desk-1 registers and answers; anna-desk calls 100 and holds the call.
    const desk = await phone({ ...dev('hotline-desk-1', H.hotline1, P.hotline1), scenario: 'op-phone-in-call.xml', ringMs: 200, timeoutSec: 40 });
    procs.push(desk);
    const held = holdCall({
      callIdPrefix: 'portal-calls-held',
      trigger: H.trigger,
      local: H.annaDesk,
      localPort: P.annaDesk,
      remote,
      to: '100',
      from: 'anna-desk',
      password: PW['anna-desk'],
      timeoutSec: 40,
      label: 'held call anna-desk (200) -> 100',
    });
    procs.push(held.proc);
    const up = await activeCallsOn(ext, '100', 1, 10000, 100);
    t.equal(up, true, 'the call to 100 is up', { details: up !== true ? proxy.output(6000) : undefined });
    t.equal((await ext('200')).activeCalls, 1, '200 is in the call too');

    const rows = await proxy.apiJson<Array<ApiCall & { aliveAt: { caller: string; callee: string } }>>('/api/calls');
    t.equal(rows.length, 2, 'one row per party');
    const id = rows[0]!.id;
    t.ok(rows.every((r) => r.id === id), 'both rows belong to one call');
    t.match(id, /;/, `the call id has semicolons: ${id}`);
    t.match(
      rows.find((r) => r.direction === 'outbound'),
      { extension: '200', device: 'anna-desk' },
      'the caller: 200 anna-desk',
    );
    t.match(
      rows.find((r) => r.direction === 'inbound'),
      { extension: '100', device: 'hotline-desk-1' },
      'the callee: 100 hotline-desk-1',
    );
    for (const r of rows) t.ok(!isNaN(Date.parse(r.aliveAt.caller)) && !isNaN(Date.parse(r.aliveAt.callee)), `${r.device}: aliveAt`);

    const context = await browser!.newContext({ viewport: { width: 1100, height: 640 } });
    t.teardown(() => context.close());
    const page = await context.newPage();
    page.setDefaultTimeout(8000);
    const problems = watch(page);
    await signIn(page, { token: ADMIN_TOKEN });
    await page.waitForSelector('article[data-extension="100"]');
    await page.click('#callsLink');
    await page.waitForSelector('article.call');
    t.equal(new URL(page.url()).hash, '#/calls', 'the calls route');
    t.equal(await page.locator('article.call').count(), 1, 'one call (not one per party)');
    t.equal(await page.getAttribute('article.call', 'data-call-id'), id, 'the card carries the API id');

    const caller = await page.innerText('article.call [data-party="caller"]');
    for (const s of [/caller/i, '200', 'Anna Schmidt', 'anna-desk', 'outgoing call', 'Last alive']) t.match(caller, s, `caller: ${s}`);
    const callee = await page.innerText('article.call [data-party="callee"]');
    for (const s of [/callee/i, '100', 'Service Hotline', 'hotline-desk-1', 'incoming call', 'Last alive']) t.match(callee, s, `callee: ${s}`);
    t.match(await page.innerText('article.call .call-since'), /^Since \S/, 'since when');
    t.match(await page.innerText('main'), '1 call in progress');
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    await page.click('#refreshCalls');
    await page.waitForSelector('article.call');
    t.equal(await page.locator('article.call').count(), 1, 'Refresh shows it again');

    await page.click('article.call button.end-call');
    await page.waitForFunction(() => document.querySelector('#callsStatus')?.textContent?.startsWith('Call ended'));
    t.equal(await page.textContent('#callsStatus'), 'Call ended: 200 (anna-desk) \u2192 100 (hotline-desk-1).');
    await page.waitForSelector('#calls.empty');
    t.equal(await page.locator('article.call').count(), 0, 'the view refreshed: no call left');
    t.match(await page.innerText('main'), 'No calls in progress.');

    t.same(await proxy.apiJson('/api/calls'), [], 'GET /api/calls is empty');
    t.equal((await ext('100')).activeCalls, 0, '100 is free');
    t.equal((await ext('200')).activeCalls, 0, '200 is free');
    const line = await proxy.waitForLog((l) => l.msg === 'call ended through the API', 2000);
    t.match(line, { id, by: 'admin' }, 'the proxy logged who ended which call');
    t.same(problems, [], 'no page or CSP errors');
  });

  t.test('the admin removes the registrations of anna-soft', async (t) => {
    t.equal((await contactsOf(proxy, '200', 'anna-soft')).length, 1, 'anna-soft is registered');
    const context = await browser!.newContext({ viewport: { width: 1100, height: 800 } });
    t.teardown(() => context.close());
    const page = await context.newPage();
    page.setDefaultTimeout(8000);
    const problems = watch(page);
    await signIn(page, { token: ADMIN_TOKEN });
    await page.click('a[aria-label="Settings of extension 200"]');
    await page.waitForSelector('#busyOnBusy');
    const button = page.locator('button[aria-label="Remove registrations of anna-soft"]');
    t.equal(await button.count(), 1, 'a button for the registered device');
    t.equal(await page.locator('button[aria-label="Remove registrations of anna-desk"]').count(), 0, 'none for a device that is not registered');
    await button.click();
    await page.waitForFunction(() => document.querySelector('#deviceStatus')?.textContent?.startsWith('Registrations of anna-soft removed'));
    t.same(await contactsOf(proxy, '200', 'anna-soft'), [], 'the proxy has no binding of anna-soft');
    await page.waitForSelector('button.remove-registrations', { state: 'detached' });
    t.notMatch(await page.innerText('#devices'), `${H.annaSoft}:${P.annaSoft}`, 'the table no longer shows its contact');
    const line = await proxy.waitForLog((l) => l.msg === 'registrations removed through the API', 2000);
    t.match(line, { username: 'anna-soft', by: 'admin' });
    t.same(problems, [], 'no page or CSP errors');
  });

  t.test('a device user sees no calls view and no operator buttons', async (t) => {
    t.equal((await contactsOf(proxy, '100', 'hotline-desk-1')).length, 1, 'hotline-desk-1 is registered (so the admin would see a button)');
    const context = await browser!.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    t.teardown(() => context.close());
    const page = await context.newPage();
    page.setDefaultTimeout(8000);
    const problems = watch(page);
    await signIn(page, { username: 'hotline-desk-1' });
    await page.waitForSelector('#busyOnBusy');
    for (const hash of ['#/calls', '#/']) {
      await page.evaluate((h) => {
        location.hash = h;
      }, hash);
      await page.waitForFunction(() => location.hash === '#/extensions/100');
      await page.waitForSelector('#busyOnBusy');
      const text = await page.innerText('body');
      t.match(text, 'hotline-desk-1', `${hash}: its own extension`);
      for (const s of ['Active calls', 'End call', 'Remove registrations']) t.notOk(text.includes(s), `${hash}: no "${s}"`);
      t.equal(await page.locator('#callsLink, button.end-call, button.remove-registrations').count(), 0, `${hash}: no operator controls`);
    }
    t.same(problems, [], 'no page or CSP errors');
  });
}
