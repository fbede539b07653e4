/**
 * Issue 12, item 8 (HTTPS), against the built proxy over real sockets: with `http.https` the
 * API, /metrics and /healthz are served over TLS with tls.cert/tls.key; on SIGHUP the files
 * are read again and new connections get the new certificate while an open connection keeps
 * working; a bad file on SIGHUP is logged and the running certificate stays; a bad file at
 * start stops the start with a message naming the key. Also deploy/healthcheck.mjs (the
 * Docker HEALTHCHECK) over https and against a closed port.
 *
 * Certificates: a throwaway CA and server certificates for 127.0.0.1 made with openssl.
 * Ports: SIP from portBlock(14), HTTP 19191-19193.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ADMIN_TOKEN, portBlock, ROOT } from './harness.js';
import { baseConfig, basic, request, start, type Running } from './http-kit.js';
import { makeCa, makeCert } from '../support/test-certs.js';

const P = portBlock(14);
const HTTP_PORT = 19191;
const PASSWORD = 'https-pw-anna-7731';
const HEALTHCHECK = path.join(ROOT, 'deploy', 'healthcheck.mjs');

const ca = makeCa();
t.teardown(() => ca.remove());
const first = makeCert(ca, 'first', 'sipbob-first');
const second = makeCert(ca, 'second', 'sipbob-second');

/** The files the config names; tests replace their contents as an operator's renewal would. */
const live = mkdtempSync(path.join(tmpdir(), 'sipbob-e2e-https-live-'));
const LIVE = { cert: path.join(live, 'fullchain.pem'), key: path.join(live, 'privkey.pem') };
/** Replaces the live files by rename (as certbot's symlink swap: never a half-written file). */
function install(cert: { certFile: string; keyFile: string }): void {
  for (const [from, to] of [
    [cert.certFile, LIVE.cert],
    [cert.keyFile, LIVE.key],
  ] as const) {
    copyFileSync(from, `${to}.new`);
    renameSync(`${to}.new`, to);
  }
}

function healthcheck(url?: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [HEALTHCHECK, ...(url === undefined ? [] : [url])], { encoding: 'utf8', timeout: 10_000, env: { ...process.env, SIPBOB_HEALTH_URL: '' } });
  return { status: r.status, stderr: r.stderr };
}

