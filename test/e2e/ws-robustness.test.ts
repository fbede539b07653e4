/**
 * SIP over WebSocket (ws:// and wss://) against the built proxy, with the `ws` package as the
 * client: a device on a WebSocket is reached over its connection (a trunk's INVITE over UDP
 * reaches it and its answer goes back), the handshake rules (subprotocol sip, 426 for plain
 * HTTP), hostile clients (garbage frames, frames past the size limit, a handshake that never
 * ends, hundreds of connections) while a UDP client keeps getting answers, and the RFC 4475
 * torture messages, one frame each, judged by the manifest the UDP test uses.
 */
import t from 'tap';
import net from 'node:net';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { portBlock, startProxy, waitFor, type Proxy } from './harness.js';
import { digestAuth, header, sipMessage, UdpPeer } from './raw-sip.js';
import { makeCa, makeCert, type TestCa, type TestCert } from '../support/test-certs.js';

const { sip, http, base } = portBlock(18);
const WS_PORT = base + 1;
const WSS_PORT = base + 2;
const TRUNK = '127.0.0.71';
const PROBE = '127.0.0.72';
const TORTURE = fileURLToPath(new URL('../data/rfc4475/', import.meta.url));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let proxy: Proxy;
let ca: TestCa;
let first: TestCert;
let second: TestCert;
/** The files the config names; a renewal replaces their contents (by rename, as certbot). */
const LIVE = (() => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sipbob-e2e-wss-live-'));
  return { cert: path.join(dir, 'fullchain.pem'), key: path.join(dir, 'privkey.pem') };
})();
function install(c: TestCert): void {
  for (const [from, to] of [
    [c.certFile, LIVE.cert],
    [c.keyFile, LIVE.key],
  ] as const) {
    copyFileSync(from, `${to}.new`);
    renameSync(`${to}.new`, to);
  }
}

t.before(async () => {
  ca = makeCa();
  first = makeCert(ca, 'first', 'sipbob-first');
  second = makeCert(ca, 'second', 'sipbob-second');
  install(first);
  proxy = await startProxy({
    sipPort: sip,
    httpPort: http,
    listen: [`udp://127.0.0.1:${sip}`, `ws://127.0.0.1:${WS_PORT}`, `wss://127.0.0.1:${WSS_PORT}`],
    tls: LIVE,
    trunks: [{ name: 'trunk', address: TRUNK }],
    // The torture and flood clients are far past the default flood limit on purpose.
    security: { floodLimit: { requests: 1_000_000, seconds: 1, ban: 1 } },
    extensions: [{ number: '100', devices: [{ username: 'web100', password: 'pw100' }] }],
  });
});

t.teardown(async () => {
  await proxy?.stop();
  ca?.remove();
  rmSync(path.dirname(LIVE.cert), { recursive: true, force: true });
});

/** A WebSocket client that keeps every text it receives. */
interface Client {
  ws: WebSocket;
  got: string[];
  closed: Promise<number>;
  next(pred: (m: string) => boolean, ms?: number): Promise<string>;
}

