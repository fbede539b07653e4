/**
 * Issue 12 over real sockets: password guessing and floods get the source address banned
 * (dropped unparsed, unanswered) while real phones on other addresses keep working; trusted
 * networks and trunks are never banned; bans end by themselves and can be lifted through
 * the API; the bans show in /api/bans, /metrics and the log.
 */
import t from 'tap';
import dgram from 'node:dgram';
import net from 'node:net';
import { DOMAIN, HOSTS, portBlock, register, startProxy, describe as describeSipp } from './harness.js';
import { answer, bans, metric, registerOnce, request, sleep, statusOf, UdpPeer } from './security-kit.js';
import { digestAuth, header } from './raw-sip.js';

const P = portBlock(10);
const ANNA = { username: 'anna', password: 'correct-horse-7' };
const BOB = { username: 'bob', password: 'battery-staple-9' };
const EXTENSIONS = [
  { number: '200', name: 'Anna', busyOnBusy: false, devices: [ANNA] },
  { number: '201', name: 'Bob', busyOnBusy: false, devices: [BOB] },
];
/** Attackers and probes: addresses no other role uses. */
const H = {
  guesser: '127.0.0.101',
  nameGuesser: '127.0.0.102',
  flooder: '127.0.0.103',
  probe: '127.0.0.104',
  trusted: '127.0.0.105',
  limited: '127.0.0.106',
  guesser2: '127.0.0.107',
} as const;

/** One wrong guess after another, each with the nonce of the last challenge, as svcrack does. */
async function guessPasswords(peer: UdpPeer, username: string, guesses: number): Promise<{ answered: number; bannedAfter: number; lastChallenge: string }> {
  const callId = `guess-${username}-${process.pid}@${peer.host}`;
  peer.send(request('REGISTER', { peer, user: username, callId, cseq: 1, userAgent: 'friendly-scanner' }), P.sip);
  let challenge = await answer(peer, callId, 2000, (m) => statusOf(m) === 401);
  if (!challenge) throw new Error('no first challenge');
  let answered = 0;
  let bannedAfter = -1;
  for (let i = 0; i < guesses; i++) {
    const wrong = digestAuth({ username, password: `guess-${i}` }, header(challenge, 'www-authenticate')[0]!, 'REGISTER', `sip:${DOMAIN}`, 'MD5');
    const cseq = i + 2;
    peer.send(request('REGISTER', { peer, user: username, callId, cseq, authLine: `Authorization: ${wrong}`, userAgent: 'friendly-scanner' }), P.sip);
    if (bannedAfter >= 0) {
      await sleep(1); // the rest of the run, fired without waiting
      continue;
    }
    const next = await answer(peer, callId, 600, (m) => header(m, 'cseq')[0] === `${cseq} REGISTER`);
    if (next === undefined) {
      bannedAfter = i;
      continue;
    }
    if (statusOf(next) !== 401) throw new Error(`a wrong password got ${statusOf(next)}`);
    answered++;
    challenge = next;
  }
  await sleep(500);
  const late = peer.received.filter((m) => header(m, 'call-id')[0] === callId).length - 1 - answered;
  if (late !== 0) throw new Error(`${late} answers after the ban`);
  return { answered, bannedAfter, lastChallenge: challenge };
}

