/**
 * The HTTP API over real HTTP (fastify on 127.0.0.1, global fetch) against an in-test fake
 * AdminView and a real metrics registry. The fake deliberately leaks a `password` field in its
 * device objects, to prove the response schemas never let one through.
 */
import t from 'tap';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startHttp, type HttpServer } from '../../src/http/server.js';
import { createMetrics, type MetricsSource } from '../../src/metrics/metrics.js';
import type { AdminView, CallView, ExtensionView } from '../../src/http/view.js';

const ADMIN_TOKEN = 'admin-token-Zq8Vx3';
const DEVICES: Record<string, { password: string; extension: string }> = {
  'hotline-desk-1': { password: 'pw-hotline-one-4711', extension: '100' },
  'hotline-desk-2': { password: 'pw-hotline-two-4712', extension: '100' },
  'anna-desk': { password: 'pw-anna-desk-4713', extension: '200' },
  'anna-mobile': { password: 'pw:anna:mobile-4714', extension: '200' }, // colons are legal in a password
};
const SECRETS = [ADMIN_TOKEN, ...Object.values(DEVICES).map((d) => d.password)];

class FakeView implements AdminView {
  isReady = false;
  token: string | undefined = ADMIN_TOKEN;
  changes: Array<[string, boolean]> = [];
  private readonly bob = new Map([['100', false], ['200', true]]);
  private readonly names = new Map([['100', 'Service Hotline'], ['200', 'Anna Schmidt']]);

  private ext(number: string): ExtensionView {
    const devices = Object.entries(DEVICES)
      .filter(([, d]) => d.extension === number)
      .map(([username, d]) => ({
        username,
        password: d.password, // a careless implementation; must be stripped by the server
        registrations:
          username === 'anna-desk'
            ? [{ contact: 'sip:anna-desk@192.0.2.21:5062', expiresAt: new Date(Date.now() + 540_000).toISOString(), source: 'udp:192.0.2.21:5062', transport: 'udp', userAgent: 'Yealink T54W' }]
            : [],
      }));
    return { number, name: this.names.get(number)!, busyOnBusy: this.bob.get(number)!, activeCalls: number === '200' ? 1 : 0, devices };
  }
  listExtensions(): ExtensionView[] {
    return [...this.bob.keys()].map((n) => this.ext(n));
  }
  getExtension(number: string): ExtensionView | undefined {
    return this.bob.has(number) ? this.ext(number) : undefined;
  }
  setBusyOnBusy(number: string, value: boolean): boolean {
    if (!this.bob.has(number)) return false;
    this.changes.push([number, value]);
    this.bob.set(number, value);
    return true;
  }
  listCalls(): CallView[] {
    const now = new Date().toISOString();
    return [{ id: 'c1;a;b', extension: '200', direction: 'inbound', device: 'anna-desk', state: 'confirmed', startedAt: now, aliveAt: { caller: now, callee: now } }];
  }
  endCall(id: string): boolean {
    return id === 'c1;a;b';
  }
  removeRegistrations(username: string): boolean {
    return username in DEVICES;
  }
  deviceLogin(username: string, password: string): string | undefined {
    const d = DEVICES[username];
    return d !== undefined && d.password === password ? d.extension : undefined;
  }
  adminToken(): string | undefined {
    return this.token;
  }
  ready(): boolean {
    return this.isReady;
  }
}

const source: MetricsSource = {
  registeredDevices: () => 1,
  contacts: () => 1,
  activeCallsByExtension: () => new Map([['200', 1]]),
  transactionsInFlight: () => 3,
  endedCalls: () => new Map([['bye', 2], ['keepalive', 1]]),
  keepaliveProbes: () => ({ sent: 7, failed: 1 }),
};

const logLines: string[] = [];
const logger = pino(
  { level: 'debug' },
  new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(chunk.toString());
      cb();
    },
  }),
);

/** Every response seen, to scan for secrets at the end. */
const seen: string[] = [];

const admin = `Bearer ${ADMIN_TOKEN}`;
function basic(username: string, password = DEVICES[username]!.password): string {
  return 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64');
}

