/**
 * SIP over TLS end to end: our own TLS phone (tls-kit.ts; SIPp has no TLS) registers on a
 * tls:// listener with a certificate from a throwaway CA, is rung over its own connection by a
 * UDP trunk with double Record-Route (BYE from either side), rings together with a SIPp UDP
 * phone, gets Busy on Busy, loses its binding when its connection closes, and sees a new
 * certificate after SIGHUP while an open connection keeps working.
 */
import t from 'tap';
import dgram from 'node:dgram';
import { copyFileSync, mkdtempSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ADMIN_TOKEN, DOMAIN, HOSTS, assertExit, callStart, describe, phone, portBlock, type ApiExtension } from './harness.js';
import { start, type Running } from './http-kit.js';
import { header } from './raw-sip.js';
import { SDP, TlsPhone } from './tls-kit.js';
import { makeCa, makeCert } from '../support/test-certs.js';

const P = portBlock(16);
const TLS_PORT = P.sip + 1;
const HTTP_PORT = P.http;
const TLS_DEV = { username: 'anna-tls', password: 'tls-pw-4471' };
const UDP_DEV = { username: 'anna-udp', password: 'udp-pw-4472' };
const BOB_TLS = { username: 'bob-tls', password: 'tls-pw-4473' };

const ca = makeCa();
t.teardown(() => ca.remove());
const first = makeCert(ca, 'first', 'sipbob-sip-first');
const second = makeCert(ca, 'second', 'sipbob-sip-second');
const live = mkdtempSync(path.join(tmpdir(), 'sipbob-e2e-tls-live-'));
const LIVE = { cert: path.join(live, 'fullchain.pem'), key: path.join(live, 'privkey.pem') };
/** Replaces the live files by rename, as a certificate renewal would. */
function install(cert: { certFile: string; keyFile: string }): void {
  for (const [from, to] of [
    [cert.certFile, LIVE.cert],
    [cert.keyFile, LIVE.key],
  ] as const) {
    copyFileSync(from, `${to}.new`);
    renameSync(`${to}.new`, to);
  }
}

const CONFIG: Record<string, unknown> = {
  domain: DOMAIN,
  listen: [`udp://127.0.0.1:${P.sip}`, `tls://127.0.0.1:${TLS_PORT}`],
  tls: LIVE,
  http: { listen: `127.0.0.1:${HTTP_PORT}`, adminToken: ADMIN_TOKEN },
  auth: { algorithms: ['MD5'] },
  storage: { path: mkdtempSync(path.join(tmpdir(), 'sipbob-e2e-tls-storage-')) },
  trunks: [{ name: 'carrier', address: HOSTS.trunkIn }],
  extensions: [
    { number: '200', name: 'Anna', busyOnBusy: true, devices: [TLS_DEV, UDP_DEV] },
    { number: '300', name: 'Bob', busyOnBusy: true, devices: [BOB_TLS] },
  ],
};