t.test('password guessing: the guesser is banned; the account still works from its own phone', async (t) => {
  // The real defaults: 10 wrong answers in 300 s ban for 900 s.
  const proxy = await startProxy({ sipPort: P.sip, httpPort: P.http, extensions: EXTENSIONS });
  t.teardown(() => proxy.stop());
  const guesser = await UdpPeer.open(H.guesser);
  t.teardown(() => guesser.close());

  const started = Date.now();
  const run = await guessPasswords(guesser, ANNA.username, 300);
  t.equal(run.answered, 10, '10 wrong passwords answered with 401 (authFailures.max)');
  t.equal(run.bannedAfter, 10, 'the 11th and the 289 after it: no answer at all');
  t.ok(Date.now() - started < 15_000, `300 guesses in ${Date.now() - started} ms`);

  // The right password, from the banned address: dropped, so it tells the guesser nothing.
  const callId = `right-${process.pid}@${H.guesser}`;
  const right = digestAuth(ANNA, header(run.lastChallenge, 'www-authenticate')[0]!, 'REGISTER', `sip:${DOMAIN}`, 'MD5');
  guesser.send(request('REGISTER', { peer: guesser, user: ANNA.username, callId, cseq: 1, authLine: `Authorization: ${right}` }), P.sip);
  t.equal(await answer(guesser, callId, 1500), undefined, 'the right password from the banned address: no answer');

  // Anna's real phone, on its own address, registers with SIPp as usual.
  const phone = await register({ ...ANNA, local: HOSTS.phone1, localPort: P.base, remote: proxy.remote });
  t.equal(phone.code, 0, `anna's phone registers from ${HOSTS.phone1}\n${phone.code === 0 ? '' : describeSipp(phone)}`);
  const ext = await proxy.apiJson<{ devices: { registrations: { source: string }[] }[] }>('/api/extensions/200');
  t.equal(ext.devices[0]!.registrations.length, 1, 'and its binding is there');

  const list = await bans(proxy);
  t.equal(list.length, 1);
  t.equal(list[0]!.address, H.guesser);
  t.equal(list[0]!.reason, 'auth-failures');
  const until = Date.parse(list[0]!.until) - Date.now();
  t.ok(until > 880_000 && until <= 900_000, `until is authFailures.ban (900 s) ahead (${until} ms)`);
  t.equal(await metric(proxy, 'sipbob_bans_active'), 1, 'sipbob_bans_active');
  t.equal(await metric(proxy, 'sipbob_bans_total{reason="auth_failures"}'), 1);
  t.ok((await metric(proxy, 'sipbob_dropped_messages_total{reason="auth_failures"}')) >= 290, 'the guesses after the ban counted as dropped');
  const line = await proxy.waitForLog((l) => l.msg === 'source address banned');
  t.match(line, { level: 40, address: H.guesser, reason: 'auth-failures', failures: 10 }, 'one warning line for the ban');

  // Guessing usernames is the same failure, answered the same way until the ban.
  const nameGuesser = await UdpPeer.open(H.nameGuesser);
  t.teardown(() => nameGuesser.close());
  const names = await guessPasswords(nameGuesser, 'nobody', 50);
  t.equal(names.answered, 10, 'an unknown username: the same 401s, counted the same');
  t.equal(names.bannedAfter, 10);
  t.equal((await bans(proxy)).find((b) => b.address === H.nameGuesser)?.reason, 'auth-failures');
});