function open(url: string, opts: { protocols?: string[]; localAddress?: string; maxPayload?: number } = {}): Promise<Client> {
  const ws = new WebSocket(url, opts.protocols ?? ['sip'], { ca: ca.pem, localAddress: opts.localAddress, handshakeTimeout: 5000 });
  const got: string[] = [];
  ws.on('message', (d) => got.push(d.toString()));
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  const client: Client = {
    ws,
    got,
    closed,
    next: (pred, ms = 5000) => waitFor('a WebSocket message', () => got.find(pred), ms),
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake answered ${res.statusCode}`)));
  });
}

/** An OPTIONS over UDP from PROBE: the proxy answers 200 while it is well. */
async function udpProbe(n: number): Promise<string> {
  const peer = await UdpPeer.open(PROBE);
  try {
    peer.send(
      sipMessage([
        `OPTIONS sip:127.0.0.1:${sip} SIP/2.0`,
        `Via: SIP/2.0/UDP ${PROBE}:${peer.port};rport;branch=z9hG4bK-udp-${n}-${Date.now()}`,
        'Max-Forwards: 70',
        `From: <sip:probe@${PROBE}>;tag=p${n}`,
        `To: <sip:127.0.0.1>`,
        `Call-ID: ws-probe-${n}-${Date.now()}`,
        'CSeq: 1 OPTIONS',
      ]),
      sip,
    );
    const m = await peer.next((x) => x.startsWith('SIP/2.0 '), 3000);
    return m.split('\r\n')[0]!;
  } finally {
    peer.close();
  }
}

function options(n: number, transport: string): string {
  return sipMessage([
    `OPTIONS sip:127.0.0.1 SIP/2.0`,
    `Via: SIP/2.0/${transport} abc${n}.invalid;branch=z9hG4bK-ws-${n}-${Date.now()}`,
    'Max-Forwards: 70',
    `From: <sip:probe@pbx.example.test>;tag=w${n}`,
    `To: <sip:127.0.0.1>`,
    `Call-ID: ws-opt-${n}-${Date.now()}`,
    'CSeq: 1 OPTIONS',
  ]);
}

t.test('a browser-style device registers over wss with an .invalid Contact and is rung over its connection', async (t) => {
  const dev = await open(`wss://127.0.0.1:${WSS_PORT}`);
  const contact = '<sip:k3x9@df7jal23ls0d.invalid;transport=ws>';
  const reg = (cseq: number, auth?: string) =>
    sipMessage([
      `REGISTER sip:pbx.example.test SIP/2.0`,
      `Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK-reg-${cseq}`,
      'Max-Forwards: 70',
      'From: <sip:web100@pbx.example.test>;tag=r1',
      'To: <sip:web100@pbx.example.test>',
      'Call-ID: ws-reg-1',
      `CSeq: ${cseq} REGISTER`,
      `Contact: ${contact};expires=300`,
      ...(auth ? [`Authorization: ${auth}`] : []),
    ]);
  dev.ws.send(reg(1));
  const challenge = await dev.next((m) => m.startsWith('SIP/2.0 401'));
  t.match(header(challenge, 'via')[0], /^SIP\/2\.0\/WSS df7jal23ls0d\.invalid/, 'the 401 came back over the connection, Via as sent');
  dev.ws.send(reg(2, digestAuth({ username: 'web100', password: 'pw100' }, header(challenge, 'www-authenticate')[0]!, 'REGISTER', 'sip:pbx.example.test', 'MD5')));
  await dev.next((m) => m.startsWith('SIP/2.0 200'));

  // A trunk over UDP calls 100: the INVITE can only reach the device over its WebSocket.
  const trunk = await UdpPeer.open(TRUNK);
  trunk.send(
    sipMessage([
      `INVITE sip:100@127.0.0.1:${sip} SIP/2.0`,
      `Via: SIP/2.0/UDP ${TRUNK}:${trunk.port};branch=z9hG4bK-inv-1`,
      'Max-Forwards: 70',
      `From: <sip:0301234@${TRUNK}>;tag=t1`,
      'To: <sip:100@pbx.example.test>',
      'Call-ID: ws-inv-1',
      'CSeq: 1 INVITE',
      `Contact: <sip:0301234@${TRUNK}:${trunk.port}>`,
    ]),
    sip,
  );
  const invite = await dev.next((m) => m.startsWith('INVITE '));
  t.match(invite.split('\r\n')[0], /^INVITE sip:k3x9@df7jal23ls0d\.invalid;transport=ws SIP\/2\.0$/, 'Request-URI is the registered contact');
  t.match(header(invite, 'via')[0], new RegExp(`^SIP/2\\.0/WSS 127\\.0\\.0\\.1:${WSS_PORT};`), 'our Via names the WSS listener');
  t.match(header(invite, 'record-route').join(','), /transport=wss/, 'Record-Route names the WSS listener');
  // Answer busy, echoing the request's Vias, as a phone does.
  const lines = invite.split('\r\n');
  const keep = lines.filter((l) => /^(via|from|to|call-id|cseq):/i.test(l));
  dev.ws.send(sipMessage(['SIP/2.0 486 Busy Here', ...keep.map((l) => (/^to:/i.test(l) ? `${l};tag=dev1` : l))]));
  const busy = await trunk.next((m) => m.startsWith('SIP/2.0 486'));
  t.ok(busy, 'the 486 from the WebSocket reached the UDP trunk');
  trunk.close();
  dev.ws.close();
  await dev.closed;
});

