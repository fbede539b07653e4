/**
 * Issue 3, "How it is checked", the API part, over real HTTP against the real proxy
 * (dist/src/cli.js) with real SIP traffic (SIPp):
 * - admin (Bearer) vs device (HTTP Basic, own extension only) vs anonymous; 403 for a device
 *   on other extensions, /api/extensions, /api/calls and /metrics; failed logins refused;
 * - schema errors give 400 with a clear message; bodies must be application/json;
 * - PATCH busyOnBusy=false on 200 while a call to 200 is up: a second call rings (shared
 *   use); PATCH back to true: 486 at once, no device rings;
 * - /metrics has sipbob_registered_devices and counts busy_on_busy calls;
 * - SIGHUP reload of an edited config (extension added, device removed, 200's YAML value
 *   flipped) while the call is up keeps the registrations, the call and the API setting;
 * - no response and no log line contains a password of the config.
 *
 * The harness does not expose the proxy's pid, so SIGHUP goes to the process found in /proc
 * whose command line holds this proxy's unique temp config path.
 *
 * Own addresses 127.0.0.151-159 and ports (SIP 17171, HTTP 19182, SIPp 27300+) so that no
 * other test file running in parallel can collide with this one.
 */
import t from 'tap';
import http from 'node:http';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import {
  ADMIN_TOKEN,
  call,
  describe,
  idlePhone,
  phone,
  portCounter,
  register,
  startProxy,
  type Proxy,
} from './harness.js';
import { activeCallsOn, deviceOf, doneWithin, holdCall, invitedCalls, operatorProxyOptions, stopAtEnd } from './operator-kit.js';

const SIP_PORT = 17171;
const HTTP_PORT = 19182;
const H = {
  annaDesk: '127.0.0.151',
  annaSoft: '127.0.0.152',
  hotline1: '127.0.0.153',
  hotline2: '127.0.0.154',
  trunk: '127.0.0.155',
  /** Sources of failed logins, so the limiter never hits the address the other requests use. */
  badLogin: '127.0.0.156',
  limiter: '127.0.0.157',
  afterReload: '127.0.0.158',
  trigger: '127.0.0.159',
} as const;
const port = portCounter(27300);

const PW = {
  'anna-desk': 'op-api-pw-anna-desk-3',
  'anna-soft': 'op-api-pw-anna-soft-4',
  'hotline-desk-1': 'op-api-pw-hotline-1',
  'hotline-desk-2': 'op-api-pw-hotline-2',
  'carl-desk': 'op-api-pw-carl-desk-9',
} as const;
type User = keyof typeof PW;

const proxyOptions = operatorProxyOptions({ pw: PW, trunk: H.trunk, sipPort: SIP_PORT, httpPort: HTTP_PORT });
const extensions = proxyOptions.extensions;

interface Ext {
  number: string;
  name: string;
  busyOnBusy: boolean;
  activeCalls: number;
  devices: Array<{ username: string; registrations: Array<{ contact: string; expiresAt: string; source: string; transport: string; userAgent: string }> }>;
}

// ---------------------------------------------------------------------------------------
// HTTP over node:http, so a request can come from a chosen loopback address (the failed-login
// limiter counts per address). Every response is kept for the password check at the end.

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  ms: number;
  json(): any;
}
const seen: Array<{ what: string; res: Res }> = [];

type Auth = 'admin' | 'none' | { user: string; pass: string } | { raw: string };