interface Res {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

async function call(
  srv: HttpServer,
  method: string,
  path: string,
  o: { auth?: string; body?: string | object; type?: string | null; headers?: Record<string, string> } = {},
): Promise<Res> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.auth) headers['authorization'] = o.auth;
  let body: string | undefined;
  if (o.body !== undefined) {
    body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
    if (o.type !== null) headers['content-type'] = o.type ?? 'application/json';
  }
  const res = await fetch(`http://127.0.0.1:${srv.address.port}${path}`, { method, headers, body });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  seen.push(`${res.status} ${JSON.stringify([...res.headers])}\n${text}`);
  return { status: res.status, headers: res.headers, text, json };
}

const view = new FakeView();
const { registry, sip } = createMetrics(source);
const srv = await startHttp({ host: '127.0.0.1', port: 0, view, metrics: registry, logger });
t.teardown(() => srv.close());

const PROTECTED: Array<[string, string]> = [
  ['GET', '/metrics'],
  ['GET', '/api/me'],
  ['GET', '/api/extensions'],
  ['GET', '/api/extensions/200'],
  ['PATCH', '/api/extensions/200'],
  ['GET', '/api/calls'],
  ['DELETE', '/api/calls/c1%3Ba%3Bb'],
  ['DELETE', '/api/devices/anna-desk/registrations'],
];

t.test('healthz: 503 until the view is ready, then 200', async (t) => {
  const a = await call(srv, 'GET', '/healthz');
  t.equal(a.status, 503);
  view.isReady = true;
  const b = await call(srv, 'GET', '/healthz');
  t.equal(b.status, 200);
  t.same(b.json, { status: 'ok' });
});

t.test('anonymous: 401 everywhere but /healthz and /', async (t) => {
  for (const [method, path] of PROTECTED) {
    const r = await call(srv, method, path, method === 'PATCH' ? { body: { busyOnBusy: false } } : {});
    t.equal(r.status, 401, `${method} ${path}`);
    t.equal(r.headers.get('www-authenticate'), 'Basic realm="sipbob", charset="UTF-8"', `${method} ${path} challenges`);
  }
  const portal = await call(srv, 'GET', '/api/me', { headers: { 'x-requested-with': 'sipbob-portal' } });
  t.equal(portal.status, 401);
  t.equal(portal.headers.get('www-authenticate'), null, 'no browser Basic dialog for the portal');
  t.same(view.changes, [], 'nothing changed');
  t.equal((await call(srv, 'GET', '/')).status, 200);
});

t.test('admin may do everything', async (t) => {
  const me = await call(srv, 'GET', '/api/me', { auth: admin });
  t.same(me.json, { role: 'admin' });

  const list = await call(srv, 'GET', '/api/extensions', { auth: admin });
  t.equal(list.status, 200);
  const exts = list.json as ExtensionView[];
  t.same(exts.map((e) => e.number), ['100', '200']);
  t.same(Object.keys(exts[1]!).sort(), ['activeCalls', 'busyOnBusy', 'devices', 'name', 'number']);
  t.same(Object.keys(exts[1]!.devices[0]!).sort(), ['registrations', 'username'], 'device objects carry no password');
  t.same(exts[1]!.devices[0]!.registrations[0]!.userAgent, 'Yealink T54W');

  const one = await call(srv, 'GET', '/api/extensions/100', { auth: admin });
  t.equal(one.status, 200);
  t.match(one.json, { number: '100', name: 'Service Hotline', busyOnBusy: false, activeCalls: 0 });

  const missing = await call(srv, 'GET', '/api/extensions/999', { auth: admin });
  t.equal(missing.status, 404);
  t.match(missing.json, { statusCode: 404, message: 'Extension 999 not found' });
  const missingPatch = await call(srv, 'PATCH', '/api/extensions/999', { auth: admin, body: { busyOnBusy: true } });
  t.equal(missingPatch.status, 404);

  const calls = await call(srv, 'GET', '/api/calls', { auth: admin });
  t.equal(calls.status, 200);
  t.match(calls.json, [{ id: 'c1;a;b', extension: '200', direction: 'inbound', device: 'anna-desk', state: 'confirmed' }]);

  const patch = await call(srv, 'PATCH', '/api/extensions/100', { auth: admin, body: { busyOnBusy: true } });
  t.equal(patch.status, 200);
  t.match(patch.json, { number: '100', busyOnBusy: true });
  t.same(view.changes.at(-1), ['100', true], 'the view recorded the change');
  t.equal(patch.headers.get('cache-control'), 'no-store');

  const metrics = await call(srv, 'GET', '/metrics', { auth: admin });
  t.equal(metrics.status, 200);
  t.match(metrics.headers.get('content-type'), /^text\/plain/);
});

