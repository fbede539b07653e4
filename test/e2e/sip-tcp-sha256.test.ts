/**
 * What SIPp cannot play: SHA-256 digest (RFC 8760; SIPp 3.6 knows MD5 only) and a device
 * registered over TCP that must get its INVITE over its own connection, with double
 * Record-Route because the caller uses UDP. Our own minimal client, real sockets.
 */
import t from 'tap';
import dgram from 'node:dgram';
import net from 'node:net';
import { DOMAIN, HOSTS, portBlock, startProxy } from './harness.js';
import { digestAuth, header } from './raw-sip.js';

const P = portBlock(9);
const DEVICE = { username: 'anna-tcp', password: 's3cret-tcp' };

/** Reads SIP messages off a TCP stream (Content-Length framing). */
class TcpReader {
  private buf = '';
  private waiters: Array<(m: string) => void> = [];
  private queue: string[] = [];
  constructor(sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      for (;;) {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const len = Number(header(this.buf.slice(0, end), 'content-length')[0] ?? '0');
        if (this.buf.length < end + 4 + len) return;
        const msg = this.buf.slice(0, end + 4 + len);
        this.buf = this.buf.slice(end + 4 + len);
        const w = this.waiters.shift();
        if (w) w(msg);
        else this.queue.push(msg);
      }
    });
  }
  next(timeoutMs = 5000): Promise<string> {
    const q = this.queue.shift();
    if (q !== undefined) return Promise.resolve(q);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timeout waiting for a message over TCP')), timeoutMs);
      this.waiters.push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
  }
}

