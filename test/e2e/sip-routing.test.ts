/**
 * Routing rules a phone or a misconfigured peer can observe, played with our own UDP sockets:
 * loop detection (482), Max-Forwards (483), re-INVITE within a call along the Record-Route,
 * and no relaying of in-dialog requests that do not carry our Route (404).
 */
import t from 'tap';
import { DOMAIN, HOSTS, portBlock, startProxy } from './harness.js';
import { digestAuth, header, sipMessage, UdpPeer } from './raw-sip.js';

const P = portBlock(8);
const DEVICE = { username: 'loop-desk', password: 'pw-loop-desk' };

t.test('loops, hops, re-INVITE and foreign in-dialog requests', async (t) => {
  const proxy = await startProxy({
    sipPort: P.sip,
    httpPort: P.http,
    trunks: [{ name: 'carrier', address: HOSTS.trunkIn }],
    extensions: [{ number: '200', name: 'Anna', busyOnBusy: false, devices: [DEVICE] }],
  });
  t.teardown(() => proxy.stop());
  const phone = await UdpPeer.open(HOSTS.phone2);
  const trunk = await UdpPeer.open(HOSTS.trunkIn);
  t.teardown(() => {
    phone.close();
    trunk.close();
  });
  const contact = `sip:${DEVICE.username}@${phone.host}:${phone.port}`;
  const reg = (cseq: number, auth?: string) =>
    sipMessage([
      `REGISTER sip:${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/UDP ${phone.host}:${phone.port};branch=z9hG4bK-lreg${cseq};rport`,
      'Max-Forwards: 70',
      `From: <sip:${DEVICE.username}@${DOMAIN}>;tag=lr`,
      `To: <sip:${DEVICE.username}@${DOMAIN}>`,
      'Call-ID: loop-reg',
      `CSeq: ${cseq} REGISTER`,
      `Contact: <${contact}>`,
      ...(auth ? [`Authorization: ${auth}`] : []),
      'Expires: 300',
    ]);
  phone.send(reg(1), P.sip);
  const challenge = header(await phone.next((m) => m.startsWith('SIP/2.0 401')), 'www-authenticate')[0]!;
  phone.send(reg(2, digestAuth(DEVICE, challenge, 'REGISTER', `sip:${DOMAIN}`, 'MD5')), P.sip);
  await phone.next((m) => m.startsWith('SIP/2.0 200') && m.includes('CSeq: 2 REGISTER'));

  const inviteLines = (maxForwards: number, branch: string, callId: string) => [
    `INVITE sip:200@${DOMAIN} SIP/2.0`,
    `Via: SIP/2.0/UDP ${trunk.host}:${trunk.port};branch=${branch};rport`,
    `Max-Forwards: ${maxForwards}`,
    `From: <sip:+4930@${trunk.host}>;tag=tr1`,
    `To: <sip:200@${DOMAIN}>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    `Contact: <sip:carrier@${trunk.host}:${trunk.port}>`,
  ];

  // Max-Forwards 0: 483, nothing forwarded.
  trunk.send(sipMessage(inviteLines(0, 'z9hG4bK-mf0', 'mf0-call')), P.sip);
  await trunk.next((m) => m.startsWith('SIP/2.0 483') && m.includes('mf0-call'));
  t.pass('Max-Forwards 0 answered 483 Too Many Hops');

  // A call; the phone reflects the INVITE back to the proxy unchanged in Request-URI: a loop.
  trunk.send(sipMessage(inviteLines(70, 'z9hG4bK-c1', 'loop-call')), P.sip);
  const inv = await phone.next((m) => m.startsWith('INVITE ') && m.includes('loop-call'));
  t.equal(header(inv, 'max-forwards')[0], '69', 'Max-Forwards decremented');
  const reflected = inv
    .replace(/^INVITE [^ ]+ SIP\/2\.0/, `INVITE sip:200@${DOMAIN} SIP/2.0`)
    .replace(/\r\nVia: /, `\r\nVia: SIP/2.0/UDP ${phone.host}:${phone.port};branch=z9hG4bK-reflect;rport\r\nVia: `);
  phone.send(reflected, P.sip);
  await phone.next((m) => m.startsWith('SIP/2.0 482') && m.includes('z9hG4bK-reflect'));
  t.pass('a request that comes back unchanged is answered 482 Loop Detected');

  // The phone answers the real call; ACK along the route set.
  const rr = header(inv, 'record-route');
  t.equal(rr.length, 1, 'one Record-Route (same transport both ways)');
  const reply = (req: string, status: string, toTag: string, extra: string[] = []) =>
    sipMessage([
      `SIP/2.0 ${status}`,
      ...header(req, 'via').map((v) => `Via: ${v}`),
      ...header(req, 'record-route').map((r) => `Record-Route: ${r}`),
      `From: ${header(req, 'from')[0]}`,
      `To: ${header(req, 'to')[0]}${header(req, 'to')[0]!.includes('tag=') ? '' : `;tag=${toTag}`}`,
      `Call-ID: ${header(req, 'call-id')[0]}`,
      `CSeq: ${header(req, 'cseq')[0]}`,
      `Contact: <${contact}>`,
      ...extra,
    ]);
  const answer = reply(inv, '200 OK', 'ph1');
  phone.send(answer, P.sip);
  await trunk.next((m) => m.startsWith('SIP/2.0 200') && m.includes('loop-call'));
  const inviteOks = () => trunk.received.filter((m) => m.startsWith('SIP/2.0 200') && m.includes('CSeq: 1 INVITE')).length;
  // The phone did not see an ACK yet and re-sends its 200 (§13.3.1.4). The fork settled with
  // the first 200; the branch's transaction, Accepted for 32 s, still passes it on (RFC 6026).
  phone.send(answer, P.sip);
  for (let i = 0; i < 100 && inviteOks() < 2; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(inviteOks(), 2, 'a retransmitted 200 reaches the caller after the fork settled');
  const inDialog = (method: string, cseq: number, branch: string, route: boolean) =>
    sipMessage([
      `${method} ${contact} SIP/2.0`,
      `Via: SIP/2.0/UDP ${trunk.host}:${trunk.port};branch=${branch};rport`,
      'Max-Forwards: 70',
      ...(route ? rr.map((r) => `Route: ${r}`) : []),
      `From: <sip:+4930@${trunk.host}>;tag=tr1`,
      `To: <sip:200@${DOMAIN}>;tag=ph1`,
      'Call-ID: loop-call',
      `CSeq: ${cseq} ${method}`,
      `Contact: <sip:carrier@${trunk.host}:${trunk.port}>`,
    ]);
  trunk.send(inDialog('ACK', 1, 'z9hG4bK-a1', true), P.sip);
  await phone.next((m) => m.startsWith('ACK ') && m.includes('loop-call'));

  // re-INVITE (e.g. hold) within the call reaches the phone and its 200 comes back.
  trunk.send(inDialog('INVITE', 2, 'z9hG4bK-re2', true), P.sip);
  const reinvite = await phone.next((m) => m.startsWith('INVITE ') && m.includes('CSeq: 2 INVITE'));
  t.ok(reinvite, 're-INVITE relayed to the phone');
  phone.send(reply(reinvite, '200 OK', 'ph1'), P.sip);
  await trunk.next((m) => m.startsWith('SIP/2.0 200') && m.includes('CSeq: 2 INVITE'));
  t.pass('the 200 to the re-INVITE reached the caller');
  t.equal((await proxy.apiJson<unknown[]>('/api/calls')).length, 1, 're-INVITE did not create a second call');

  // An in-dialog request without our Route is not relayed (no open relay).
  trunk.send(inDialog('INFO', 3, 'z9hG4bK-i3', false).replace(`INFO ${contact}`, 'INFO sip:someone@192.0.2.99'), P.sip);
  await trunk.next((m) => m.startsWith('SIP/2.0 404') && m.includes('CSeq: 3 INFO'));
  t.pass('in-dialog request without our Route: 404');

  trunk.send(inDialog('BYE', 4, 'z9hG4bK-b4', true), P.sip);
  const bye = await phone.next((m) => m.startsWith('BYE ') && m.includes('loop-call'));
  phone.send(reply(bye, '200 OK', 'ph1'), P.sip);
  await trunk.next((m) => m.startsWith('SIP/2.0 200') && m.includes('CSeq: 4 BYE'));
  t.same(await proxy.apiJson('/api/calls'), [], 'BYE ended the call');

  // A 200 retransmission that crossed the BYE is still relayed, but confirms no call again:
  // the extension must not look busy for the rest of maxCallDuration.
  phone.send(answer, P.sip);
  for (let i = 0; i < 100 && inviteOks() < 3; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(inviteOks(), 3, 'the late retransmission is relayed too');
  t.same(await proxy.apiJson('/api/calls'), [], 'and brings no ended call back');
});
