/**
 * What scanners see (issue 12): stateless challenges (an unauthenticated INVITE gets one 407
 * and no 100 Trying, and leaves no transaction behind, however many come); sweeps that learn
 * nothing about which extensions exist; sipvicious (svwar, svcrack) and our own scanner of
 * the same shape banned while the real phone registers.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { DOMAIN, HOSTS, portBlock, register, startProxy, describe as describeSipp } from './harness.js';
import { answer, bans, callIdOf, metric, request, sleep, statusOf, UdpPeer } from './security-kit.js';
import { digestAuth, header, sipMessage } from './raw-sip.js';

const P = portBlock(11);
const ANNA = { username: 'anna', password: 'correct-horse-7' };
/** A desk phone with a four-digit PIN, the kind svcrack finds by counting. */
const DESK = { username: '202', password: '4711' };
const EXTENSIONS = [
  { number: '200', name: 'Anna', busyOnBusy: false, devices: [ANNA] },
  { number: '201', name: 'Bob', busyOnBusy: false, devices: [{ username: 'bob', password: 'bob-pw-1' }] },
  { number: '202', name: 'Desk', busyOnBusy: false, devices: [DESK] },
];
const CALLER = '127.0.0.111';
const SCANNER = '127.0.0.112';
const SWEEPER = '127.0.0.113';
const CRACKER = '127.0.0.114';