/** The certificate fingerprint a new TLS connection to the wss port is served. */
function servedFingerprint(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: WSS_PORT, ca: ca.pem }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.destroy();
    });
    s.once('error', reject);
  });
}

t.test('wss: the certificate of tls is re-read on SIGHUP; open connections stay', async (t) => {
  t.equal(await servedFingerprint(), first.fingerprint256, 'the configured certificate');
  const kept = await open(`wss://127.0.0.1:${WSS_PORT}`);
  install(second);
  proxy.reload();
  await proxy.waitForLog((l) => l['msg'] === 'sip tls certificate reloaded', 10_000);
  t.equal(await servedFingerprint(), second.fingerprint256, 'a new connection gets the new certificate');
  kept.ws.send(options(3, 'WSS'));
  await kept.next((m) => m.startsWith('SIP/2.0 200'));
  t.pass('a connection opened before the reload still works');
  kept.ws.close();
});

t.test('handshake rules: subprotocol sip required, plain HTTP gets 426', async (t) => {
  await t.rejects(open(`ws://127.0.0.1:${WS_PORT}`, { protocols: [] }), /handshake answered 400/, 'no subprotocol: refused');
  await t.rejects(open(`ws://127.0.0.1:${WS_PORT}`, { protocols: ['chat'] }), /handshake answered 400/, 'another subprotocol: refused');
  const both = await open(`ws://127.0.0.1:${WS_PORT}`, { protocols: ['chat', 'sip'] });
  t.equal(both.ws.protocol, 'sip', 'sip among others: accepted as sip');
  both.ws.send(options(1, 'WS'));
  await both.next((m) => m.startsWith('SIP/2.0 200'));
  both.ws.close();
  const res = await fetch(`http://127.0.0.1:${WS_PORT}/`);
  t.equal(res.status, 426, 'a plain GET: 426 Upgrade Required');
});

t.test('garbage and oversized frames close only their connection; the proxy serves on', async (t) => {
  const c = await open(`ws://127.0.0.1:${WS_PORT}`);
  c.ws.send(Buffer.from([0, 1, 2, 255, 254, 13, 10, 13, 10]));
  c.ws.send('\x00\x00garbage that is not SIP\r\n\r\n');
  c.ws.send('INVITE sip:x SIP/2.0\r\nVia: broken\r\n\r\n');
  c.ws.send(options(2, 'WS'));
  await c.next((m) => m.startsWith('SIP/2.0 200'));
  t.pass('garbage frames were dropped, the next OPTIONS on the same connection got 200');

  // A frame past the SIP message limit: ws closes with 1009 (Message Too Big).
  const big = await open(`ws://127.0.0.1:${WS_PORT}`);
  big.ws.send(Buffer.alloc(200_000, 0x41));
  t.equal(await Promise.race([big.closed, sleep(3000).then(() => -1)]), 1009, 'oversized frame: closed with 1009');
  t.equal(await udpProbe(1), 'SIP/2.0 200 OK', 'UDP still served');
  c.ws.close();
});

