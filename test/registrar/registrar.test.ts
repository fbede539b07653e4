import t from 'tap';
import { createHash } from 'node:crypto';
import type { Config } from '../../src/config/types.js';
import { parseMessage } from '../../src/sip/parser.js';
import { Authenticator } from '../../src/auth/authenticator.js';
import { LocationService } from '../../src/location/location.js';
import { Registrar } from '../../src/registrar/registrar.js';
import { Directory } from '../../src/directory/directory.js';

const DOMAIN = 'pbx.example.test';
const config = {
  domain: DOMAIN,
  extensions: [{ number: '200', name: 'Anna', busyOnBusy: true, declineEndsCall: false, devices: [{ username: 'anna', password: 'pw' }] }],
} as unknown as Config;

function setup(now: () => number) {
  const directory = new Directory(config);
  const location = new LocationService(now);
  const auth = new Authenticator(directory, () => ({ realm: DOMAIN, algorithms: ['MD5'], isOurHost: (h: string) => h === '127.0.0.1' }));
  const registrar = new Registrar(location, auth, () => ({ domain: DOMAIN, minExpires: 60, maxExpires: 3600, defaultExpires: 600 }), now);
  return { location, auth, registrar };
}

const md5 = (s: string) => createHash('md5').update(s).digest('hex');
let nc = 0;
function register(auth: Authenticator, callId: string, cseq: number, contact: string, expires: number, extra: { params?: string; headers?: string[] } = {}) {
  const nonce = auth.nonces.issue();
  const ncs = (++nc).toString(16).padStart(8, '0');
  const uri = `sip:${DOMAIN}`;
  const response = md5(`${md5(`anna:${DOMAIN}:pw`)}:${nonce}:${ncs}:c1:auth:${md5(`REGISTER:${uri}`)}`);
  const text = [
    `REGISTER ${uri} SIP/2.0`,
    'Via: SIP/2.0/UDP 127.0.0.11:5060;branch=z9hG4bK-r' + cseq,
    `From: <sip:anna@${DOMAIN}>;tag=1`,
    `To: <sip:anna@${DOMAIN}>`,
    `Call-ID: ${callId}`,
    `CSeq: ${cseq} REGISTER`,
    `Contact: <${contact}>;expires=${expires}${extra.params ?? ''}`,
    ...(extra.headers ?? []),
    `Authorization: Digest username="anna", realm="${DOMAIN}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=${ncs}, cnonce="c1"`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  const r = parseMessage(Buffer.from(text));
  if (!r.ok) throw new Error(r.error);
  return r.msg;
}

const source = { transport: 'udp' as const, address: '127.0.0.11', port: 5060 };

t.test('same CSeq again is a retransmission; an older CSeq is out of order', async (t) => {
  let now = 1_000_000;
  const { location, auth, registrar } = setup(() => now);
  t.equal(registrar.register(register(auth, 'c1', 5, 'sip:anna@127.0.0.11', 300), source).status, 200);
  const first = location.lookup('anna')[0]!.expiresAt;
  now += 10_000;
  const again = registrar.register(register(auth, 'c1', 5, 'sip:anna@127.0.0.11', 300), source);
  t.equal(again.status, 200, 'a retransmission (answered statelessly) gets 200 again');
  t.match(again.headers[0], /^Contact: <sip:anna@127\.0\.0\.11>;expires=290$/, 'with the binding as it is');
  t.equal(location.lookup('anna')[0]!.expiresAt, first, 'not extended a second time');
  t.equal(registrar.register(register(auth, 'c1', 4, 'sip:anna@127.0.0.11', 300), source).status, 500, 'older CSeq: 500');
  t.equal(registrar.register(register(auth, 'c1', 6, 'sip:anna@127.0.0.11', 300), source).status, 200, 'newer CSeq refreshes');
  t.equal(location.lookup('anna')[0]!.expiresAt, now + 300_000);
});

t.test('423 below minExpires, maxExpires caps, 0 removes, expiry on time', async (t) => {
  let now = 2_000_000;
  const { location, auth, registrar } = setup(() => now);
  const brief = registrar.register(register(auth, 'c2', 1, 'sip:anna@127.0.0.12', 30), source);
  t.equal(brief.status, 423);
  t.same(brief.headers, ['Min-Expires: 60']);
  t.match(registrar.register(register(auth, 'c2', 2, 'sip:anna@127.0.0.12', 99999), source).headers[0], /expires=3600$/, 'capped at maxExpires');
  now += 3_600_001;
  t.same(location.lookup('anna'), [], 'expired on time');
  t.equal(location.sweep(), 1, 'swept');
  registrar.register(register(auth, 'c2', 3, 'sip:anna@127.0.0.12', 120), source);
  t.equal(location.lookup('anna').length, 1);
  registrar.register(register(auth, 'c2', 4, 'sip:anna@127.0.0.12', 0), source);
  t.same(location.lookup('anna'), [], 'expires=0 removes');
});

t.test('RFC 5626 outbound: the same instance and reg-id replace the old binding, even with a new Call-ID', async (t) => {
  const now = 3_000_000;
  const { location, auth, registrar } = setup(() => now);
  const inst = ';+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";reg-id=1';
  const ob = { params: inst, headers: ['Supported: path, outbound'] };
  const tcpA = { transport: 'tcp' as const, address: '192.0.2.20', port: 40001 };
  const tcpB = { transport: 'tcp' as const, address: '192.0.2.20', port: 40002 };
  const first = registrar.register(register(auth, 'boot-1', 1, 'sip:anna@192.0.2.20:40001;transport=tcp', 300, ob), tcpA);
  t.equal(first.status, 200);
  t.ok(first.headers.includes('Require: outbound'), 'Require: outbound in the 200');
  t.ok(first.headers.includes(`Flow-Timer: 120`), 'Flow-Timer for a stream flow');
  t.match(first.headers[0], /;\+sip\.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";reg-id=1$/, 'the Contact echoes the flow');
  // Another device instance of the same user: a second flow, not replaced.
  registrar.register(register(auth, 'other-1', 1, 'sip:anna@192.0.2.30:5060', 300, { params: ';+sip.instance="<urn:uuid:other>";reg-id=1', headers: ['Supported: outbound'] }), { transport: 'udp', address: '192.0.2.30', port: 5060 });
  // The phone reboots: a new connection, a new port and a new Call-ID, the same instance and reg-id.
  const again = registrar.register(register(auth, 'boot-2', 1, 'sip:anna@192.0.2.20:40002;transport=tcp', 300, ob), tcpB);
  t.equal(again.status, 200);
  const contacts = location.lookup('anna').map((b) => b.contact).sort();
  t.same(contacts, ['sip:anna@192.0.2.20:40002;transport=tcp', 'sip:anna@192.0.2.30:5060'], 'one binding per flow: the old one is gone');
  t.same(location.lookup('anna').find((b) => b.regId === 1 && b.contact.includes('40002'))?.dest, tcpB, 'reached over its new flow');
  const udp = location.lookup('anna').find((b) => b.contact.includes('192.0.2.30'))!;
  t.same(udp.dest, { transport: 'udp', address: '192.0.2.30', port: 5060 }, 'an outbound UDP flow is its source');

  // Without Supported: outbound the parameters are just parameters (RFC 3261 registration).
  const plain = registrar.register(register(auth, 'boot-3', 1, 'sip:anna@192.0.2.20:40003;transport=tcp', 300, { params: inst }), { ...tcpA, port: 40003 });
  t.notOk(plain.headers.includes('Require: outbound'));
  t.equal(location.lookup('anna').length, 3, 'no replacement without the option tag');
  const two = registrar.register(
    register(auth, 'boot-4', 1, 'sip:anna@192.0.2.20:40004;transport=tcp', 300, { params: inst + ', <sip:anna@192.0.2.20:40005>;+sip.instance="<urn:uuid:x>";reg-id=2', headers: ['Supported: outbound'] }),
    { ...tcpA, port: 40004 },
  );
  t.equal(two.status, 400, 'two flows in one REGISTER: 400 (RFC 5626 §6)');
});