t.test('an unauthenticated INVITE: exactly one 407, no 100 Trying, no transaction', async (t) => {
  const proxy = await startProxy({ sipPort: P.sip, httpPort: P.http, extensions: EXTENSIONS });
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

/** A response with what differs per request (tags, nonce, Call-ID, our Via and CSeq) blanked. */
function shape(m: string): string {
  return m
    .split('\r\n')
    .filter((l) => !/^(via|from|to|call-id|cseq|content-length):/i.test(l))
    .join('\n')
    .replace(/nonce="[^"]*"/g, 'nonce=""');
}

t.test('our own scanner (friendly-scanner): sweeps learn nothing, a fast sweep and a password crack are banned', async (t) => {
  const proxy = await startProxy({ sipPort: P.sip, httpPort: P.http, extensions: EXTENSIONS });
  t.teardown(() => proxy.stop());
  const scanner = await UdpPeer.open(SCANNER);
  const sweeper = await UdpPeer.open(SWEEPER);
  const cracker = await UdpPeer.open(CRACKER);
  t.teardown(() => [scanner, sweeper, cracker].forEach((p) => p.close()));

  // 1. Which of these exist? Every method answers each name alike (200, 201, 202 exist).
  const names = ['200', '201', '202', '203', '299', 'admin', 'anna', 'nobody'];
  for (const method of ['REGISTER', 'INVITE', 'OPTIONS'] as const) {
    const shapes = new Set<string>();
    const codes = new Set<number>();
    for (const user of names) {
      const callId = `enum-${method}-${user}@${SCANNER}`;
      scanner.send(request(method, { peer: scanner, user, callId, userAgent: 'friendly-scanner' }), P.sip);
      const m = (await answer(scanner, callId, 1000)) ?? '';
      codes.add(statusOf(m));
      shapes.add(shape(m));
    }
    t.same([...codes], [method === 'REGISTER' ? 401 : 407], `${method} sweep: one status for all ${names.length} names`);
    t.equal(shapes.size, 1, `${method} sweep: the same headers for all names`);
  }
  // A wrong password for a real username and for an unknown one: answered alike too.
  const wrongShapes = new Set<string>();
  for (const user of ['anna', 'nobody']) {
    const callId = `wrongpw-${user}@${SCANNER}`;
    scanner.send(request('REGISTER', { peer: scanner, user, callId, cseq: 1 }), P.sip);
    const ch = (await answer(scanner, callId, 1000))!;
    const auth = digestAuth({ username: user, password: 'letmein' }, header(ch, 'www-authenticate')[0]!, 'REGISTER', `sip:${DOMAIN}`, 'MD5');
    scanner.send(request('REGISTER', { peer: scanner, user, callId, cseq: 2, authLine: `Authorization: ${auth}` }), P.sip);
    wrongShapes.add(shape((await answer(scanner, callId, 1000, (m) => header(m, 'cseq')[0] === '2 REGISTER')) ?? ''));
  }
  t.equal(wrongShapes.size, 1, 'a wrong password and an unknown username: the same answer');
  t.same(await bans(proxy), [], 'a slow, small sweep is not banned (2 failures)');

  // 2. A fast sweep of 1000 extensions from one address: banned by the flood limit.
  for (let i = 0; i < 1000; i++) {
    sweeper.send(request('REGISTER', { peer: sweeper, user: String(1000 + i), callId: `sweep-${i}@${SWEEPER}`, userAgent: 'friendly-scanner' }), P.sip);
    if (i % 50 === 49) await sleep(1);
  }
  await sleep(1000);
  const swept = sweeper.received.filter((m) => callIdOf(m).startsWith('sweep-')).length;
  t.equal(swept, 300, `the sweep got floodLimit.requests answers, then none (${swept})`);
  t.same((await bans(proxy)).map((b) => [b.address, b.reason]), [[SWEEPER, 'flood']]);

  // 3. A dictionary attack on 202 with the right PIN at place 50: banned after 10 guesses.
  const dictionary = Array.from({ length: 100 }, (_, i) => (i === 49 ? DESK.password : String(1000 + i)));
  const callId = `crack@${CRACKER}`;
  cracker.send(request('REGISTER', { peer: cracker, user: DESK.username, callId, cseq: 1, userAgent: 'friendly-scanner' }), P.sip);
  let challenge = await answer(cracker, callId, 1000);
  let accepted = 0;
  let answered = 0;
  for (const [i, password] of dictionary.entries()) {
    if (!challenge) break;
    const cseq = i + 2;
    const auth = digestAuth({ username: DESK.username, password }, header(challenge, 'www-authenticate')[0]!, 'REGISTER', `sip:${DOMAIN}`, 'MD5');
    cracker.send(request('REGISTER', { peer: cracker, user: DESK.username, callId, cseq, authLine: `Authorization: ${auth}`, userAgent: 'friendly-scanner' }), P.sip);
    const m = await answer(cracker, callId, 500, (x) => header(x, 'cseq')[0] === `${cseq} REGISTER`);
    if (m === undefined) {
      // Banned: the rest of the dictionary goes out unanswered, as a scanner would send it.
      for (const rest of dictionary.slice(i + 1)) {
        const a = digestAuth({ username: DESK.username, password: rest }, header(challenge, 'www-authenticate')[0]!, 'REGISTER', `sip:${DOMAIN}`, 'MD5');
        cracker.send(request('REGISTER', { peer: cracker, user: DESK.username, callId, cseq: 999, authLine: `Authorization: ${a}` }), P.sip);
      }
      await sleep(500);
      break;
    }
    answered++;
    if (statusOf(m) === 200) accepted++;
    challenge = m;
  }
  t.equal(answered, 10, '10 guesses answered (401), then silence');
  t.equal(accepted, 0, 'the right PIN (guess 50) was never accepted');
  t.equal(cracker.received.filter((m) => statusOf(m) === 200).length, 0);
  t.same((await bans(proxy)).map((b) => b.address).sort(), [SWEEPER, CRACKER]);

  // The desk phone itself registers with its PIN from its own address.
  const phone = await register({ ...DESK, local: HOSTS.phone2, localPort: P.base + 2, remote: proxy.remote });
  t.equal(phone.code, 0, `the desk phone registers\n${phone.code === 0 ? '' : describeSipp(phone)}`);
  t.equal(await metric(proxy, 'sipbob_transactions_in_flight'), 0, 'the whole scan left no transaction behind');
});

const SVWAR = ['/usr/bin/svwar', '/usr/bin/sipvicious_svwar'].find((p) => existsSync(p));
const SVCRACK = ['/usr/bin/svcrack', '/usr/bin/sipvicious_svcrack'].find((p) => existsSync(p));

t.test(
  'sipvicious: svwar finds no extension, svcrack never finds the PIN and is banned',
  { skip: SVWAR && SVCRACK ? false : 'sipvicious is not installed (Debian package sipvicious: svwar, svcrack)' },
  async (t) => {
    const proxy = await startProxy({ sipPort: P.sip, httpPort: P.http, extensions: EXTENSIONS });
    t.teardown(() => proxy.stop());
    // sipvicious 0.3.3 ignores -b (it never binds the address it is given), so on loopback it
    // always sends from 127.0.0.1; the phone below uses another address.
    const run = (bin: string, args: string[]) => {
      const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 60_000, cwd: '/tmp' });
      return `${r.stdout ?? ''}${r.stderr ?? ''}`;
    };
    for (const method of ['REGISTER', 'INVITE', 'OPTIONS']) {
      const out = run(SVWAR!, ['-P', String(P.base + 10), '-p', String(P.sip), '-e', '190-215', '-m', method, '--force', '--maximumtime=2', '127.0.0.1']);
      t.notMatch(out, /\|\s*20[0-2]\s*\|/, `svwar -m ${method}: 200, 201 and 202 not reported`);
      t.comment(`svwar -m ${method}: ${out.trim().split('\n').slice(-1)[0]}`);
    }
    t.same(await bans(proxy), [], 'svwar alone: no wrong password, too slow to flood');

    const started = Date.now();
    const out = run(SVCRACK!, ['-P', String(P.base + 11), '-p', String(P.sip), '-u', DESK.username, '-r', '4600-4800', '--maximumtime=3', '127.0.0.1']);
    t.comment(`svcrack -u 202 -r 4600-4800 (${Date.now() - started} ms): ${out.trim().split('\n').slice(-1)[0]}`);
    t.notMatch(out, /4711/, 'svcrack did not find the PIN 4711 (it lies in its range)');
    const list = await bans(proxy);
    t.same(list.map((b) => [b.address, b.reason]), [['127.0.0.1', 'auth-failures']], 'svcrack\'s address is banned for auth failures');

    const phone = await register({ ...DESK, local: HOSTS.phone2, localPort: P.base + 3, remote: proxy.remote });
    t.equal(phone.code, 0, `the desk phone still registers with its PIN\n${phone.code === 0 ? '' : describeSipp(phone)}`);
  },
);