t.test('a handshake that never completes is cut; many connections do not stop the proxy', async (t) => {
  const started = Date.now();
  const slow = net.connect(WS_PORT, '127.0.0.1');
  slow.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
  const closedAfter = await new Promise<number>((r) => {
    slow.on('error', () => {});
    slow.on('close', () => r(Date.now() - started));
    setTimeout(() => r(Infinity), 15_000);
  });
  slow.destroy();
  t.ok(closedAfter < 15_000, `an incomplete handshake was closed after ${closedAfter} ms`);

  const many: Client[] = [];
  for (let i = 0; i < 400; i++) many.push(await open(`ws://127.0.0.1:${WS_PORT}`));
  t.equal(many.length, 400, '400 connections open');
  t.equal(await udpProbe(2), 'SIP/2.0 200 OK', 'UDP served with 400 WebSockets open');
  for (const c of many) c.ws.send(options(100, 'WS'));
  await waitFor('an answer on every connection', () => many.every((c) => c.got.some((m) => m.startsWith('SIP/2.0 200'))), 10_000);
  for (const c of many) c.ws.terminate();
  t.equal(await udpProbe(3), 'SIP/2.0 200 OK', 'UDP served after they went');
});

// ------------------------------------------------------------------------------------------
// RFC 4475 over WS: one connection per message, so every answer is attributed to its message.

function judge(expect: string, isResponse: boolean, statuses: number[]): string | undefined {
  const finals = [...new Set(statuses.filter((s) => s >= 200))];
  if (isResponse) return statuses.length ? `a response was answered: ${statuses.join(',')}` : undefined;
  const [rule, codes] = expect.split(':') as [string, string | undefined];
  switch (rule) {
    case 'not400':
      if (finals.includes(400)) return 'rejected as malformed (400)';
      if (finals.length === 0) return 'silently dropped (no final response)';
      return undefined;
    case '400drop': {
      const allowed = new Set([400, ...(codes ?? '').split(',').filter(Boolean).map(Number)]);
      const bad = finals.filter((s) => !allowed.has(s));
      return bad.length ? `answered ${bad.join(',')}` : undefined;
    }
    case 'error':
      return finals.some((s) => s < 400) ? `answered ${finals.join(',')}` : undefined;
    case 'reject':
      return finals.some((s) => s < 300 || s === 400) ? `answered ${finals.join(',')}` : undefined;
    default:
      return undefined;
  }
}

t.test('RFC 4475 torture messages over WS, one frame each', async (t) => {
  const manifest = readFileSync(`${TORTURE}manifest.tsv`, 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => l.split('\t'))
    .map(([name, , , expect]) => ({ name: name!, expect: expect! }));
  t.equal(manifest.length, 49, 'every message of the manifest');
  // These reuse another message's transaction key (see torture.test.ts): over UDP they go to a
  // second proxy; here each is sent a second time after its twin's transaction is long gone
  // would take 32 s, so they are left to the UDP test.
  const TWINS = new Set(['unkscm', 'cparam02', 'regescrt']);
  const rows: string[] = [];
  let failures = 0;
  for (let i = 0; i < manifest.length; i += 10) {
    const batch = manifest.slice(i, i + 10).filter((m) => !TWINS.has(m.name));
    const clients = await Promise.all(batch.map(() => open(`ws://127.0.0.1:${WS_PORT}`, { localAddress: TRUNK })));
    batch.forEach((m, k) => clients[k]!.ws.send(readFileSync(`${TORTURE}${m.name}.sip`)));
    await sleep(800);
    batch.forEach((m, k) => {
      const statuses = clients[k]!.got.map((x) => Number(/^SIP\/2\.0 (\d{3})/.exec(x)?.[1] ?? 0)).filter((s) => s > 0);
      const isResponse = readFileSync(`${TORTURE}${m.name}.sip`).subarray(0, 4).toString() === 'SIP/';
      const why = judge(m.expect, isResponse, statuses);
      rows.push(`${m.name.padEnd(11)} ${m.expect.padEnd(13)} ${(statuses.join(',') || '-').padEnd(12)} ${why ? `FAIL: ${why}` : 'pass'}`);
      if (why !== undefined) {
        failures++;
        t.fail(`${m.name}: ${why}`);
      }
    });
    for (const c of clients) c.ws.terminate();
  }
  t.comment(['RFC 4475 over WS: name, expect, answers, verdict', ...rows].join('\n'));
  t.equal(failures, 0, `${rows.length} messages judged against manifest.tsv`);
  t.equal(await udpProbe(4), 'SIP/2.0 200 OK', 'proxy still serving');
});
