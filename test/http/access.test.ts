/**
 * access.ts alone: a fastify instance with the access plugin and one route per access level,
 * driven by inject (no socket). The view knows one admin token and two devices.
 */
import t from 'tap';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { access, type Access } from '../../src/http/access.js';
import type { AdminView } from '../../src/http/view.js';

const TOKEN = 'access-test-token';
const DEVICES: Record<string, { password: string; extension: string }> = {
  'anna-desk': { password: 'pw-anna', extension: '200' },
  'hotline-1': { password: 'pw-hot', extension: '100' },
};

const view: AdminView = {
  listExtensions: () => [],
  getExtension: () => undefined,
  setBusyOnBusy: () => false,
  listCalls: () => [],
  endCall: () => false,
  removeRegistrations: () => false,
  deviceLogin: (u, p) => (DEVICES[u]?.password === p ? DEVICES[u]!.extension : undefined),
  adminToken: () => TOKEN,
  ready: () => true,
};

const warnings: string[] = [];
const log = pino({ level: 'warn' }, { write: (l: string) => void warnings.push(l) });

async function server(loginLimit?: { maxFailures: number; windowMs: number }): Promise<FastifyInstance> {
  const app = Fastify();
  await app.register(access, { view, log, loginLimit });
  const route = (url: string, level: Access | undefined): void => {
    app.get(url, level === undefined ? {} : { config: { access: level } }, async (req) => ({ principal: req.principal ?? null }));
  };
  route('/public', 'public');
  route('/admin', 'admin');
  route('/authenticated', 'authenticated');
  route('/ext/:number', 'own-extension');
  route('/unmarked', undefined);
  return app;
}

const admin = `Bearer ${TOKEN}`;
const basic = (u: string, p = DEVICES[u]!.password): string => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');

const app = await server();
t.teardown(() => app.close());

async function get(url: string, authorization?: string, headers: Record<string, string> = {}) {
  const r = await app.inject({ method: 'GET', url, headers: authorization ? { ...headers, authorization } : headers });
  return { status: r.statusCode, headers: r.headers, body: r.json() as Record<string, unknown> };
}

t.test('public: anyone, and no principal', async (t) => {
  const r = await get('/public');
  t.equal(r.status, 200);
  t.same(r.body, { principal: null });
  t.equal((await get('/public', 'Bearer wrong')).status, 200, 'wrong credentials do not matter');
});

t.test('no credentials: 401 with a Basic challenge, except for the portal', async (t) => {
  for (const url of ['/admin', '/authenticated', '/ext/200', '/unmarked']) {
    const r = await get(url);
    t.equal(r.status, 401, url);
    t.equal(r.headers['www-authenticate'], 'Basic realm="sipbob", charset="UTF-8"', `${url} challenges`);
    t.equal(r.body.statusCode, 401);
  }
  const portal = await get('/admin', undefined, { 'x-requested-with': 'sipbob-portal' });
  t.equal(portal.status, 401);
  t.equal(portal.headers['www-authenticate'], undefined, 'no browser dialog for the portal');
  t.equal((await get('/admin', 'Digest x')).status, 401, 'other schemes are no credentials');
  const head = await app.inject({ method: 'HEAD', url: '/admin' });
  t.equal(head.statusCode, 401, 'HEAD routes carry the level of their GET');
});

t.test('admin: the token opens every level', async (t) => {
  for (const url of ['/admin', '/authenticated', '/ext/200', '/ext/999', '/unmarked']) {
    const r = await get(url, admin);
    t.equal(r.status, 200, url);
    t.same(r.body, { principal: { role: 'admin' } }, `${url} sees the admin`);
  }
});

t.test('device: authenticated and its own extension; 403 for admin routes and other extensions', async (t) => {
  const anna = basic('anna-desk');
  const me = await get('/authenticated', anna);
  t.equal(me.status, 200);
  t.same(me.body, { principal: { role: 'device', username: 'anna-desk', extension: '200' } });
  t.equal((await get('/ext/200', anna)).status, 200, 'own extension');
  for (const url of ['/ext/100', '/ext/999', '/admin', '/unmarked']) {
    const r = await get(url, anna);
    t.equal(r.status, 403, url);
    t.equal(r.body.message, 'A device may only see and change its own extension');
  }
});

t.test('wrong credentials: 401 and a warning without the secret', async (t) => {
  warnings.length = 0;
  t.equal((await get('/authenticated', 'Bearer not-the-token')).status, 401);
  t.equal((await get('/authenticated', basic('anna-desk', 'guess'))).status, 401);
  t.equal((await get('/ext/200', basic('nobody', 'pw-anna'))).status, 401);
  t.equal(warnings.length, 3);
  t.match(JSON.parse(warnings[1]!), { msg: 'failed HTTP login', scheme: 'basic', username: 'anna-desk' });
  t.notOk(warnings.join('').includes('guess') || warnings.join('').includes('not-the-token'), 'no secret logged');
});

t.test('failed logins from one address: 429 on protected routes only', async (t) => {
  const limited = await server({ maxFailures: 2, windowMs: 60_000 });
  t.teardown(() => limited.close());
  const call = async (url: string, authorization?: string) =>
    (await limited.inject({ method: 'GET', url, headers: authorization ? { authorization } : {} })).statusCode;
  t.equal(await call('/admin', 'Bearer x'), 401);
  t.equal(await call('/admin', 'Bearer y'), 401);
  const blocked = await limited.inject({ method: 'GET', url: '/admin', headers: { authorization: admin } });
  t.equal(blocked.statusCode, 429, 'even the right token');
  t.ok(Number(blocked.headers['retry-after']) >= 1, 'Retry-After');
  t.equal(await call('/public'), 200, 'public routes stay open');
});