t.test('https: served over TLS, certificate swapped on SIGHUP without dropping connections', async (t) => {
  install(first);
  const config = baseConfig({ sipPort: P.sip, httpPort: HTTP_PORT, password: PASSWORD, http: { https: true }, extra: { tls: LIVE } });
  const proxy: Running = await start(config);
  t.teardown(() => proxy.stop());
  const get = (p: string, more: { headers?: Record<string, string>; agent?: https.Agent } = {}) =>
    request({ port: HTTP_PORT, path: p, ca: ca.pem, ...more });

  const loaded = await proxy.waitForLog((l) => l['msg'] === 'https certificate loaded');
  t.match(loaded['certificate'], { subject: 'CN=sipbob-first', fingerprint256: first.fingerprint256, expired: false }, 'the start logs which certificate is served');

  const health = await get('/healthz');
  t.equal(health.status, 200, '/healthz over https');
  t.same(JSON.parse(health.text), { status: 'ok' });
  t.equal(health.fingerprint256, first.fingerprint256, 'the configured certificate, verified against the test CA for 127.0.0.1');
  t.equal((await get('/api/extensions', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status, 200, 'the admin API over https');
  t.equal((await get('/api/extensions/200', { headers: { authorization: basic('anna-desk', PASSWORD) } })).status, 200, 'a device login over https');
  const metrics = await get('/metrics', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  t.equal(metrics.status, 200, '/metrics over https');
  t.match(metrics.text, /sipbob_registered_devices/);
  t.equal((await get('/')).status, 200, 'the portal over https');
  const plain = await request({ port: HTTP_PORT, path: '/healthz' }).then(
    (r) => `HTTP ${r.status}`,
    (e: Error) => e.message,
  );
  t.not(plain, 'HTTP 200', `no plain HTTP on the https port (${plain})`);

  t.equal(healthcheck(`https://127.0.0.1:${HTTP_PORT}/healthz`).status, 0, 'deploy/healthcheck.mjs: 0 over https');

  // One connection opened before the reload and kept open across it.
  const keep = new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.pem });
  t.teardown(() => keep.destroy());
  const before = await get('/healthz', { agent: keep });
  t.equal(before.fingerprint256, first.fingerprint256, 'the kept connection: first certificate');

  install(second);
  proxy.reload();
  const reloaded = await proxy.waitForLog((l) => l['msg'] === 'https certificate reloaded', 10_000).catch((e: Error) => e);
  if (!t.notOk(reloaded instanceof Error, 'SIGHUP: "https certificate reloaded" logged', { details: String(reloaded) })) return;
  t.match((reloaded as Record<string, unknown>)['certificate'], { subject: 'CN=sipbob-second', fingerprint256: second.fingerprint256 });

  const after = await get('/healthz');
  t.equal(after.status, 200);
  t.equal(after.fingerprint256, second.fingerprint256, 'a new connection gets the new certificate');
  const kept = await get('/healthz', { agent: keep });
  t.equal(kept.status, 200, 'the connection opened before the reload still works');
  t.ok(kept.reusedSocket, '...and is the same connection (not dropped and reopened)');
  t.equal(kept.fingerprint256, first.fingerprint256, '...with the certificate it was opened with');

  // A broken renewal: the proxy says so and keeps serving the certificate it has.
  writeFileSync(LIVE.cert, 'half a certificate\n');
  proxy.reload();
  const refused = await proxy.waitForLog((l) => String(l['msg']).startsWith('https certificate not reloaded'), 10_000).catch((e: Error) => e);
  if (!t.notOk(refused instanceof Error, 'SIGHUP with a bad certificate: logged', { details: String(refused) })) return;
  t.equal((refused as Record<string, unknown>)['level'], 50, 'at error level');
  t.match((refused as Record<string, unknown>)['error'], /^tls\.cert: ".*fullchain\.pem" holds no PEM certificate$/, 'naming the key and the file');
  const still = await get('/healthz');
  t.equal(still.status, 200, 'still serving');
  t.equal(still.fingerprint256, second.fingerprint256, '...with the last good certificate');

  await proxy.stop();
  t.equal(await proxy.exited, 0, 'stops cleanly');
  const down = healthcheck(`https://127.0.0.1:${HTTP_PORT}/healthz`);
  t.equal(down.status, 1, 'deploy/healthcheck.mjs: 1 when nothing answers');
  t.match(down.stderr, /ECONNREFUSED/);
});

t.test('a bad certificate or key at start: no start, and the message names the key', async (t) => {
  const cases: Array<[string, { cert: string; key: string }, RegExp]> = [
    ['missing certificate file', { cert: path.join(live, 'missing.pem'), key: second.keyFile }, /^tls\.cert: cannot read ".*missing\.pem" \(ENOENT\)$/],
    ['key of another certificate', { cert: first.certFile, key: second.keyFile }, /^tls\.key: ".*second\.key" is not the key of the certificate in ".*first\.pem"$/],
  ];
  let i = 1;
  for (const [what, tls, message] of cases) {
    const config = baseConfig({ sipPort: P.sip + i, httpPort: HTTP_PORT + i, password: PASSWORD, http: { https: true }, extra: { tls } });
    i++;
    const err = await start(config).then(
      async (p) => {
        await p.stop();
        return undefined;
      },
      (e: Error) => e.message,
    );
    if (!t.ok(err, `${what}: the proxy does not start`)) continue;
    const fatal = /"msg":"start failed"/.test(err!) ? JSON.parse(err!.split('\n').find((l) => l.includes('"start failed"'))!) : undefined;
    t.ok(fatal, `${what}: a "start failed" line`, { details: err });
    t.equal(fatal?.level, 60, 'at fatal level');
    t.match(fatal?.err?.message, message, `${what}: ${fatal?.err?.message}`);
  }
});

t.test('deploy/healthcheck.mjs over plain http', async (t) => {
  const config = baseConfig({ sipPort: P.sip + 3, httpPort: HTTP_PORT + 3, password: PASSWORD });
  const proxy = await start(config);
  t.teardown(() => proxy.stop());
  t.equal(healthcheck(`http://127.0.0.1:${HTTP_PORT + 3}/healthz`).status, 0, 'exit 0 while /healthz is 200');
  const notFound = healthcheck(`http://127.0.0.1:${HTTP_PORT + 3}/nothing-here`);
  t.equal(notFound.status, 1, 'exit 1 for another status');
  t.match(notFound.stderr, /HTTP 404/);
});