t.test('device: only its own extension, only busyOnBusy', async (t) => {
  const auth = basic('anna-desk');
  t.same((await call(srv, 'GET', '/api/me', { auth })).json, { role: 'device', username: 'anna-desk', extension: '200' });

  const own = await call(srv, 'GET', '/api/extensions/200', { auth });
  t.equal(own.status, 200);
  t.match(own.json, { number: '200', name: 'Anna Schmidt' });

  for (const [method, path] of [
    ['GET', '/api/extensions'],
    ['GET', '/api/extensions/100'],
    ['GET', '/api/extensions/999'], // not 404: a device learns nothing about other numbers
    ['PATCH', '/api/extensions/100'],
    ['GET', '/api/calls'],
    ['DELETE', '/api/calls/c1%3Ba%3Bb'],
    ['DELETE', '/api/devices/anna-desk/registrations'],
    ['GET', '/metrics'],
  ] as const) {
    const r = await call(srv, method, path, method === 'PATCH' ? { auth, body: { busyOnBusy: true } } : { auth });
    t.equal(r.status, 403, `${method} ${path}`);
    t.match(r.json, { statusCode: 403, error: 'Forbidden' });
  }

  const before = view.changes.length;
  const patch = await call(srv, 'PATCH', '/api/extensions/200', { auth: basic('anna-mobile'), body: { busyOnBusy: false } });
  t.equal(patch.status, 200, 'a password with colons works');
  t.match(patch.json, { number: '200', busyOnBusy: false });
  t.same(view.changes.slice(before), [['200', false]]);

  const colleague = await call(srv, 'GET', '/api/extensions/100', { auth: basic('hotline-desk-2') });
  t.equal(colleague.status, 200, 'the other extension\'s device reads its own');

  // A device sees its own registrations, not the addresses of its colleagues' devices.
  const mine = await call(srv, 'GET', '/api/extensions/200', { auth: basic('anna-desk') });
  t.equal((mine.json as ExtensionView).devices.find((d) => d.username === 'anna-desk')!.registrations.length, 1, 'own registration listed');
  const other = await call(srv, 'GET', '/api/extensions/200', { auth: basic('anna-mobile') });
  t.same((other.json as ExtensionView).devices.find((d) => d.username === 'anna-desk')!.registrations, [], 'a colleague\'s registration is hidden');
  const admin = await call(srv, 'GET', '/api/extensions/200', { auth: `Bearer ${ADMIN_TOKEN}` });
  t.equal((admin.json as ExtensionView).devices.find((d) => d.username === 'anna-desk')!.registrations.length, 1, 'the admin sees it');
});

t.test('wrong credentials: 401 and a warn log without the password', async (t) => {
  const before = logLines.length;
  const r = await call(srv, 'GET', '/api/extensions/200', { auth: basic('anna-desk', 'guess-PW-0001') });
  t.equal(r.status, 401);
  const tok = await call(srv, 'GET', '/api/extensions', { auth: 'Bearer wrong-token-0002' });
  t.equal(tok.status, 401);
  const lines = logLines.slice(before).map((l) => JSON.parse(l) as Record<string, unknown>);
  const warns = lines.filter((l) => l['msg'] === 'failed HTTP login');
  t.equal(warns.length, 2);
  t.match(warns[0], { level: 40, username: 'anna-desk', scheme: 'basic', ip: '127.0.0.1' });
  const text = logLines.slice(before).join('');
  t.notMatch(text, 'guess-PW-0001');
  t.notMatch(text, 'wrong-token-0002');
  // No token configured: nobody is admin.
  view.token = undefined;
  t.equal((await call(srv, 'GET', '/api/calls', { auth: 'Bearer ' })).status, 401);
  view.token = ADMIN_TOKEN;
});