t.test('a flood from one address is banned while another address registers within a second', async (t) => {
  // The real default flood limit (300 requests in 2 s, ban 60 s).
  const proxy = await startProxy({ sipPort: P.sip, httpPort: P.http, extensions: EXTENSIONS });
  t.teardown(() => proxy.stop());
  const flooder = dgram.createSocket({ type: 'udp4', sendBufferSize: 4 << 20 });
  await new Promise<void>((r) => flooder.bind(0, H.flooder, () => r()));
  t.teardown(() => flooder.close());
  let floodAnswers = 0;
  flooder.on('message', () => floodAnswers++);
  const probe = await UdpPeer.open(H.probe);
  t.teardown(() => probe.close());

  // Unauthenticated INVITEs (each would cost a 407 with a fresh nonce), as fast as one Node
  // socket sends them, for at most 3 s or 60,000 datagrams.
  const fport = flooder.address().port;
  const invite = (i: number) =>
    Buffer.from(
      `INVITE sip:200@${DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP ${H.flooder}:${fport};rport;branch=z9hG4bK-flood${i}\r\nMax-Forwards: 70\r\n` +
        `From: <sip:flood@${DOMAIN}>;tag=f${i}\r\nTo: <sip:200@${DOMAIN}>\r\nCall-ID: flood-${i}\r\nCSeq: 1 INVITE\r\n` +
        `Contact: <sip:flood@${H.flooder}:${fport}>\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n`,
    );
  let sent = 0;
  let flooding = true;
  const floodStart = performance.now();
  const flood = (async () => {
    while (flooding && sent < 60_000 && performance.now() - floodStart < 3000) {
      for (let k = 0; k < 200; k++) flooder.send(invite(sent++), P.sip, '127.0.0.1');
      await new Promise<void>((r) => setImmediate(r));
    }
  })();

  // The probe is a phone: it retransmits after 500 ms (Timer E) when the flood made the kernel
  // drop its datagram or the answer, so "answered" is measured from its first send.
  const probes: number[] = [];
  let failed = 0;
  let retransmissions = 0;
  await sleep(100);
  while (performance.now() - floodStart < 3000) {
    const r = await registerOnce(probe, P.sip, BOB, 2000);
    if (r.status !== 200) failed++;
    probes.push(...r.ms);
    retransmissions += r.retransmissions;
    await sleep(50);
  }
  flooding = false;
  await flood;
  const floodMs = performance.now() - floodStart;
  const rate = Math.round(sent / (floodMs / 1000));
  t.comment(`flood: ${sent} INVITEs in ${floodMs.toFixed(0)} ms (${rate}/s); ${floodAnswers} answered; probe steps (ms): ${probes.map((m) => m.toFixed(0)).join(' ')}; ${retransmissions} probe retransmissions`);
  t.ok(sent >= 5000, `the flood sent ${sent} datagrams`);
  t.equal(failed, 0, 'every probe registration succeeded');
  t.ok(probes.length >= 4, `${probes.length / 2} registrations during the flood`);
  t.ok(Math.max(...probes) < 1000, `each probe answered in under a second (slowest ${Math.max(...probes).toFixed(0)} ms)`);
  t.ok(floodAnswers <= 300, `the flooder got at most floodLimit.requests answers (${floodAnswers})`);

  const list = await bans(proxy);
  t.same(list.map((b) => [b.address, b.reason]), [[H.flooder, 'flood']], 'the flooder is banned for flooding, nobody else');
  const until = Date.parse(list[0]!.until) - Date.now();
  t.ok(until > 50_000 && until <= 60_000, `for floodLimit.ban (60 s): ${until} ms left`);
  const dropped = await metric(proxy, 'sipbob_dropped_messages_total{reason="flood"}');
  t.ok(dropped > 1000, `${dropped} datagrams dropped unparsed`);
  t.equal(await metric(proxy, 'sipbob_bans_total{reason="flood"}'), 1);
  t.equal(await metric(proxy, 'sipbob_transactions_in_flight'), 0, 'the 407s left no transaction behind');
});

