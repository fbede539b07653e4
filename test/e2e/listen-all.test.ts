/**
 * Listeners on 0.0.0.0 without advertise, and replies by the arriving transport, against the
 * built proxy over real sockets (our own peers: the Via and Record-Route lines are what is
 * checked).
 *
 * - A device registered over a non-loopback address of this machine (skipped when it has
 *   none) gets its INVITE with that address in Via and Record-Route; one registered over
 *   127.0.0.1 gets 127.0.0.1; a call coming in over the non-loopback address is recorded with
 *   it. A TCP device connected to 127.0.0.5 (no interface lists it) is named 127.0.0.5; over
 *   UDP that address is not served (node cannot tell which 127.x a wildcard socket was sent to).
 * - RFC 4475 novelsc (a TCP Via) sent over UDP is answered over UDP at its source port, as are
 *   the dispatcher's stateless 400s; a UDP Via over TCP is answered on the connection.
 */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import t from 'tap';
import { DOMAIN, HOSTS, portBlock, startProxy, type Proxy } from './harness.js';
import { digestAuth, header, sipMessage, TcpPeer, UdpPeer } from './raw-sip.js';

const P = portBlock(12);
const LO = '127.0.0.1';
const UNLISTED = '127.0.0.5';
const OTHER = Object.values(os.networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;
const DEVICES = {
  lo: { username: 'dev-lo', password: 'pw-lo' },
  if: { username: 'dev-if', password: 'pw-if' },
  tcp: { username: 'dev-tcp5', password: 'pw-tcp5' },
};

interface Peer {
  host: string;
  port: number;
  next(pred: (m: string) => boolean, timeoutMs?: number): Promise<string>;
}

let proxy: Proxy;
t.before(async () => {
  proxy = await startProxy({
    sipPort: P.sip,
    httpPort: P.http,
    listen: [`udp://0.0.0.0:${P.sip}`, `tcp://0.0.0.0:${P.sip}`],
    trunks: [{ name: 'carrier', address: HOSTS.trunkIn }],
    extensions: [{ number: '200', name: 'Anna', busyOnBusy: false, devices: Object.values(DEVICES) }],
  });
});
t.teardown(() => proxy?.stop());

const uriHost = (h: string) => (h.includes(':') ? `[${h}]` : h);

/** REGISTER (401, then digest) from peer to the proxy at proxyHost; its Contact is the peer itself. */
async function register(peer: Peer, send: (text: string) => void, dev: { username: string; password: string }, transport: 'UDP' | 'TCP'): Promise<void> {
  const lines = (cseq: number, auth?: string) => [
    `REGISTER sip:${DOMAIN} SIP/2.0`,
    `Via: SIP/2.0/${transport} ${uriHost(peer.host)}:${peer.port};branch=z9hG4bK-${dev.username}-${cseq};rport`,
    'Max-Forwards: 70',
    `From: <sip:${dev.username}@${DOMAIN}>;tag=r-${dev.username}`,
    `To: <sip:${dev.username}@${DOMAIN}>`,
    `Call-ID: reg-${dev.username}`,
    `CSeq: ${cseq} REGISTER`,
    `Contact: <sip:${dev.username}@${uriHost(peer.host)}:${peer.port};transport=${transport.toLowerCase()}>`,
    ...(auth ? [`Authorization: ${auth}`] : []),
    'Expires: 300',
  ];
  send(sipMessage(lines(1)));
  const challenge = header(await peer.next((m) => m.startsWith('SIP/2.0 401') && m.includes('CSeq: 1 REGISTER')), 'www-authenticate')[0]!;
  send(sipMessage(lines(2, digestAuth(dev, challenge, 'REGISTER', `sip:${DOMAIN}`, 'MD5'))));
  await peer.next((m) => m.startsWith('SIP/2.0 200') && m.includes('CSeq: 2 REGISTER'));
}

/** A final response to a request, with the To tag given. */
function answer(req: string, status: string, toTag: string): string {
  return sipMessage([
    `SIP/2.0 ${status}`,
    ...header(req, 'via').map((v) => `Via: ${v}`),
    `From: ${header(req, 'from')[0]}`,
    `To: ${header(req, 'to')[0]};tag=${toTag}`,
    `Call-ID: ${header(req, 'call-id')[0]}`,
    `CSeq: ${header(req, 'cseq')[0]}`,
  ]);
}

const isInvite = (callId: string) => (m: string) => m.startsWith('INVITE ') && m.includes(`Call-ID: ${callId}`);
const sentBy = (via: string) => via.split(/\s+/)[1]!.split(';')[0]!;

t.test('0.0.0.0: Via and Record-Route name the address each device registered over, never a guess', async (t) => {
  const lo = await UdpPeer.open(HOSTS.phone2);
  const other = OTHER === undefined ? undefined : await UdpPeer.open(OTHER);
  const tcp = await TcpPeer.connect(UNLISTED, P.sip, HOSTS.phone3);
  const trunk = await UdpPeer.open(HOSTS.trunkIn);
  t.teardown(() => {
    lo.close();
    other?.close();
    tcp.close();
    trunk.close();
  });
  await register(lo, (m) => lo.send(m, P.sip, LO), DEVICES.lo, 'UDP');
  if (other) await register(other, (m) => other.send(m, P.sip, OTHER!), DEVICES.if, 'UDP');
  await register(tcp, (m) => tcp.send(m), DEVICES.tcp, 'TCP');
  t.pass(`registered over ${LO}${OTHER ? `, ${OTHER}` : ''} and TCP ${UNLISTED}`);

  // A trunk call over 127.0.0.1 rings them all.
  const invite = (callId: string, cseq: number) =>
    sipMessage([
      `INVITE sip:200@${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/UDP ${trunk.host}:${trunk.port};branch=z9hG4bK-${callId}-${cseq};rport`,
      'Max-Forwards: 70',
      `From: <sip:+4930@${trunk.host}>;tag=tr-${callId}`,
      `To: <sip:200@${DOMAIN}>`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} INVITE`,
      `Contact: <sip:carrier@${trunk.host}:${trunk.port}>`,
    ]);
  trunk.send(invite('listen-call-1', 1), P.sip, LO);

  const atLo = await lo.next(isInvite('listen-call-1'));
  t.equal(sentBy(header(atLo, 'via')[0]!), `${LO}:${P.sip}`, 'over 127.0.0.1: our Via names 127.0.0.1');
  t.same(header(atLo, 'record-route'), [`<sip:${LO}:${P.sip};transport=udp;lr>`], 'one Record-Route, 127.0.0.1');
  lo.send(answer(atLo, '486 Busy Here', 'lo'), P.sip, LO);

  if (other) {
    const atOther = await other.next(isInvite('listen-call-1'));
    t.equal(sentBy(header(atOther, 'via')[0]!), `${OTHER}:${P.sip}`, `over ${OTHER}: our Via names ${OTHER}`);
    t.same(
      header(atOther, 'record-route'),
      [`<sip:${OTHER}:${P.sip};transport=udp;lr>`, `<sip:${LO}:${P.sip};transport=udp;lr>`],
      `double Record-Route: ${OTHER} towards the device, 127.0.0.1 towards the trunk`,
    );
    other.send(answer(atOther, '486 Busy Here', 'if'), P.sip, OTHER);
  } else t.skip('this machine has no non-loopback IPv4 address', () => {});

  const atTcp = await tcp.next(isInvite('listen-call-1'));
  t.equal(sentBy(header(atTcp, 'via')[0]!), `${UNLISTED}:${P.sip}`, `TCP to ${UNLISTED}: named by the connection's own address`);
  t.same(header(atTcp, 'record-route'), [`<sip:${UNLISTED}:${P.sip};transport=tcp;lr>`, `<sip:${LO}:${P.sip};transport=udp;lr>`]);
  tcp.send(answer(atTcp, '486 Busy Here', 'tcp'));

  const busy = await trunk.next((m) => /^SIP\/2\.0 [3-6]\d\d /.test(m) && m.includes('listen-call-1'));
  t.match(busy, /^SIP\/2\.0 486 /, 'the trunk hears 486');

  if (other) {
    // The device over the other address calls 200 (the other two ring): recorded with that address inbound.
    const call = (cseq: number, auth?: string) =>
      sipMessage([
        `INVITE sip:200@${DOMAIN} SIP/2.0`,
        `Via: SIP/2.0/UDP ${other.host}:${other.port};branch=z9hG4bK-lc2-${cseq};rport`,
        'Max-Forwards: 70',
        `From: <sip:${DEVICES.if.username}@${DOMAIN}>;tag=if-call`,
        `To: <sip:200@${DOMAIN}>`,
        'Call-ID: listen-call-2',
        `CSeq: ${cseq} INVITE`,
        `Contact: <sip:${DEVICES.if.username}@${other.host}:${other.port}>`,
        ...(auth ? [`Proxy-Authorization: ${auth}`] : []),
      ]);
    other.send(call(1), P.sip, OTHER!);
    const challenge = await other.next((m) => m.startsWith('SIP/2.0 407') && m.includes('listen-call-2'));
    const ack = sipMessage([
      `ACK sip:200@${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/UDP ${other.host}:${other.port};branch=z9hG4bK-lc2-1;rport`,
      'Max-Forwards: 70',
      `From: <sip:${DEVICES.if.username}@${DOMAIN}>;tag=if-call`,
      `To: ${header(challenge, 'to')[0]}`,
      'Call-ID: listen-call-2',
      'CSeq: 1 ACK',
    ]);
    other.send(ack, P.sip, OTHER!);
    other.send(call(2, digestAuth(DEVICES.if, header(challenge, 'proxy-authenticate')[0]!, 'INVITE', `sip:200@${DOMAIN}`, 'MD5')), P.sip, OTHER!);
    const inv = await lo.next(isInvite('listen-call-2'));
    t.same(
      header(inv, 'record-route'),
      [`<sip:${LO}:${P.sip};transport=udp;lr>`, `<sip:${OTHER}:${P.sip};transport=udp;lr>`],
      `a call that came in over ${OTHER} is recorded with ${OTHER} towards its caller`,
    );
    lo.send(answer(inv, '486 Busy Here', 'lo2'), P.sip, LO);
    tcp.send(answer(await tcp.next(isInvite('listen-call-2')), '486 Busy Here', 'tcp2'));
    t.match(await other.next((m) => /^SIP\/2\.0 486 /.test(m) && m.includes('listen-call-2')), /486/, 'the caller hears 486');
  }
});

t.test(`UDP to ${UNLISTED} (a loopback address no interface lists) is not served`, async (t) => {
  const peer = await UdpPeer.open(HOSTS.phone4);
  t.teardown(() => peer.close());
  peer.send(
    sipMessage([
      `OPTIONS sip:${UNLISTED}:${P.sip} SIP/2.0`,
      `Via: SIP/2.0/UDP ${peer.host}:${peer.port};branch=z9hG4bK-unlisted;rport`,
      'Max-Forwards: 70',
      `From: <sip:probe@${peer.host}>;tag=u1`,
      `To: <sip:${UNLISTED}>`,
      'Call-ID: unlisted-1',
      'CSeq: 1 OPTIONS',
    ]),
    P.sip,
    UNLISTED,
  );
  await new Promise((r) => setTimeout(r, 500));
  t.equal(peer.received.length, 0, 'no answer: the datagram reached no socket');
});

t.test('replies by the arriving transport: a TCP Via over UDP is answered over UDP at the source port', async (t) => {
  const host = '127.0.0.45';
  const peer = await UdpPeer.open(host);
  // Where RFC 3261 §18.2.2 would send it (the Via port, 5060 when absent): nothing must arrive there.
  const at5060: string[] = [];
  const s5060 = dgram.createSocket('udp4');
  const bound = await new Promise<boolean>((r) => {
    s5060.once('error', () => r(false));
    s5060.bind(5060, host, () => r(true));
  });
  s5060.on('message', (m) => at5060.push(m.toString()));
  t.teardown(() => {
    peer.close();
    s5060.close();
  });

  const novelsc = readFileSync(new URL('../data/rfc4475/novelsc.sip', import.meta.url));
  t.match(novelsc.toString(), /Via: SIP\/2\.0\/TCP host9\.example\.com;branch=/, 'novelsc as written: a TCP Via without port');
  peer.sock.send(novelsc, P.sip, LO);
  const res = await peer.next((m) => /^SIP\/2\.0 [2-6]\d\d /.test(m) && m.includes('novelsc.asdfasser0q239nwsdfasdkl34'));
  t.notMatch(res, /^SIP\/2\.0 400 /, `novelsc answered over UDP at its source port: ${res.split('\r\n')[0]}`);

  const viaTcp = `Via: SIP/2.0/TCP ${host}:5999;branch=z9hG4bK-bad`;
  const bad = (callId: string, lines: string[]) =>
    [`OPTIONS sip:${LO}:${P.sip} SIP/2.0`, viaTcp + callId, `From: <sip:a@${host}>;tag=b1`, `To: <sip:${LO}>`, `Call-ID: ${callId}`, ...lines, '', ''].join('\r\n');
  peer.send(bad('bad-cseq', ['CSeq: 1 INVITE', 'Content-Length: 0']), P.sip, LO);
  t.match(await peer.next((m) => m.includes('bad-cseq')), /^SIP\/2\.0 400 /, 'a stateless 400 (CSeq method mismatch) at the source port');
  peer.send(bad('bad-cl', ['CSeq: 1 OPTIONS', 'Content-Length: 0', 'Content-Length: 5']), P.sip, LO);
  t.match(await peer.next((m) => m.includes('bad-cl')), /^SIP\/2\.0 400 /, 'a 400 for a message that does not parse, at the source port');
  await new Promise((r) => setTimeout(r, 200));
  if (bound) t.equal(at5060.length, 0, 'nothing at the Via port 5060');
  else t.comment(`${host}:5060 is taken: not checked that nothing arrives there`);
});

t.test('replies by the arriving transport: a UDP Via over TCP is answered on the connection', async (t) => {
  const c = await TcpPeer.connect(LO, P.sip, '127.0.0.46');
  t.teardown(() => c.close());
  c.send(
    sipMessage([
      `OPTIONS sip:${LO}:${P.sip} SIP/2.0`,
      'Via: SIP/2.0/UDP 127.0.0.46:5999;branch=z9hG4bK-udp-over-tcp',
      'Max-Forwards: 70',
      `From: <sip:a@127.0.0.46>;tag=t1`,
      `To: <sip:${LO}>`,
      'Call-ID: udp-over-tcp',
      'CSeq: 1 OPTIONS',
    ]),
  );
  t.match(await c.next((m) => m.includes('udp-over-tcp')), /^SIP\/2\.0 200 /, 'OPTIONS answered 200 on the connection');
});