function request(method: string, path: string, opts: { auth?: Auth; body?: string; contentType?: string; from?: string } = {}): Promise<Res> {
  const headers: Record<string, string> = {};
  const auth = opts.auth ?? 'admin';
  if (auth === 'admin') headers['authorization'] = `Bearer ${ADMIN_TOKEN}`;
  else if (auth !== 'none') headers['authorization'] = 'raw' in auth ? auth.raw : `Basic ${Buffer.from(`${auth.user}:${auth.pass}`).toString('base64')}`;
  if (opts.body !== undefined) {
    headers['content-type'] = opts.contentType ?? 'application/json';
    headers['content-length'] = String(Buffer.byteLength(opts.body));
  }
  const started = Date.now();
  return new Promise<Res>((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: HTTP_PORT, method, path, headers, localAddress: opts.from ?? '127.0.0.1', timeout: 5000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const r: Res = {
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            ms: Date.now() - started,
            json: () => JSON.parse(text),
          };
          seen.push({ what: `${method} ${path} (${typeof auth === 'string' ? auth : 'raw' in auth ? 'raw' : auth.user})`, res: r });
          resolve(r);
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 5 s`)));
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}
const basic = (user: User, pass: string = PW[user]): Auth => ({ user, pass });
const ext = async (n: string): Promise<Ext> => {
  const r = await request('GET', `/api/extensions/${n}`);
  if (r.status !== 200) throw new Error(`GET /api/extensions/${n}: ${r.status} ${r.text}`);
  return r.json() as Ext;
};
const patch = (n: string, busyOnBusy: unknown, auth: Auth = 'admin') =>
  request('PATCH', `/api/extensions/${n}`, { auth, body: JSON.stringify({ busyOnBusy }) });

/** Value of a Prometheus sample, e.g. sample(text, 'sipbob_calls_total{outcome="busy_on_busy"}'). */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1).trim());
  }
  return undefined;
}

/** The pid of this proxy: the process whose command line names its (unique) config file. */
function proxyPid(configFile: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv.includes('--config') && argv.includes(configFile) && argv.some((a) => a.endsWith('cli.js'))) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------

const proxy: Proxy = await startProxy(proxyOptions);
const procs = stopAtEnd(t, () => proxy);
const remote = proxy.remote;
const P = { annaDesk: port(), annaSoft: port(), hotline1: port(), hotline2: port() };
const dev = deviceOf<User>(PW, remote);

t.test('devices register', async (t) => {
  const regs = await Promise.all([
    register(dev('anna-desk', H.annaDesk, P.annaDesk)),
    register(dev('anna-soft', H.annaSoft, P.annaSoft)),
    register(dev('hotline-desk-1', H.hotline1, P.hotline1)),
    register(dev('hotline-desk-2', H.hotline2, P.hotline2)),
  ]);
  for (const r of regs) t.equal(r.code, 0, `registered: ${r.label}`, { details: r.code !== 0 ? describe(r) : undefined });
});

t.test('anonymous: only /healthz and the portal page', async (t) => {
  t.equal((await request('GET', '/healthz', { auth: 'none' })).status, 200, '/healthz');
  const page = await request('GET', '/', { auth: 'none' });
  t.equal(page.status, 200, 'the portal page');
  t.match(String(page.headers['content-type']), /text\/html/);
  for (const [method, path] of [
    ['GET', '/api/extensions'],
    ['GET', '/api/extensions/200'],
    ['GET', '/api/calls'],
    ['GET', '/metrics'],
  ] as const) {
    const r = await request(method, path, { auth: 'none' });
    t.equal(r.status, 401, `anonymous ${method} ${path}: 401`);
  }
  const p = await request('PATCH', '/api/extensions/200', { auth: 'none', body: '{"busyOnBusy":false}' });
  t.equal(p.status, 401, 'anonymous PATCH: 401');
  t.equal((await ext('200')).busyOnBusy, true, 'and nothing changed');
});

t.test('admin sees everything, with the registrations of the devices', async (t) => {
  const list = await request('GET', '/api/extensions');
  t.equal(list.status, 200);
  const all = list.json() as Ext[];
  t.same(all.map((e) => e.number).sort(), ['100', '200']);
  const e200 = all.find((e) => e.number === '200')!;
  t.match(e200, { number: '200', name: 'Anna Schmidt', busyOnBusy: true, activeCalls: 0 });
  const desk = e200.devices.find((d) => d.username === 'anna-desk');
  t.equal(desk?.registrations.length, 1, 'anna-desk has one registration');
  t.match(desk?.registrations[0], {
    contact: new RegExp(`${H.annaDesk.replace(/\./g, '\\.')}:${P.annaDesk}`),
    transport: /udp/i,
    userAgent: 'sipbob-e2e',
    source: new RegExp(H.annaDesk.replace(/\./g, '\\.')),
  });
  t.ok(Date.parse(desk!.registrations[0]!.expiresAt) > Date.now() + 500_000, 'expiresAt about 600 s ahead');
  const one = await request('GET', '/api/extensions/100');
  t.equal(one.status, 200);
  t.equal((one.json() as Ext).devices.length, 2);
  const calls = await request('GET', '/api/calls');
  t.equal(calls.status, 200);
  t.same(calls.json(), [], 'no calls yet');
  const metrics = await request('GET', '/metrics');
  t.equal(metrics.status, 200);
  t.equal(sample(metrics.text, 'sipbob_registered_devices'), 4, 'sipbob_registered_devices 4');
  // Every REGISTER is answered statelessly (401, then 200): those answers are messages out too.
  t.equal(sample(metrics.text, 'sipbob_sip_messages_total{direction="in",kind="REGISTER"}'), 8, '8 REGISTERs in (4 devices, 401 first)');
  t.ok((sample(metrics.text, 'sipbob_sip_messages_total{direction="out",kind="4xx"}') ?? 0) >= 4, 'the 401s are counted out');
  t.ok((sample(metrics.text, 'sipbob_sip_messages_total{direction="out",kind="2xx"}') ?? 0) >= 4, 'the 200s are counted out');
  const missing = await request('GET', '/api/extensions/999');
  t.equal(missing.status, 404, 'unknown extension: 404 for the admin');
});

t.test('a device: own extension only, 403 for everything else', async (t) => {
  const own = await request('GET', '/api/extensions/200', { auth: basic('anna-desk') });
  t.equal(own.status, 200, 'anna-desk reads 200');
  t.equal((own.json() as Ext).number, '200');
  for (const [method, path] of [
    ['GET', '/api/extensions/100'],
    ['GET', '/api/extensions'],
    ['GET', '/api/calls'],
    ['GET', '/metrics'],
    ['GET', '/api/extensions/999'],
  ] as const) {
    const r = await request(method, path, { auth: basic('anna-desk') });
    t.equal(r.status, 403, `anna-desk ${method} ${path}: 403`);
  }
  const other = await patch('100', true, basic('anna-desk'));
  t.equal(other.status, 403, 'anna-desk PATCH 100: 403');
  t.equal((await ext('100')).busyOnBusy, false, '100 unchanged');
  const hot = await request('GET', '/api/extensions/200', { auth: basic('hotline-desk-1') });
  t.equal(hot.status, 403, 'hotline-desk-1 GET 200: 403');

  // A device changes its own extension: hotline-desk-1 turns Busy on Busy on for 100 (the
  // YAML says false; the SIGHUP test below checks that this survives a reload).
  const mine = await patch('100', true, basic('hotline-desk-1'));
  t.equal(mine.status, 200, 'hotline-desk-1 PATCH 100: 200');
  t.equal((mine.json() as Ext).busyOnBusy, true);
  t.equal((await ext('100')).busyOnBusy, true, 'admin sees the change');
});

t.test('wrong credentials: 401; repeated failures from one address are refused', async (t) => {
  const from = H.badLogin;
  t.equal((await request('GET', '/api/extensions/200', { auth: basic('anna-desk', 'wrong'), from })).status, 401, 'wrong password');
  t.equal((await request('GET', '/api/extensions/200', { auth: basic('anna-desk', PW['anna-soft']), from })).status, 401, "another device's password");
  t.equal((await request('GET', '/api/extensions', { auth: { raw: 'Bearer not-the-token' }, from })).status, 401, 'wrong admin token');

  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) statuses.push((await request('GET', '/api/calls', { auth: { raw: 'Bearer guess-' + i }, from: H.limiter })).status);
  t.same(statuses, [401, 401, 401, 401, 401], 'five wrong tokens: 401 each');
  const sixth = await request('GET', '/api/calls', { auth: { raw: 'Bearer guess-6' }, from: H.limiter });
  t.ok(sixth.status === 429 || sixth.ms >= 1000, `sixth failure from the same address is refused or slowed (got ${sixth.status} after ${sixth.ms} ms)`);
  const right = await request('GET', '/api/calls', { from: H.limiter });
  t.ok(right.status === 429 || right.status === 200, `right token from the refused address: ${right.status}`);
  t.equal((await request('GET', '/api/calls')).status, 200, 'other addresses are not affected');
});

t.test('schema errors: 400 with a clear message', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['{"busyOnBusy":"yes"}', 'a string', /busyOnBusy.*boolean|boolean.*busyOnBusy/i],
    ['{"busyOnBusy":1}', 'a number', /busyOnBusy.*boolean|boolean.*busyOnBusy/i],
    ['{}', 'no busyOnBusy', /busyOnBusy/],
    ['{"busyOnBusy":true,"ringTimeout":5}', 'an unknown key', /ringTimeout/],
    ['[true]', 'an array', /object|busyOnBusy/i],
    ['{"busyOnBusy": tru', 'broken JSON', /JSON/i],
  ];
  for (const [body, what, message] of cases) {
    const r = await request('PATCH', '/api/extensions/200', { body });
    t.equal(r.status, 400, `${what}: 400`);
    let parsed: { message?: string } = {};
    try {
      parsed = r.json() as { message?: string };
    } catch {
      t.fail(`${what}: the 400 body is not JSON: ${r.text}`);
    }
    t.match(parsed.message ?? '', message, `${what}: message "${parsed.message}"`);
  }
  const plain = await request('PATCH', '/api/extensions/200', { body: '{"busyOnBusy":false}', contentType: 'text/plain' });
  t.ok(plain.status === 415 || plain.status === 400, `text/plain body refused (${plain.status})`);
  t.match(plain.text, /application\/json/i, 'says that JSON is expected');
  const query = await request('GET', '/api/extensions/200?busyOnBusy=false');
  t.equal(query.status, 400, 'unknown query parameter: 400');
  const badNumber = await request('GET', '/api/extensions/%3Cscript%3E');
  t.equal(badNumber.status, 400, 'malformed extension number: 400');
  const unknown = await patch('999', true);
  t.equal(unknown.status, 404, 'PATCH of an unknown extension: 404');
  // A password sent as the value must not come back in the error.
  const echo = await patch('200', PW['anna-desk']);
  t.equal(echo.status, 400);
  t.notMatch(echo.text, PW['anna-desk'], 'the error does not echo the value sent');
  t.equal((await ext('200')).busyOnBusy, true, 'none of these changed 200');
});

t.test('PATCH while a call to 200 is up: false lets a second call ring, true gives 486', async (t) => {
  // The held call: trunk -> 200; anna-desk answers (and keeps ringing for further calls,
  // call waiting), anna-soft is cancelled ("Call completed elsewhere").
  const desk = await phone({ ...dev('anna-desk', H.annaDesk, P.annaDesk), scenario: 'op-phone-in-call.xml', register: false, calls: 2, ringMs: 300, timeoutSec: 40 });
  procs.push(desk);
  const soft = await phone({ ...dev('anna-soft', H.annaSoft, P.annaSoft), scenario: 'phone-ring-cancelled.xml', register: false, timeoutSec: 15 });
  procs.push(soft);
  const held = holdCall({ callIdPrefix: 'op-api-held', trigger: H.trigger, local: H.trunk, localPort: port(), remote, to: '200', from: 'carrier', timeoutSec: 40, label: 'held call trunk -> 200' });
  procs.push(held.proc);
  const up = await activeCallsOn(ext, '200', 1, 10000, 100);
  t.equal(up, true, 'the held call is up', { details: up !== true ? proxy.output(6000) : undefined });
  const softFirst = await soft.done;
  t.equal(softFirst.code, 0, 'anna-soft was cancelled when anna-desk answered', { details: softFirst.code !== 0 ? describe(softFirst) : undefined });
  const calls = await request('GET', '/api/calls');
  t.match(calls.json(), [{ extension: '200', direction: 'inbound', device: 'anna-desk', state: 'confirmed', startedAt: String }], '/api/calls shows the call');

  // Shared use, switched by anna-soft itself through the API.
  const off = await patch('200', false, basic('anna-soft'));
  t.equal(off.status, 200, 'anna-soft PATCH 200 busyOnBusy=false');
  t.equal((off.json() as Ext).busyOnBusy, false);
  const softAnswers = await phone({ ...dev('anna-soft', H.annaSoft, P.annaSoft), scenario: 'phone-answer.xml', register: false, ringMs: 600, timeoutSec: 15 });
  procs.push(softAnswers);
  const second = await call({ local: H.trunk, localPort: port(), remote, to: '200', from: 'call-waiting-trunk', pauseMs: 300, timeoutSec: 12 });
  t.equal(second.code, 0, 'busyOnBusy=false: the second call to 200 rings and is answered', { details: second.code !== 0 ? `${describe(second)}\n--- proxy\n${proxy.output(6000)}` : undefined });
  const sa = await softAnswers.done;
  t.equal(sa.code, 0, 'anna-soft answered the second call', { details: sa.code !== 0 ? describe(sa) : undefined });

  // One person again, switched back by the admin: 486 at once, nobody rings.
  const before = sample((await request('GET', '/metrics')).text, 'sipbob_calls_total{outcome="busy_on_busy"}') ?? 0;
  const on = await patch('200', true);
  t.equal(on.status, 200, 'admin PATCH 200 busyOnBusy=true');
  const idleSoft = await idlePhone({ ...dev('anna-soft', H.annaSoft, P.annaSoft), timeoutSec: 20 });
  procs.push(idleSoft);
  const started = Date.now();
  const third = await call({ local: H.trunk, localPort: port(), remote, to: '200', from: 'carrier', expect: 486, timeoutSec: 12 });
  const ms = Date.now() - started;
  t.equal(third.code, 0, `busyOnBusy=true: the third call gets 486 (${ms} ms)`, { details: third.code !== 0 ? `${describe(third)}\n--- proxy\n${proxy.output(6000)}` : undefined });
  t.ok(ms < 3000, `486 at once (${ms} ms)`);

  const metrics = await request('GET', '/metrics');
  t.equal(metrics.status, 200);
  t.match(metrics.text, /^sipbob_registered_devices(\{[^}]*\})? \d+/m, 'sipbob_registered_devices is exported');
  const after = sample(metrics.text, 'sipbob_calls_total{outcome="busy_on_busy"}');
  t.ok(after !== undefined && after > 0, `sipbob_calls_total{outcome="busy_on_busy"} > 0 (${after})`);
  t.equal((after ?? 0) - before, 1, 'exactly one more busy_on_busy call');
  t.ok((sample(metrics.text, 'sipbob_calls_total{outcome="answered"}') ?? 0) >= 2, 'the two answered calls are counted');
  t.equal(sample(metrics.text, 'sipbob_active_calls{extension="200"}'), 1, 'sipbob_active_calls{extension="200"} 1');

  // --- SIGHUP while the call is still up: extension 300 added, hotline-desk-2 removed, and
  // 200's YAML value flipped to false (the API said true: the API must win).
  const config = parse(readFileSync(proxy.configFile, 'utf8')) as { extensions: Array<{ number: string; busyOnBusy: boolean; devices: Array<{ username: string }> }> };
  config.extensions.find((e) => e.number === '100')!.devices = config.extensions.find((e) => e.number === '100')!.devices.filter((d) => d.username !== 'hotline-desk-2');
  config.extensions.find((e) => e.number === '200')!.busyOnBusy = false;
  config.extensions.push({ number: '300', name: 'Carl Weber', busyOnBusy: true, devices: [{ username: 'carl-desk', password: PW['carl-desk'] }] } as never);
  writeFileSync(proxy.configFile, stringify(config));
  const pid = proxyPid(proxy.configFile);
  t.ok(pid, `found the proxy's pid (${pid}) in /proc`);
  if (pid !== undefined) process.kill(pid, 'SIGHUP');
  const reloaded = await proxy.waitForLog((l) => l['msg'] === 'config reloaded', 5000).catch((e: Error) => e.message);
  t.type(reloaded, 'object', 'logs "config reloaded"', { details: typeof reloaded === 'string' ? reloaded : undefined });

  const all = (await request('GET', '/api/extensions')).json() as Ext[];
  t.same(all.map((e) => e.number).sort(), ['100', '200', '300'], 'extension 300 added');
  const e100 = all.find((e) => e.number === '100')!;
  const e200 = all.find((e) => e.number === '200')!;
  t.same(e100.devices.map((d) => d.username), ['hotline-desk-1'], 'hotline-desk-2 removed');
  t.equal(e100.devices[0]?.registrations.length, 1, 'hotline-desk-1 kept its registration');
  t.equal(e100.busyOnBusy, true, "100 keeps the device's API setting (YAML: false)");
  t.equal(e200.busyOnBusy, true, "200 keeps the admin's API setting (YAML now: false)");
  t.equal(e200.activeCalls, 1, 'the held call survived the reload');
  t.same(e200.devices.map((d) => d.registrations.length), [1, 1], 'anna-desk and anna-soft kept their registrations');
  const metricsAfter = await request('GET', '/metrics');
  t.equal(sample(metricsAfter.text, 'sipbob_registered_devices'), 3, 'sipbob_registered_devices 3 after the reload');
  const removed = await request('GET', '/api/extensions/100', { auth: basic('hotline-desk-2'), from: H.afterReload });
  t.equal(removed.status, 401, 'the removed device can no longer sign in');
  const carl = await request('GET', '/api/extensions/300', { auth: basic('carl-desk'), from: H.afterReload });
  t.equal(carl.status, 200, 'the new device can sign in to its extension');
  t.match(carl.json(), { number: '300', name: 'Carl Weber', busyOnBusy: true, activeCalls: 0 });

  const fourth = await call({ local: H.trunk, localPort: port(), remote, to: '200', from: 'carrier', expect: 486, timeoutSec: 12 });
  t.equal(fourth.code, 0, 'after the reload a call to 200 still gets 486 (API setting and held call kept)', { details: fourth.code !== 0 ? describe(fourth) : undefined });

  // End the held call; 200 is free again.
  await held.hangup();
  const [h, d] = await Promise.all([doneWithin(held.proc, 8000), doneWithin(desk, 8000)]);
  t.equal(h.code, 0, 'the held call hung up through the proxy', { details: h.code !== 0 ? `${describe(h)}\n--- proxy\n${proxy.output(6000)}` : undefined });
  t.equal(d.code, 0, 'anna-desk: held call answered and ended, second call rang and was cancelled', { details: d.code !== 0 ? describe(d) : undefined });
  t.equal(invitedCalls(d.messages).length, 2, 'anna-desk was invited to exactly two calls (not the 486 ones)');
  const s = await idleSoft.stop();
  t.same(invitedCalls(s.messages), [], 'anna-soft did not ring while 200 was busy');
  const free = await activeCallsOn(ext, '200', 0, 3000);
  t.equal(free, true, 'the BYE ended the call');
});

t.test('no response and no log line contains a password', async (t) => {
  const secrets = [...Object.values(PW), ...extensions.flatMap((e) => e.devices.map((d) => d.password))];
  t.ok(seen.length > 40, `${seen.length} responses checked`);
  const leaks: string[] = [];
  for (const { what, res } of seen) {
    const all = res.text + JSON.stringify(res.headers);
    for (const s of secrets) if (all.includes(s)) leaks.push(`${what} -> ${res.status} contains ${s}`);
  }
  t.same(leaks, [], 'no password in any response');
  const out = proxy.output(10_000_000);
  t.same(
    secrets.filter((s) => out.includes(s)),
    [],
    'no password in the proxy log',
  );
});
