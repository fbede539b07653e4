/**
 * RFC 5626 outbound end to end: a phone on TLS registers a flow (+sip.instance, reg-id,
 * Supported: outbound), reboots onto a new connection with a new Call-ID: one binding
 * remains and only it rings. CRLFCRLF over TLS is answered with CRLF; a STUN Binding request
 * on the UDP port is answered with the address it came from.
 */
import t from 'tap';
import dgram from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ADMIN_TOKEN, DOMAIN, HOSTS, portBlock, type ApiExtension } from './harness.js';
import { start, type Running } from './http-kit.js';
import { header } from './raw-sip.js';
import { SDP, TlsPhone } from './tls-kit.js';
import { makeCa, makeCert } from '../support/test-certs.js';

const P = portBlock(17);
const TLS_PORT = P.sip + 1;
const DEV = { username: 'flo-tls', password: 'flow-pw-8812' };
const FLOW = ';+sip.instance="<urn:uuid:4f1c2a2e-0000-4000-8000-00000000a001>";reg-id=1';

const ca = makeCa();
t.teardown(() => ca.remove());
const cert = makeCert(ca, 'server', 'sipbob-outbound');

async function api<T>(p: string): Promise<T> {
  const r = await fetch(`http://127.0.0.1:${P.http}${p}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  if (!r.ok) throw new Error(`${p}: HTTP ${r.status}`);
  return (await r.json()) as T;
}

let proxy: Running;
t.before(async () => {
  proxy = await start({
    domain: DOMAIN,
    listen: [`udp://127.0.0.1:${P.sip}`, `tls://127.0.0.1:${TLS_PORT}`],
    tls: { cert: cert.certFile, key: cert.keyFile },
    http: { listen: `127.0.0.1:${P.http}`, adminToken: ADMIN_TOKEN },
    auth: { algorithms: ['MD5'] },
    storage: { path: mkdtempSync(path.join(tmpdir(), 'sipbob-e2e-outbound-')) },
    trunks: [{ name: 'carrier', address: HOSTS.trunkIn }],
    extensions: [{ number: '400', name: 'Flo', devices: [DEV] }],
  });
});
t.teardown(() => proxy?.stop());

t.test('a rebooted phone with the same instance and reg-id leaves no ghost binding; CRLF keep-alive answered', async (t) => {
  const before = await TlsPhone.connect(TLS_PORT, HOSTS.phone1, ca.pem, DEV);
  t.teardown(() => before.close());
  before.contactParams = FLOW;
  const ok1 = await before.register(300, ['Supported: outbound']);
  t.match(ok1, /^SIP\/2\.0 200 /);
  t.same(header(ok1, 'require'), ['outbound'], 'Require: outbound');
  t.same(header(ok1, 'flow-timer'), ['120'], 'Flow-Timer for a TLS flow');

  before.send('\r\n\r\n');
  const deadline = Date.now() + 3000;
  while (before.pongs === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.equal(before.pongs, 1, 'CRLFCRLF over TLS answered with one CRLF');

  // The phone comes back on a new connection (new port, new Call-ID); the old one is still open.
  const after = await TlsPhone.connect(TLS_PORT, HOSTS.phone1, ca.pem, DEV);
  t.teardown(() => after.close());
  after.contactParams = FLOW;
  t.not(after.callId, before.callId, 'a new Call-ID');
  t.match(await after.register(300, ['Supported: outbound']), /^SIP\/2\.0 200 /);
  const ext = await api<ApiExtension>('/api/extensions/400');
  t.same(ext.devices[0]!.registrations.map((r) => r.contact), [after.contact], 'one binding: the new flow replaced the old');

  // A call rings only the new flow.
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, HOSTS.trunkIn, () => r()));
  t.teardown(() => udp.close());
  const got: string[] = [];
  udp.on('message', (m) => got.push(m.toString('latin1')));
  const port = udp.address().port;
  udp.send(
    [
      `INVITE sip:400@${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/UDP ${HOSTS.trunkIn}:${port};branch=z9hG4bK-ob1;rport`,
      'Max-Forwards: 70',
      `From: <sip:+4930999@${HOSTS.trunkIn}>;tag=ob1`,
      `To: <sip:400@${DOMAIN}>`,
      'Call-ID: outbound-call-1',
      'CSeq: 1 INVITE',
      `Contact: <sip:carrier@${HOSTS.trunkIn}:${port}>`,
      'Content-Type: application/sdp',
      `Content-Length: ${Buffer.byteLength(SDP)}`,
      '',
      SDP,
    ].join('\r\n'),
    P.sip,
    '127.0.0.1',
  );
  const inv = await after.next((m) => m.startsWith('INVITE '));
  t.ok(inv, 'the new flow rings');
  await new Promise((r) => setTimeout(r, 500));
  t.equal(before.received.filter((m) => m.startsWith('INVITE ')).length, 0, 'the replaced flow does not ring');
  after.reply(inv, '486 Busy Here', { toTag: 'ob-busy' });
  const until = Date.now() + 5000;
  while (!got.some((m) => m.startsWith('SIP/2.0 486')) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.ok(got.some((m) => m.startsWith('SIP/2.0 486')), 'the trunk hears the 486');
});

t.test('a STUN Binding request on the SIP UDP port is answered with the source address', async (t) => {
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, HOSTS.phone2, () => r()));
  t.teardown(() => udp.close());
  const req = Buffer.alloc(20);
  req.writeUInt16BE(0x0001, 0);
  req.writeUInt32BE(0x2112a442, 4);
  req.fill(7, 8, 20);
  const answer = new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no STUN answer')), 3000);
    udp.once('message', (m) => {
      clearTimeout(timer);
      resolve(m);
    });
  });
  udp.send(req, P.sip, '127.0.0.1');
  const res = await answer;
  t.equal(res.readUInt16BE(0), 0x0101, 'Binding success');
  t.same([...res.subarray(8, 20)], [...req.subarray(8, 20)], 'same transaction ID');
  t.equal(res.readUInt16BE(26) ^ 0x2112, udp.address().port, 'XOR-MAPPED-ADDRESS port');
  t.equal([...res.subarray(28, 32)].map((b, i) => b ^ [0x21, 0x12, 0xa4, 0x42][i]!).join('.'), HOSTS.phone2, 'XOR-MAPPED-ADDRESS address');
});
