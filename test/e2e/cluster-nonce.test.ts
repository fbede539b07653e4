/**
 * Issue 14, item 6, end to end: nonces are accepted by every instance. Two instances sip-a and
 * sip-b share one redis-server (cluster-kit.ts); a device speaks SIP over its own UDP socket
 * (SIPp keeps a registration on one remote): it sends REGISTER to one instance, takes the 401's
 * nonce and answers it to the other one, which must accept it (200) and list the binding on
 * both instances. A tampered nonce is refused (401), so the check is not "accept anything".
 * Then the same with `auth.nonceSecret` in both configs and no secret in Redis; and an
 * instance started while Redis is down takes up the shared secret once Redis is back.
 * Port block 26, Redis 26383.
 */
import t, { type Test } from 'tap';
import { DOMAIN, portBlock } from './harness.js';
import { digestAuth, header } from './raw-sip.js';
import { request, statusOf, UdpPeer, answer } from './security-kit.js';
import { INSTANCES, PW, contactsIn, startCluster, within, type Cluster, type InstanceName } from './cluster-kit.js';

const P = portBlock(26);
const DEVICE_HOST = '127.0.3.21';
let seq = 0;

/** REGISTER to `challenger`, answer its 401 to `verifier`: the verifier's final status (0: none). */
async function crossRegister(
  peer: UdpPeer,
  user: 'anna-desk' | 'anna-soft',
  challenger: InstanceName,
  verifier: InstanceName,
  tamper = false,
): Promise<{ status: number; detail: string }> {
  const callId = `cl-nonce-${++seq}-${process.pid}@${DEVICE_HOST}`;
  peer.send(request('REGISTER', { peer, user, callId, cseq: 1 }), P.sip, INSTANCES[challenger]);
  const challenge = await answer(peer, callId, 3000, (m) => statusOf(m) === 401);
  if (!challenge) return { status: 0, detail: `no 401 from ${challenger}` };
  let www = header(challenge, 'www-authenticate')[0]!;
  if (tamper) www = www.replace(/nonce="([^"]+)"/, (_m, n: string) => `nonce="${n.slice(0, -2)}${n.endsWith('AA') ? 'BB' : 'AA'}"`);
  const auth = digestAuth({ username: user, password: PW[user] }, www, 'REGISTER', `sip:${DOMAIN}`, 'MD5');
  peer.send(request('REGISTER', { peer, user, callId, cseq: 2, authLine: `Authorization: ${auth}` }), P.sip, INSTANCES[verifier]);
  const final = await answer(peer, callId, 3000, (m) => header(m, 'cseq')[0] === '2 REGISTER' && statusOf(m) >= 200);
  return { status: final ? statusOf(final) : 0, detail: `${challenge.split('\r\n')[0]} / ${www}\n${final ?? '(no final answer)'}` };
}

async function bothWays(t: Test, cl: Cluster, why: string): Promise<void> {
  const peer = await UdpPeer.open(DEVICE_HOST);
  t.teardown(() => peer.sock.close());
  for (const [challenger, verifier, user] of [
    ['sip-b', 'sip-a', 'anna-desk'],
    ['sip-a', 'sip-b', 'anna-soft'],
  ] as const) {
    const r = await crossRegister(peer, user, challenger, verifier);
    t.equal(r.status, 200, `${why}: ${user} answers the nonce of ${challenger} to ${verifier}: 200`, { details: r.detail });
    const listed = await within(`${user} listed on both`, async () => {
      const [a, b] = await Promise.all([cl.ext('sip-a', '200'), cl.ext('sip-b', '200')]);
      return contactsIn(a, user).length === 1 && contactsIn(b, user).length === 1;
    }, 3000);
    t.type(listed, 'number', `${why}: ${user}'s binding is listed on both instances`);
  }
  const bad = await crossRegister(peer, 'anna-desk', 'sip-b', 'sip-a', true);
  t.equal(bad.status, 401, `${why}: a tampered nonce of B answered to A is refused with 401`, { details: bad.detail });
}

t.test('(f) a nonce issued by one instance is accepted by the other (secret in Redis)', async (t) => {
  const cl = await startCluster(t, { block: 26, redisPort: 26383 });
  t.ok(await cl.db.get('sipbob:nonce-secret'), 'the shared nonce secret is in Redis');
  await bothWays(t, cl, 'secret in Redis');
});

t.test('the same with auth.nonceSecret in both configs', async (t) => {
  const cl = await startCluster(t, { block: 26, redisPort: 26384, auth: { algorithms: ['MD5'], nonceSecret: 'cluster-test-secret-0123456789' } });
  await bothWays(t, cl, 'auth.nonceSecret');
});

t.test('an instance started while Redis is down accepts the others\' nonces once Redis is back', async (t) => {
  const cl = await startCluster(t, { block: 26, redisPort: 26385, instances: ['sip-a'] });
  await cl.redis.stop();
  await cl.start('sip-b');
  await cl.redis.restart();
  const back = await within('both say Redis is up', async () => {
    const hs = await Promise.all([cl.health('sip-a'), cl.health('sip-b')]);
    return hs.every((h) => h !== undefined && h.body.redis !== 'down');
  }, 8000);
  t.type(back, 'number', 'Redis is back for both');
  await bothWays(t, cl, 'B started while Redis was down');
});
