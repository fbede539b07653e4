/**
 * Issue 12, item 8 (reverse proxies), against the built proxy over real sockets. Before
 * `http.trustProxy`, every client of a reverse proxy shared the proxy's address, so five typos
 * of one user got everyone behind the proxy 429. Now, with the proxy's address trusted:
 * - five wrong passwords from client A (X-Forwarded-For) lock out A only; client B, through the
 *   same proxy, still signs in and still gets 401 (not 429) for a typo;
 * - the failed-login log line names the client (`ip`) and the proxy (`proxy`);
 * - a peer that is not a trusted proxy cannot choose its address with X-Forwarded-For: its
 *   failures count against its own address, whatever it forwards;
 * - a SIGHUP that removes the proxy from trustProxy applies at once.
 *
 * Addresses: 127.0.14.1 plays the reverse proxy, 127.0.14.2 a direct client; the forwarded
 * clients are documentation addresses (198.51.100.x). Ports: SIP portBlock(15), HTTP 19195.
 */
import t from 'tap';
import { portBlock } from './harness.js';
import { baseConfig, basic, request, start } from './http-kit.js';

const P = portBlock(15);
const HTTP_PORT = 19195;
const PASSWORD = 'trust-pw-anna-5521';
const PROXY = '127.0.14.1';
const DIRECT = '127.0.14.2';
const LIMIT = 5; // failed logins per address and minute (src/http/auth.ts)

t.test('behind a trusted reverse proxy, one client guessing locks out that client only', async (t) => {
  const config = baseConfig({ sipPort: P.sip, httpPort: HTTP_PORT, password: PASSWORD, http: { trustProxy: [`${PROXY}/32`] } });
  const proxy = await start(config);
  t.teardown(() => proxy.stop());

  const login = (from: string, password: string, forwardedFor?: string) =>
    request({
      port: HTTP_PORT,
      path: '/api/extensions/200',
      localAddress: from,
      headers: { authorization: basic('anna-desk', password), ...(forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor }) },
    }).then((r) => r.status);

  // Client A types the password wrong five times, through the proxy.
  for (let i = 1; i <= LIMIT; i++) t.equal(await login(PROXY, `typo-${i}`, '198.51.100.1'), 401, `client A, typo ${i}: 401`);
  t.equal(await login(PROXY, PASSWORD, '198.51.100.1'), 429, 'client A is locked out, even with the right password');

  // Client B comes through the same proxy: not locked out.
  t.equal(await login(PROXY, PASSWORD, '198.51.100.2'), 200, 'client B through the same proxy signs in');
  t.equal(await login(PROXY, 'b-typo', '198.51.100.2'), 401, 'client B: a typo is 401, not 429');
  // A's own entry in X-Forwarded-For does not help it: the proxy appends the real address.
  t.equal(await login(PROXY, PASSWORD, '198.51.100.2, 198.51.100.1'), 429, 'client A claiming to be B (left of its own address): still 429');
  t.equal(await login(PROXY, PASSWORD, '198.51.100.1, 198.51.100.2'), 200, "B's request with a forged entry to its left: B's");

  const failed = await proxy.waitForLog((l) => l['msg'] === 'failed HTTP login' && l['ip'] === '198.51.100.1');
  t.match(failed, { ip: '198.51.100.1', proxy: PROXY, username: 'anna-desk' }, 'the log line names the client and the proxy');
  t.notMatch(JSON.stringify(proxy.logs), /typo-|b-typo|trust-pw-anna/, 'no password in the log');

  // A direct client is not a trusted proxy: what it forwards is ignored.
  for (let i = 1; i <= LIMIT; i++) t.equal(await login(DIRECT, `direct-typo-${i}`, `198.51.100.${100 + i}`), 401, `direct client, typo ${i} (forwarding a new address each time): 401`);
  t.equal(await login(DIRECT, PASSWORD, '198.51.100.200'), 429, 'the direct client is locked out under its own address');
  const direct = await proxy.waitForLog((l) => l['msg'] === 'failed HTTP login' && l['ip'] === DIRECT);
  t.notOk('proxy' in direct, 'its log line names its own address only');
  t.equal(await login(PROXY, PASSWORD, '198.51.100.3'), 200, 'the clients of the proxy are not affected');

  // The operator removes the proxy from trustProxy: from now on its clients count as the proxy.
  proxy.reload({ ...config, http: { ...(config['http'] as object), trustProxy: [] } });
  await proxy.waitForLog((l) => l['msg'] === 'config reloaded', 10_000);
  for (let i = 1; i <= LIMIT; i++) t.equal(await login(PROXY, `after-reload-${i}`, `198.51.100.${10 + i}`), 401, `after the reload, typo ${i} via the proxy: 401`);
  t.equal(await login(PROXY, PASSWORD, '198.51.100.20'), 429, 'after the reload, X-Forwarded-For is ignored: the proxy address is locked out');
});