t.test('PATCH body validation', async (t) => {
  const cases: Array<[string, string | object, RegExp]> = [
    ['string instead of boolean', { busyOnBusy: 'true' }, /body\/busyOnBusy must be boolean/],
    ['number instead of boolean', { busyOnBusy: 1 }, /body\/busyOnBusy must be boolean/],
    ['extra key', { busyOnBusy: true, ringTimeout: 5 }, /body has unknown property "ringTimeout"/],
    ['missing key', {}, /body must have property "busyOnBusy"/],
    ['array', [true], /body must be object/],
    ['null', 'null', /body must be object/],
    ['broken JSON quoting a password', '{"busyOnBusy": tru, "password": "pw-anna-desk-4713"', /^Body is not valid JSON$/],
    ['empty body', '', /Body must not be empty/],
  ];
  const before = view.changes.length;
  for (const [name, body, message] of cases) {
    const r = await call(srv, 'PATCH', '/api/extensions/200', { auth: admin, body });
    t.equal(r.status, 400, name);
    t.match(r.json, { statusCode: 400, error: 'Bad Request', message }, name);
  }
  t.equal(view.changes.length, before, 'no invalid body reached the view');

  const text = await call(srv, 'PATCH', '/api/extensions/200', { auth: admin, body: 'busyOnBusy=true', type: 'text/plain' });
  t.equal(text.status, 415);
  t.match(text.json, { message: 'Content-Type must be application/json' });
  const form = await call(srv, 'PATCH', '/api/extensions/200', { auth: admin, body: 'busyOnBusy=true', type: 'application/x-www-form-urlencoded' });
  t.equal(form.status, 415);
  const none = await call(srv, 'PATCH', '/api/extensions/200', { auth: admin, body: '{"busyOnBusy":true}', type: null });
  t.equal(none.status, 415, 'no Content-Type');
  const noBody = await call(srv, 'PATCH', '/api/extensions/200', { auth: admin });
  t.equal(noBody.status, 415, 'no body, no Content-Type');

  const charset = await call(srv, 'PATCH', '/api/extensions/200', { auth: admin, body: { busyOnBusy: true }, type: 'application/json; charset=utf-8' });
  t.equal(charset.status, 200, 'charset parameter is fine');

  const param = await call(srv, 'GET', '/api/extensions/a%20b', { auth: admin });
  t.equal(param.status, 400);
  t.match(param.json, { message: 'params/number is not a valid extension number' });
  const query = await call(srv, 'GET', '/api/extensions?x=1', { auth: admin });
  t.equal(query.status, 400);
  t.match(query.json, { message: /querystring has unknown property "x"/ });

  const del = await call(srv, 'DELETE', '/api/extensions/200', { auth: admin });
  t.equal(del.status, 405);
  t.equal(del.headers.get('allow'), 'GET, HEAD, PATCH');
  t.equal((await call(srv, 'GET', '/nope')).status, 404);
});

t.test('metrics: names and counts from the hot-path counters', async (t) => {
  for (let i = 0; i < 3; i++) sip.request('INVITE');
  sip.request('REGISTER');
  sip.request('XYZZY'); // unknown method: counted as "other", never a new series
  sip.sent(Buffer.from('SIP/2.0 200 OK\r\n'));
  sip.sent(Buffer.from('SIP/2.0 404 Not Found\r\n'));
  sip.sent(Buffer.from('SIP/2.0 404 Not Found\r\n'));
  sip.callOutcome('busy-on-busy');
  sip.callOutcome('answered');
  sip.callOutcome('answered');
  const r = await call(srv, 'GET', '/metrics', { auth: admin });
  t.equal(r.status, 200);
  const m = r.text;
  for (const line of [
    'sipbob_registered_devices 1',
    'sipbob_contacts 1',
    'sipbob_active_calls{extension="200"} 1',
    'sipbob_transactions_in_flight 3',
    'sipbob_sip_messages_total{direction="in",kind="INVITE"} 3',
    'sipbob_sip_messages_total{direction="in",kind="REGISTER"} 1',
    'sipbob_sip_messages_total{direction="in",kind="other"} 1',
    'sipbob_sip_messages_total{direction="out",kind="2xx"} 1',
    'sipbob_sip_messages_total{direction="out",kind="4xx"} 2',
    'sipbob_calls_total{outcome="busy_on_busy"} 1',
    'sipbob_calls_total{outcome="answered"} 2',
    'sipbob_calls_total{outcome="no_answer"} 0',
    'sipbob_calls_ended_total{reason="bye"} 2',
    'sipbob_calls_ended_total{reason="keepalive"} 1',
    'sipbob_keepalive_probes_sent_total 7',
    'sipbob_keepalive_probes_failed_total 1',
    '# TYPE sipbob_sip_messages_total counter',
  ]) {
    t.ok(m.split('\n').includes(line), line);
  }
  t.match(m, /^nodejs_eventloop_lag_seconds \d/m, 'event-loop lag');
  t.notMatch(m, /XYZZY/);

  // A second scrape keeps the counters monotonic (not doubled, not reset).
  sip.request('INVITE');
  const again = await call(srv, 'GET', '/metrics', { auth: admin });
  t.ok(again.text.split('\n').includes('sipbob_sip_messages_total{direction="in",kind="INVITE"} 4'));
});