t.test('SHA-256 registration over TCP, then a call from a UDP trunk reaches the TCP device', async (t) => {
  const proxy = await startProxy({
    sipPort: P.sip,
    httpPort: P.http,
    auth: { algorithms: ['SHA-256', 'MD5'] },
    trunks: [{ name: 'carrier', address: HOSTS.trunkIn }],
    extensions: [{ number: '200', name: 'Anna', busyOnBusy: true, devices: [DEVICE] }],
  });
  t.teardown(() => proxy.stop());

  const sock = net.connect({ host: '127.0.0.1', port: P.sip, localAddress: HOSTS.phone1 });
  await new Promise<void>((r) => sock.once('connect', () => r()));
  t.teardown(() => sock.destroy());
  const rd = new TcpReader(sock);
  const localPort = sock.localPort!;
  const contact = `sip:${DEVICE.username}@${HOSTS.phone1}:${localPort};transport=tcp`;
  const register = (cseq: number, auth: string) =>
    [
      `REGISTER sip:${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/TCP ${HOSTS.phone1}:${localPort};branch=z9hG4bK-reg${cseq}`,
      'Max-Forwards: 70',
      `From: <sip:${DEVICE.username}@${DOMAIN}>;tag=r1`,
      `To: <sip:${DEVICE.username}@${DOMAIN}>`,
      'Call-ID: tcp-reg-1',
      `CSeq: ${cseq} REGISTER`,
      `Contact: <${contact}>`,
      ...(auth ? [`Authorization: ${auth}`] : []),
      'Expires: 300',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');

  sock.write(register(1, ''));
  const challenge = await rd.next();
  t.match(challenge, /^SIP\/2\.0 401 /, '401 challenge');
  const offers = header(challenge, 'www-authenticate');
  t.equal(offers.length, 2, 'one challenge per configured algorithm');
  t.match(offers[0], /algorithm=SHA-256/, 'SHA-256 offered first');
  t.match(offers[1], /algorithm=MD5/);
  t.match(offers[0], /qop="auth"/);

  // A wrong password gets no binding.
  const wrong = digestAuth(DEVICE, offers[0]!, 'REGISTER', `sip:${DOMAIN}`, 'SHA-256').replace(/response="[0-9a-f]+"/, 'response="' + '0'.repeat(64) + '"');
  sock.write(register(2, wrong));
  t.match(await rd.next(), /^SIP\/2\.0 401 /, 'wrong SHA-256 response: challenged again');

  sock.write(register(3, digestAuth(DEVICE, offers[0]!, 'REGISTER', `sip:${DOMAIN}`, 'SHA-256')));
  const ok = await rd.next();
  t.match(ok, /^SIP\/2\.0 200 /, 'SHA-256 credentials accepted');
  t.match(header(ok, 'contact')[0], new RegExp(`<${contact.replace(/[.;]/g, '\\$&')}>;expires=300`), '200 lists the binding');

  // A trunk calls 200 over UDP; the INVITE must arrive over our TCP connection.
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, HOSTS.trunkIn, () => r()));
  t.teardown(() => udp.close());
  const udpPort = udp.address().port;
  const fromCaller: string[] = [];
  udp.on('message', (m) => fromCaller.push(m.toString()));
  const sdp = 'v=0\r\no=- 1 1 IN IP4 127.0.0.32\r\ns=-\r\nc=IN IP4 127.0.0.32\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
  const invite = [
    `INVITE sip:200@${DOMAIN} SIP/2.0`,
    `Via: SIP/2.0/UDP ${HOSTS.trunkIn}:${udpPort};branch=z9hG4bK-inv1;rport`,
    'Max-Forwards: 70',
    `From: <sip:+4930123@${HOSTS.trunkIn}>;tag=caller1`,
    `To: <sip:200@${DOMAIN}>`,
    'Call-ID: tcp-call-1',
    'CSeq: 1 INVITE',
    `Contact: <sip:caller@${HOSTS.trunkIn}:${udpPort}>`,
    'Content-Type: application/sdp',
    `Content-Length: ${Buffer.byteLength(sdp)}`,
    '',
    sdp,
  ].join('\r\n');
  udp.send(invite, P.sip, '127.0.0.1');
  const inv = await rd.next();
  t.match(inv, new RegExp(`^INVITE ${contact.replace(/[.;]/g, '\\$&')} SIP/2.0`), 'INVITE to the registered contact over TCP');
  const rr = header(inv, 'record-route');
  t.equal(rr.length, 2, 'double Record-Route: the legs use different transports');
  t.match(rr[0], /transport=tcp/, 'the callee-facing entry is TCP');
  t.match(rr[1], /transport=udp/, 'the caller-facing entry is UDP');
  t.ok(inv.endsWith(sdp), 'body relayed byte for byte');

  const vias = header(inv, 'via');
  const toTag = 'callee1';
  const reply = (code: string, extra: string[] = []) =>
    [
      `SIP/2.0 ${code}`,
      ...vias.map((v) => `Via: ${v}`),
      ...rr.map((r) => `Record-Route: ${r}`),
      `From: ${header(inv, 'from')[0]}`,
      `To: ${header(inv, 'to')[0]};tag=${toTag}`,
      'Call-ID: tcp-call-1',
      'CSeq: 1 INVITE',
      `Contact: <${contact}>`,
      ...extra,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
  sock.write(reply('180 Ringing'));
  sock.write(reply('200 OK'));
  const deadline = Date.now() + 5000;
  while (!fromCaller.some((m) => m.startsWith('SIP/2.0 200')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const ok200 = fromCaller.find((m) => m.startsWith('SIP/2.0 200'));
  t.ok(ok200, 'caller got the 200 over UDP');
  t.ok(fromCaller.some((m) => m.startsWith('SIP/2.0 180')), 'caller got the 180');
  t.equal(header(ok200 ?? '', 'via').length, 1, 'only the caller Via is left');

  const calls = await proxy.apiJson<Array<{ extension: string }>>('/api/calls');
  t.same(calls.map((c) => c.extension), ['200'], 'the call is up for extension 200');

  // ACK and BYE from the caller follow the route set (reversed Record-Route).
  const routes = [...rr].reverse().map((r) => `Route: ${r}`);
  const inDialog = (method: string, cseq: number, branch: string) =>
    [
      `${method} ${contact} SIP/2.0`,
      `Via: SIP/2.0/UDP ${HOSTS.trunkIn}:${udpPort};branch=${branch};rport`,
      'Max-Forwards: 70',
      ...routes,
      `From: <sip:+4930123@${HOSTS.trunkIn}>;tag=caller1`,
      `To: <sip:200@${DOMAIN}>;tag=${toTag}`,
      'Call-ID: tcp-call-1',
      `CSeq: ${cseq} ${method}`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
  udp.send(inDialog('ACK', 1, 'z9hG4bK-ack1'), P.sip, '127.0.0.1');
  const ack = await rd.next();
  t.match(ack, /^ACK /, 'ACK reached the device over TCP');
  udp.send(inDialog('BYE', 2, 'z9hG4bK-bye1'), P.sip, '127.0.0.1');
  const bye = await rd.next();
  t.match(bye, /^BYE /, 'BYE reached the device over TCP');
  t.equal(header(bye, 'route').length, 0, 'our Route entries were consumed');
  const byeVias = header(bye, 'via');
  sock.write(
    [
      'SIP/2.0 200 OK',
      ...byeVias.map((v) => `Via: ${v}`),
      `From: ${header(bye, 'from')[0]}`,
      `To: ${header(bye, 'to')[0]}`,
      'Call-ID: tcp-call-1',
      'CSeq: 2 BYE',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
  const until = Date.now() + 5000;
  while (!fromCaller.some((m) => m.startsWith('SIP/2.0 200') && m.includes('CSeq: 2 BYE')) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
  }
  t.ok(fromCaller.some((m) => m.startsWith('SIP/2.0 200') && m.includes('CSeq: 2 BYE')), '200 to BYE relayed back to the caller');
  t.same(await proxy.apiJson('/api/calls'), [], 'BYE ended the call');
});
