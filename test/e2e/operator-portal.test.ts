/**
 * Issue 3, "How it is checked", the portal part: headless Chromium (Debian's /usr/bin/chromium
 * driven by playwright-core; never a downloaded browser) against the REAL proxy
 * (dist/src/cli.js) with real SIP traffic (SIPp):
 * - while a call to the Busy-on-Busy extension 200 is up, the admin signs in, opens 200,
 *   unchecks "Busy on Busy" and saves: the next SIP call to 200 rings (and is answered);
 *   checking it again and saving: the next call gets 486;
 * - a device of 100 signs in and sees only extension 100, also when it asks for 200.
 * Skipped only when /usr/bin/chromium is missing.
 *
 * Own addresses 127.0.0.161-169 and ports (SIP 17181, HTTP 19183, SIPp 27500+) so that no
 * other test file running in parallel can collide with this one.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { ADMIN_TOKEN, call, describe, idlePhone, phone, portCounter, register, startProxy, type Proxy } from './harness.js';
import {
  CHROMIUM,
  activeCallsOn,
  deviceOf,
  doneWithin,
  holdCall,
  invitedCalls,
  launchChromium,
  operatorProxyOptions,
  stopAtEnd,
  watch,
} from './operator-kit.js';

const SIP_PORT = 17181;
const HTTP_PORT = 19183;
const H = {
  annaDesk: '127.0.0.161',
  annaSoft: '127.0.0.162',
  hotline1: '127.0.0.163',
  trunk: '127.0.0.165',
  trigger: '127.0.0.169',
} as const;
const port = portCounter(27500);

const PW = {
  'anna-desk': 'op-portal-pw-anna-desk',
  'anna-soft': 'op-portal-pw-anna-soft',
  'hotline-desk-1': 'op-portal-pw-hotline-1',
  'hotline-desk-2': 'op-portal-pw-hotline-2',
} as const;
type User = keyof typeof PW;

interface Ext {
  number: string;
  busyOnBusy: boolean;
  activeCalls: number;
}

if (!existsSync(CHROMIUM)) {
  t.plan(0, `${CHROMIUM} is missing (install Debian's chromium package; .ci/run does)`);
} else {
  const proxy: Proxy = await startProxy(operatorProxyOptions({ pw: PW, trunk: H.trunk, sipPort: SIP_PORT, httpPort: HTTP_PORT }));
  let browser: Browser | undefined;
  const procs = stopAtEnd(t, () => proxy, () => browser?.close());
  const remote = proxy.remote;
  const base = `http://127.0.0.1:${HTTP_PORT}/`;
  const P = { annaDesk: port(), annaSoft: port(), hotline1: port() };
  const dev = deviceOf<User>(PW, remote);
  const ext = (n: string) => proxy.apiJson<Ext>(`/api/extensions/${n}`);

  browser = await launchChromium(15000);

  t.test('devices register', async (t) => {
    const regs = await Promise.all([
      register(dev('anna-desk', H.annaDesk, P.annaDesk)),
      register(dev('anna-soft', H.annaSoft, P.annaSoft)),
      register(dev('hotline-desk-1', H.hotline1, P.hotline1)),
    ]);
    for (const r of regs) t.equal(r.code, 0, `registered: ${r.label}`, { details: r.code !== 0 ? describe(r) : undefined });
  });

  t.test('admin unchecks Busy on Busy for 200 while a call is up: the next call rings', async (t) => {
    // The held call: trunk -> 200; anna-desk answers (and rings for later calls: call
    // waiting), anna-soft is cancelled.
    const desk = await phone({ ...dev('anna-desk', H.annaDesk, P.annaDesk), scenario: 'op-phone-in-call.xml', register: false, calls: 2, ringMs: 300, timeoutSec: 40 });
    procs.push(desk);
    const soft = await phone({ ...dev('anna-soft', H.annaSoft, P.annaSoft), scenario: 'phone-ring-cancelled.xml', register: false, timeoutSec: 15 });
    procs.push(soft);
    const held = holdCall({ callIdPrefix: 'op-portal-held', trigger: H.trigger, local: H.trunk, localPort: port(), remote, to: '200', from: 'carrier', timeoutSec: 40, label: 'held call trunk -> 200' });
    procs.push(held.proc);
    const up = await activeCallsOn(ext, '200', 1, 10000, 100);
    t.equal(up, true, 'the held call to 200 is up', { details: up !== true ? proxy.output(6000) : undefined });
    const s1 = await soft.done;
    t.equal(s1.code, 0, 'anna-soft was cancelled when anna-desk answered', { details: s1.code !== 0 ? describe(s1) : undefined });

    // Before the portal: Busy on Busy (YAML) gives 486, anna-soft does not ring.
    const idle = await idlePhone({ ...dev('anna-soft', H.annaSoft, P.annaSoft), timeoutSec: 20 });
    procs.push(idle);
    const busy = await call({ local: H.trunk, localPort: port(), remote, to: '200', from: 'carrier', expect: 486, timeoutSec: 12 });
    t.equal(busy.code, 0, 'before: a second call to 200 gets 486', { details: busy.code !== 0 ? describe(busy) : undefined });
    const i1 = await idle.stop();
    t.same(invitedCalls(i1.messages), [], 'before: anna-soft did not ring');

    // The portal, as the admin.
    const context = await browser!.newContext({ viewport: { width: 1200, height: 900 } });
    t.teardown(() => context.close());
    const page = await context.newPage();
    page.setDefaultTimeout(8000);
    const problems = watch(page);
    await page.goto(base);
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#login');
    await page.waitForSelector('article[data-extension="200"]');
    const card = await page.innerText('article[data-extension="200"]');
    t.match(card, 'Anna Schmidt', 'overview: extension 200');
    t.match(card, '1 active call', 'overview: the held call shows on 200');
    t.match(card, 'anna-desk', 'overview: its devices');
    t.match(card, `${H.annaDesk}:${P.annaDesk}`, "overview: anna-desk's real contact");
    t.match(card, 'Busy on Busy');

    await page.click('a[aria-label="Settings of extension 200"]');
    await page.waitForSelector('#busyOnBusy');
    t.equal(new URL(page.url()).hash, '#/extensions/200', 'settings route of 200');
    t.equal(await page.isChecked('#busyOnBusy'), true, 'Busy on Busy is on (YAML)');
    await page.uncheck('#busyOnBusy');
    await page.click('#save');
    await page.waitForFunction(() => document.querySelector('#status')?.textContent?.startsWith('Saved'));
    t.equal((await ext('200')).busyOnBusy, false, 'the proxy has busyOnBusy=false');

    // The next call rings: anna-soft answers, anna-desk (in the held call) rings too and is cancelled.
    const softAnswers = await phone({ ...dev('anna-soft', H.annaSoft, P.annaSoft), scenario: 'phone-answer.xml', register: false, ringMs: 600, timeoutSec: 15 });
    procs.push(softAnswers);
    const second = await call({ local: H.trunk, localPort: port(), remote, to: '200', from: 'call-waiting-trunk', pauseMs: 300, timeoutSec: 12 });
    t.equal(second.code, 0, 'after Save (off): a second call to 200 rings and is answered', { details: second.code !== 0 ? `${describe(second)}\n--- proxy\n${proxy.output(6000)}` : undefined });
    const sa = await softAnswers.done;
    t.equal(sa.code, 0, 'anna-soft answered', { details: sa.code !== 0 ? describe(sa) : undefined });

    // Back on through the portal: 486 again.
    await page.check('#busyOnBusy');
    await page.click('#save');
    await page.waitForFunction(() => document.querySelector('#status')?.textContent?.startsWith('Saved'));
    t.equal((await ext('200')).busyOnBusy, true, 'the proxy has busyOnBusy=true');
    const idle2 = await idlePhone({ ...dev('anna-soft', H.annaSoft, P.annaSoft), timeoutSec: 20 });
    procs.push(idle2);
    const busyAgain = await call({ local: H.trunk, localPort: port(), remote, to: '200', from: 'carrier', expect: 486, timeoutSec: 12 });
    t.equal(busyAgain.code, 0, 'after Save (on): the next call to 200 gets 486', { details: busyAgain.code !== 0 ? describe(busyAgain) : undefined });
    const i2 = await idle2.stop();
    t.same(invitedCalls(i2.messages), [], 'after Save (on): anna-soft did not ring');

    await held.hangup();
    const [h, d] = await Promise.all([doneWithin(held.proc, 8000), doneWithin(desk, 8000)]);
    t.equal(h.code, 0, 'the held call hung up through the proxy', { details: h.code !== 0 ? describe(h) : undefined });
    t.equal(d.code, 0, 'anna-desk: held call, then rang for the second call and was cancelled', { details: d.code !== 0 ? describe(d) : undefined });
    t.equal(invitedCalls(d.messages).length, 2, 'anna-desk was invited to exactly two calls (none of the 486 ones)');
    t.same(problems, [], 'no page or CSP errors');
  });

  t.test('a device of 100 signs in and sees only extension 100', async (t) => {
    const context = await browser!.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    t.teardown(() => context.close());
    const page = await context.newPage();
    page.setDefaultTimeout(8000);
    const problems = watch(page);
    await page.goto(base + '#/extensions/200');
    await page.fill('#username', 'hotline-desk-1');
    await page.fill('#password', PW['hotline-desk-1']);
    await page.click('#login');
    await page.waitForSelector('#busyOnBusy');
    t.equal(new URL(page.url()).hash, '#/extensions/100', 'lands on its own extension, not the 200 it asked for');

    const check = async (what: string): Promise<void> => {
      const text = await page.innerText('body');
      t.match(text, 'Extension 100', `${what}: own extension`);
      t.match(text, 'Service Hotline', `${what}: its name`);
      t.match(text, 'hotline-desk-1', `${what}: its device`);
      t.match(text, `${H.hotline1}:${P.hotline1}`, `${what}: its real registration`);
      for (const other of ['Anna', 'anna-desk', 'anna-soft', 'Extension 200', 'All extensions', H.annaDesk]) {
        t.notOk(text.includes(other), `${what}: no "${other}"`);
      }
    };
    await check('settings');
    t.equal(await page.isChecked('#busyOnBusy'), false, '100 is shared use (YAML)');
    for (const hash of ['#/', '#/extensions/200']) {
      await page.evaluate((h) => {
        location.hash = h;
      }, hash);
      await page.waitForFunction(() => location.hash === '#/extensions/100');
      await page.waitForSelector('#busyOnBusy');
      await check(hash);
    }
    t.same(problems, [], 'no page or CSP errors');
  });
}