t.test('portal page: HTML with a strict CSP', async (t) => {
  const r = await call(srv, 'GET', '/');
  t.equal(r.status, 200);
  t.match(r.headers.get('content-type'), /^text\/html; charset=utf-8/);
  t.match(r.headers.get('content-security-policy'), /^default-src 'none'; script-src 'self'; style-src 'self';/);
  t.notMatch(r.headers.get('content-security-policy'), /unsafe/, 'no inline script or style allowed');
  t.equal(r.headers.get('x-frame-options'), 'DENY');
  t.match(r.text, '<meta name="viewport"');
});

t.test('brute force: 429 after 5 failures from one address, until the window passes', async (t) => {
  const bf = await startHttp({ host: '127.0.0.1', port: 0, view, metrics: registry, logger, loginLimit: { windowMs: 1500 } });
  t.teardown(() => bf.close());
  for (let i = 0; i < 5; i++) {
    t.equal((await call(bf, 'GET', '/api/me', { auth: basic('anna-desk', `guess-${i}`) })).status, 401, `failure ${i + 1}`);
  }
  const blocked = await call(bf, 'GET', '/api/me', { auth: basic('anna-desk') });
  t.equal(blocked.status, 429, 'even the right password is refused now');
  const retry = Number(blocked.headers.get('retry-after'));
  t.ok(retry >= 1 && retry <= 2, `Retry-After ${retry}`);
  t.equal((await call(bf, 'GET', '/api/extensions', { auth: admin })).status, 429, 'the admin token too');
  t.equal((await call(bf, 'GET', '/healthz')).status, 200, 'health checks are not affected');
  await new Promise((r) => setTimeout(r, 1600));
  t.equal((await call(bf, 'GET', '/api/me', { auth: basic('anna-desk') })).status, 200, 'served again after the window');
});

t.test('no response and no log line contains a password or the token', async (t) => {
  t.ok(seen.length > 50, `${seen.length} responses scanned`);
  const all = seen.join('\n') + logLines.join('');
  for (const secret of SECRETS) {
    t.notOk(all.includes(secret), `${secret.slice(0, 6)}… never appears`);
    t.notOk(all.includes(Buffer.from(secret).toString('base64')), 'not even base64');
  }
  t.notMatch(all, /"password"/);
});

t.test('outgoingKind: the label of an outgoing message from its first bytes', async (t) => {
  const { outgoingKind } = await import('../../src/metrics/metrics.js');
  const k = (s: string) => outgoingKind(Buffer.from(s));
  t.equal(k('SIP/2.0 180 Ringing\r\n'), '1xx');
  t.equal(k('SIP/2.0 200 OK\r\n'), '2xx');
  t.equal(k('SIP/2.0 486 Busy Here\r\n'), '4xx');
  t.equal(k('INVITE sip:a@b SIP/2.0\r\n'), 'INVITE');
  t.equal(k('INFO sip:a@b SIP/2.0\r\n'), 'INFO');
  t.equal(k('ACK sip:a@b SIP/2.0\r\n'), 'ACK');
  t.equal(k('CANCEL sip:a@b SIP/2.0\r\n'), 'CANCEL');
  t.equal(k('REFER sip:a@b SIP/2.0\r\n'), 'REFER');
  t.equal(k('REGISTER sip:b SIP/2.0\r\n'), 'REGISTER');
  t.equal(k('INVITEX sip:a@b SIP/2.0\r\n'), 'INVITEX', 'a longer method is not mistaken for a known one');
  t.equal(k('FOO sip:a@b SIP/2.0\r\n'), 'FOO');
});

t.test('statusKind: the label of a received response, one per status class', async (t) => {
  const { statusKind } = await import('../../src/metrics/metrics.js');
  t.same([100, 183, 200, 302, 486, 503, 603, 699].map(statusKind), ['1xx', '1xx', '2xx', '3xx', '4xx', '5xx', '6xx', '6xx']);
  t.equal(statusKind(99), 'other', 'outside 100-699 (the parser never passes one)');
  t.equal(statusKind(700), 'other');
});