t.test('trusted networks and trunks are never banned; bans end and can be lifted', async (t) => {
  // Small explicit limits and short bans, so that the test sees them end.
  const proxy = await startProxy({
    sipPort: P.sip,
    httpPort: P.http,
    extensions: EXTENSIONS,
    trunks: [{ name: 'carrier', address: HOSTS.trunkIn }],
    security: {
      trusted: [`${H.trusted}/32`],
      floodLimit: { requests: 20, seconds: 2, ban: 3 },
      authFailures: { max: 3, seconds: 60, ban: 600 },
    },
  });
  t.teardown(() => proxy.stop());

  /** n OPTIONS to the proxy, one after another; how many were answered. */
  const options = async (peer: UdpPeer, n: number, waitMs = 300): Promise<number> => {
    let ok = 0;
    for (let i = 0; i < n; i++) {
      const callId = `opt-${i}-${Date.now()}@${peer.host}`;
      const m = request('OPTIONS', { peer, user: '', callId }).replace(`OPTIONS sip:@${DOMAIN}`, `OPTIONS sip:${DOMAIN}`);
      peer.send(m, P.sip);
      if ((await answer(peer, callId, waitMs)) !== undefined) ok++;
    }
    return ok;
  };

  const trusted = await UdpPeer.open(H.trusted);
  const trunk = await UdpPeer.open(HOSTS.trunkIn);
  const limited = await UdpPeer.open(H.limited);
  const guesser = await UdpPeer.open(H.guesser2);
  t.teardown(() => [trusted, trunk, limited, guesser].forEach((p) => p.close()));

  t.equal(await options(trusted, 100), 100, 'a trusted address: 100 requests, all answered (limit 20)');
  t.equal(await options(trunk, 100), 100, 'a trunk: the same');
  for (const peer of [trusted, trunk]) {
    for (let i = 0; i < 5; i++) {
      const callId = `wrong-${i}@${peer.host}`;
      peer.send(request('REGISTER', { peer, user: ANNA.username, callId, authLine: 'Authorization: Digest username="anna", realm="pbx.example.test", nonce="x", uri="sip:pbx.example.test", response="00000000000000000000000000000000"' }), P.sip);
      t.equal(statusOf((await answer(peer, callId, 1000)) ?? ''), 401, `${peer.host}: wrong credentials #${i + 1} answered`);
    }
  }
  t.same(await bans(proxy), [], 'neither is banned');

  // An untrusted address past the limit: banned for 3 s, then answered again.
  t.equal(await options(limited, 25, 200), 20, 'an untrusted address: 20 answered, then nothing');
  t.same((await bans(proxy)).map((b) => b.address), [H.limited]);
  // Its TCP connections are refused too while the ban lasts.
  const closed = await new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: P.sip, localAddress: H.limited });
    s.on('error', () => {});
    s.once('close', () => resolve(true));
    setTimeout(() => {
      s.destroy();
      resolve(false);
    }, 1000);
  });
  t.ok(closed, 'a TCP connection from the banned address is closed at once');
  await sleep(3200);
  t.equal(await options(limited, 1, 1000), 1, 'after floodLimit.ban seconds: answered again');
  t.same(await bans(proxy), [], 'and no longer listed');

  // Three wrong passwords ban for 600 s; the admin lifts it.
  for (let i = 0; i < 3; i++) {
    const callId = `g2-${i}@${H.guesser2}`;
    guesser.send(request('REGISTER', { peer: guesser, user: 'bob', callId, authLine: 'Authorization: Digest username="bob", realm="pbx.example.test", nonce="x", uri="sip:pbx.example.test", response="00000000000000000000000000000000"' }), P.sip);
    t.equal(statusOf((await answer(guesser, callId, 1000)) ?? ''), 401);
  }
  t.same((await bans(proxy)).map((b) => [b.address, b.reason]), [[H.guesser2, 'auth-failures']]);
  t.equal(await options(guesser, 1, 500), 0, 'banned');
  const anon = await fetch(`http://127.0.0.1:${P.http}/api/bans`, { signal: AbortSignal.timeout(5000) });
  t.equal(anon.status, 401, 'GET /api/bans without the admin token: 401');
  const anonDel = await fetch(`http://127.0.0.1:${P.http}/api/bans/${H.guesser2}`, { method: 'DELETE', signal: AbortSignal.timeout(5000) });
  t.equal(anonDel.status, 401, 'DELETE without the admin token: 401');
  t.equal((await proxy.api(`/api/bans/${H.guesser2}`, { method: 'DELETE' })).status, 204, 'DELETE /api/bans/{address}: 204');
  t.equal(await options(guesser, 1, 1000), 1, 'answered again at once');
  t.equal((await proxy.api(`/api/bans/${H.guesser2}`, { method: 'DELETE' })).status, 404, 'lifting it again: 404');
  t.equal((await proxy.api('/api/bans/not-an-address', { method: 'DELETE' })).status, 400, 'not an address: 400');
  t.same(await bans(proxy), []);
  t.match(await proxy.waitForLog((l) => l.msg === 'ban lifted through the API'), { address: H.guesser2, by: 'admin' });
});