async function api<T>(p: string): Promise<T> {
  const r = await fetch(`http://127.0.0.1:${HTTP_PORT}${p}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  if (!r.ok) throw new Error(`${p}: HTTP ${r.status}`);
  return (await r.json()) as T;
}

async function contacts(extension: string, username: string): Promise<string[]> {
  const ext = await api<ApiExtension>(`/api/extensions/${extension}`);
  return ext.devices.find((d) => d.username === username)?.registrations.map((r) => r.contact) ?? [];
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A trunk on UDP: raw datagrams from HOSTS.trunkIn. */
async function udpTrunk(t: { teardown: (fn: () => void) => void }): Promise<{ port: number; got: string[]; send: (m: string) => void }> {
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, HOSTS.trunkIn, () => r()));
  t.teardown(() => udp.close());
  const got: string[] = [];
  udp.on('message', (m) => got.push(m.toString('latin1')));
  return { port: udp.address().port, got, send: (m) => udp.send(m, P.sip, '127.0.0.1') };
}

install(first);
let proxy: Running;
t.before(async () => {
  proxy = await start(CONFIG);
});
t.teardown(() => proxy?.stop());

t.test('TLS phone registers, a UDP trunk calls it and back: double Record-Route, BYE from either side', async (t) => {
  const ph = await TlsPhone.connect(TLS_PORT, HOSTS.phone1, ca.pem, BOB_TLS);
  t.teardown(() => ph.close());
  t.equal(ph.fingerprint256, first.fingerprint256, 'the configured certificate, verified for 127.0.0.1 against the CA');
  const ok = await ph.register(300);
  t.match(ok, /^SIP\/2\.0 200 /, 'REGISTER over TLS: 200');
  t.same(await contacts('300', BOB_TLS.username), [ph.contact], 'the TLS contact is bound');

  const trunk = await udpTrunk(t);
  for (const byeFrom of ['trunk', 'phone'] as const) {
    const callId = `tls-trunk-call-${byeFrom}`;
    trunk.send(
      [
        `INVITE sip:300@${DOMAIN} SIP/2.0`,
        `Via: SIP/2.0/UDP ${HOSTS.trunkIn}:${trunk.port};branch=z9hG4bK-${callId};rport`,
        'Max-Forwards: 70',
        `From: <sip:+4930123@${HOSTS.trunkIn}>;tag=trunk-${byeFrom}`,
        `To: <sip:300@${DOMAIN}>`,
        `Call-ID: ${callId}`,
        'CSeq: 1 INVITE',
        `Contact: <sip:carrier@${HOSTS.trunkIn}:${trunk.port}>`,
        'Content-Type: application/sdp',
        `Content-Length: ${Buffer.byteLength(SDP)}`,
        '',
        SDP,
      ].join('\r\n'),
    );
    const inv = await ph.next((m) => m.startsWith('INVITE ') && m.includes(callId));
    t.match(inv, new RegExp(`^INVITE ${ph.contact.replace(/[.;]/g, '\\$&')} SIP/2.0`), `${byeFrom}: INVITE over the phone's own TLS connection`);
    t.match(header(inv, 'via')[0], /^SIP\/2\.0\/TLS 127\.0\.0\.1:/, 'our Via says TLS');
    const rr = header(inv, 'record-route');
    t.equal(rr.length, 2, 'double Record-Route: UDP in, TLS out');
    t.match(rr[0], new RegExp(`<sip:127\\.0\\.0\\.1:${TLS_PORT};transport=tls;lr>`), 'the phone-facing entry names the TLS listener');
    t.match(rr[1], new RegExp(`<sip:127\\.0\\.0\\.1:${P.sip};transport=udp;lr>`), 'the trunk-facing entry names the UDP listener');
    ph.reply(inv, '180 Ringing', { toTag: `ph-${byeFrom}` });
    ph.reply(inv, '200 OK', { toTag: `ph-${byeFrom}`, recordRoute: true, contact: true, body: SDP });
    await until('the 200 at the trunk', () => trunk.got.some((m) => m.startsWith('SIP/2.0 200') && m.includes(callId)));
    const ok200 = trunk.got.find((m) => m.startsWith('SIP/2.0 200') && m.includes(callId))!;
    const toTag = /tag=([^;>\s]+)/.exec(header(ok200, 'to')[0]!)![1]!;
    const trunkRoutes = [...header(ok200, 'record-route')].reverse();
    t.equal(trunkRoutes.length, 2, 'the trunk sees both Record-Route entries');
    const fromTrunk = (method: string, cseq: number) =>
      [
        `${method} ${ph.contact} SIP/2.0`,
        `Via: SIP/2.0/UDP ${HOSTS.trunkIn}:${trunk.port};branch=z9hG4bK-${callId}-${method};rport`,
        'Max-Forwards: 70',
        ...trunkRoutes.map((r) => `Route: ${r}`),
        `From: <sip:+4930123@${HOSTS.trunkIn}>;tag=trunk-${byeFrom}`,
        `To: <sip:300@${DOMAIN}>;tag=${toTag}`,
        `Call-ID: ${callId}`,
        `CSeq: ${cseq} ${method}`,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
    trunk.send(fromTrunk('ACK', 1));
    const ack = await ph.next((m) => m.startsWith('ACK ') && m.includes(callId));
    t.equal(header(ack, 'route').length, 0, 'ACK over TLS with both our Route entries popped');
    await until('the call in the API', async () => (await api<Array<{ extension: string }>>('/api/calls')).some((c) => c.extension === '300'));

    if (byeFrom === 'trunk') {
      trunk.send(fromTrunk('BYE', 2));
      const bye = await ph.next((m) => m.startsWith('BYE ') && m.includes(callId));
      t.equal(header(bye, 'route').length, 0, 'BYE from the trunk reaches the phone over TLS');
      ph.reply(bye, '200 OK');
      await until('200 to BYE at the trunk', () => trunk.got.some((m) => m.startsWith('SIP/2.0 200') && m.includes(callId) && /CSeq: 2 BYE/.test(m)));
    } else {
      // The phone's route set is the Record-Route in order (RFC 3261 §12.1.1): TLS entry first.
      ph.send(
        [
          `BYE sip:carrier@${HOSTS.trunkIn}:${trunk.port} SIP/2.0`,
          `Via: SIP/2.0/TLS ${ph.host}:${ph.port};branch=z9hG4bK-${callId}-phbye`,
          'Max-Forwards: 70',
          ...rr.map((r) => `Route: ${r}`),
          `From: <sip:300@${DOMAIN}>;tag=${toTag}`,
          `To: <sip:+4930123@${HOSTS.trunkIn}>;tag=trunk-${byeFrom}`,
          `Call-ID: ${callId}`,
          'CSeq: 7 BYE',
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n'),
      );
      await until('the BYE at the trunk', () => trunk.got.some((m) => m.startsWith('BYE ') && m.includes(callId)));
      const bye = trunk.got.find((m) => m.startsWith('BYE ') && m.includes(callId))!;
      t.equal(header(bye, 'route').length, 0, 'BYE from the phone reaches the trunk over UDP, both our entries popped');
      t.match(header(bye, 'via')[0], /^SIP\/2\.0\/UDP 127\.0\.0\.1:/, 'leaving on UDP');
      trunk.send(
        [
          'SIP/2.0 200 OK',
          ...header(bye, 'via').map((v) => `Via: ${v}`),
          `From: ${header(bye, 'from')[0]}`,
          `To: ${header(bye, 'to')[0]}`,
          `Call-ID: ${callId}`,
          'CSeq: 7 BYE',
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n'),
      );
      const done = await ph.next((m) => m.startsWith('SIP/2.0 200') && /CSeq: 7 BYE/.test(m));
      t.ok(done, '200 to the BYE back to the phone over TLS');
    }
    await until('the call gone', async () => !(await api<Array<{ extension: string }>>('/api/calls')).some((c) => c.extension === '300'));
  }

  // The connection closes: the binding over it goes (the phone is unreachable without it).
  ph.close();
  await until('the binding gone', async () => (await contacts('300', BOB_TLS.username)).length === 0);
  t.pass('the TLS binding vanished with its connection');
  t.ok(proxy.logs.some((l) => l['msg'] !== undefined), 'proxy still logging');
});

t.test('a forked call rings a TLS phone and a SIPp UDP phone together; Busy on Busy over TLS', async (t) => {
  const ph = await TlsPhone.connect(TLS_PORT, HOSTS.phone1, ca.pem, TLS_DEV);
  t.teardown(() => ph.close());
  t.match(await ph.register(300), /^SIP\/2\.0 200 /, 'TLS phone registered');
  const remote = `127.0.0.1:${P.sip}`;
  const udpPhone = await phone({ ...UDP_DEV, local: HOSTS.phone2, localPort: P.base + 1, remote, scenario: 'phone-ring-cancelled.xml', timeoutSec: 20 });
  t.teardown(() => udpPhone.stop());

  const caller = callStart({ local: HOSTS.trunkIn, localPort: P.base + 2, remote, to: '200', pauseMs: 3000, timeoutSec: 20 });
  t.teardown(() => caller.stop());
  const inv = await ph.next((m) => m.startsWith('INVITE '), 8000);
  t.pass('the TLS phone rings');
  ph.reply(inv, '180 Ringing', { toTag: 'fork-tls' });
  // The SIPp phone rings at the same time (its scenario expects INVITE, then CANCEL).
  await new Promise((r) => setTimeout(r, 500));
  ph.reply(inv, '200 OK', { toTag: 'fork-tls', recordRoute: true, contact: true, body: SDP });
  const ack = await ph.next((m) => m.startsWith('ACK '), 8000);
  t.ok(ack, 'the TLS phone answered and got its ACK');
  const udpResult = await udpPhone.done;
  assertExit(t, udpResult, 0, 'the SIPp UDP phone rang and was cancelled when the TLS phone answered');

  // Busy on Busy: a second call while the TLS phone talks gets 486, and the TLS phone does not ring.
  const busy = callStart({ local: HOSTS.trunkIn, localPort: P.base + 3, remote, to: '200', expect: 486, timeoutSec: 10 });
  const busyResult = await busy.done;
  assertExit(t, busyResult, 0, '486 Busy Here for the second call');
  t.notOk(ph.received.filter((m) => m.startsWith('INVITE ')).length > 1, 'the TLS phone was not rung again');

  // The caller hangs up after its pause: BYE over TLS to the phone.
  const bye = await ph.next((m) => m.startsWith('BYE '), 10000);
  ph.reply(bye, '200 OK');
  const callerResult = await caller.done;
  assertExit(t, callerResult, 0, `the caller's call completed\n${describe(callerResult)}`);
});

t.test('SIGHUP swaps the certificate: a new connection sees it, an open one keeps working', async (t) => {
  const before = await TlsPhone.connect(TLS_PORT, HOSTS.phone3, ca.pem, TLS_DEV);
  t.teardown(() => before.close());
  t.equal(before.fingerprint256, first.fingerprint256);
  install(second);
  proxy.reload();
  const line = await proxy.waitForLog((l) => l['msg'] === 'sip tls certificate reloaded', 10000);
  t.match(line['certificate'], { subject: 'CN=sipbob-sip-second', fingerprint256: second.fingerprint256 }, 'the reload logs the new certificate');
  const after = await TlsPhone.connect(TLS_PORT, HOSTS.phone4, ca.pem, TLS_DEV);
  t.teardown(() => after.close());
  t.equal(after.fingerprint256, second.fingerprint256, 'a new connection is served the new certificate');
  t.match(await before.register(300), /^SIP\/2\.0 200 /, 'the connection opened before the reload still carries SIP');
  t.notOk(before.closed, 'and stays open');
});
