/**
 * Stateless challenges and refusals (issue 12, item 3): an unauthenticated INVITE gets one
 * 407 and no 100 Trying, and leaves no transaction (sipbob_transactions_in_flight) behind,
 * however many come; only an authenticated request gets state. Our own UDP client.
 */
import t from 'tap';
import { DOMAIN, portBlock, startProxy } from './harness.js';
import { answer, callIdOf, metric, request, sleep, statusOf, UdpPeer } from './security-kit.js';
import { digestAuth, header, sipMessage } from './raw-sip.js';

const P = portBlock(11);
const ANNA = { username: 'anna', password: 'correct-horse-7' };
const CALLER = '127.0.0.111';

t.test('an unauthenticated INVITE: exactly one 407, no 100 Trying, no transaction', async (t) => {
  const proxy = await startProxy({
    sipPort: P.sip,
    httpPort: P.http,
    extensions: [
      { number: '200', name: 'Anna', busyOnBusy: false, devices: [ANNA] },
      { number: '201', name: 'Bob', busyOnBusy: false, devices: [{ username: 'bob', password: 'bob-pw-1' }] },
    ],
  });
  t.teardown(() => proxy.stop());
  const peer = await UdpPeer.open(CALLER);
  t.teardown(() => peer.close());
  const inFlight = () => metric(proxy, 'sipbob_transactions_in_flight');

  const callId = `stateless-1@${CALLER}`;
  const invite = request('INVITE', { peer, user: '201', from: 'anna', callId, branch: 'z9hG4bK-stateless-1' });
  peer.send(invite, P.sip);
  await sleep(1000);
  const got = peer.received.filter((m) => callIdOf(m) === callId);
  t.same(got.map(statusOf), [407], 'one 407 and nothing else (no 100 Trying, no retransmission)');
  const tag = /;tag=([^;\s]+)/.exec(header(got[0]!, 'to')[0] ?? '')?.[1];
  t.ok(tag, 'the 407 carries a To tag');
  t.equal(await inFlight(), 0, 'no transaction left');

  peer.send(invite, P.sip);
  await sleep(300);
  const again = peer.received.filter((m) => callIdOf(m) === callId);
  t.same(again.map(statusOf), [407, 407], 'a retransmission is simply challenged again');
  t.equal(/;tag=([^;\s]+)/.exec(header(again[1]!, 'to')[0] ?? '')?.[1], tag, 'with the same To tag (RFC 3261 §8.2.7)');

  // The ACK for the stateless 407 is absorbed: no answer, nothing kept.
  const ack = sipMessage([
    `ACK sip:201@${DOMAIN} SIP/2.0`,
    `Via: SIP/2.0/UDP ${CALLER}:${peer.port};rport;branch=z9hG4bK-stateless-1`,
    'Max-Forwards: 70',
    header(invite, 'from').map((f) => `From: ${f}`)[0]!,
    `To: <sip:201@${DOMAIN}>;tag=${tag}`,
    `Call-ID: ${callId}`,
    'CSeq: 1 ACK',
  ]);
  peer.send(ack, P.sip);
  await sleep(300);
  t.equal(peer.received.filter((m) => callIdOf(m) === callId).length, 2, 'the ACK gets no answer');

  // A burst of them (under the flood limit): 250 407s, still no transaction.
  for (let i = 0; i < 250; i++) peer.send(request('INVITE', { peer, user: '200', from: 'anna', callId: `burst-${i}@${CALLER}` }), P.sip);
  await sleep(1000);
  const burst = peer.received.filter((m) => callIdOf(m).startsWith('burst-'));
  t.equal(burst.length, 250, '250 INVITEs: 250 answers');
  t.ok(burst.every((m) => statusOf(m) === 407), 'all of them 407');
  t.equal(await inFlight(), 0, 'and no transaction left behind (sipbob_transactions_in_flight 0)');

  // Other refusals are stateless too: a CANCEL for nothing, a BYE outside a dialog.
  for (const method of ['CANCEL', 'BYE']) {
    const id = `refused-${method}@${CALLER}`;
    peer.send(
      sipMessage([
        `${method} sip:200@${DOMAIN} SIP/2.0`,
        `Via: SIP/2.0/UDP ${CALLER}:${peer.port};rport;branch=z9hG4bK-${method}`,
        'Max-Forwards: 70',
        `From: <sip:anna@${DOMAIN}>;tag=r1`,
        `To: <sip:200@${DOMAIN}>`,
        `Call-ID: ${id}`,
        `CSeq: 1 ${method}`,
      ]),
      P.sip,
    );
    t.equal(statusOf((await answer(peer, id, 1000)) ?? ''), 481, `${method} for nothing: 481`);
  }
  t.equal(await inFlight(), 0, 'no transaction for them either');

  // With credentials the INVITE gets state: 100 Trying, then 480 (Bob has no registered phone).
  const authId = `authed-1@${CALLER}`;
  peer.send(request('INVITE', { peer, user: '201', from: 'anna', callId: authId, cseq: 1 }), P.sip);
  const challenge = (await answer(peer, authId, 1000))!;
  const creds = digestAuth(ANNA, header(challenge, 'proxy-authenticate')[0]!, 'INVITE', `sip:201@${DOMAIN}`, 'MD5');
  peer.send(request('INVITE', { peer, user: '201', from: 'anna', callId: authId, cseq: 2, authLine: `Proxy-Authorization: ${creds}` }), P.sip);
  await answer(peer, authId, 2000, (m) => statusOf(m) === 480);
  const authed = peer.received.filter((m) => callIdOf(m) === authId && header(m, 'cseq')[0] === '2 INVITE');
  t.same(authed.map(statusOf), [100, 480], 'the authenticated INVITE: 100 Trying, then 480');
  t.ok((await inFlight()) >= 1, 'and its transaction is kept (waiting for the ACK of the 480)');
});
