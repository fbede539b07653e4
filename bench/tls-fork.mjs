#!/usr/bin/env node
// Instructions (callgrind Ir, user space) per forked call over UDP and over TLS, in one proxy
// process. The call is bench/run.mjs's forked call (scenarios/uac-call.xml and the two device
// scenarios): a trunk calls extension 300 (two devices); both ring (180), one answers after
// RING_MS, the proxy CANCELs the other (200, 487, ACK); the caller ACKs, holds HOLD_MS, BYE, 200.
// SIPp here has no TLS, so caller and devices are this script (node:dgram, node:tls), the
// devices registering first (digest MD5) on kept connections. Three variants:
//   udp      the caller and both devices over UDP
//   tls      the caller (a trunk by address) and both devices over TLS, each on its connection
//   udp-tls  a UDP trunk calling the two TLS devices (double Record-Route)
// First WARM calls of each variant at WARM_RATE/s, uninstrumented (JIT). Then ROUNDS rounds of
// the three variants, interleaved; per variant REWARM calls at WARM_RATE/s uninstrumented,
// SETTLE calls at RATE/s instrumented but not counted (so the timers of earlier calls, 32 s
// on UDP, fire in the window at the window's pace), then the window of N calls at RATE/s.
// Prints per window the whole count and the "steady" one (bench/lib/measure.mjs v8Work: JIT
// compilation and GC left out), then medians and TLS / UDP. DRY=1 runs the same calls without
// valgrind, to check the flows. Usage, after `npm run build` (about 12 minutes by default):
//   node bench/tls-fork.mjs [REPO=.] [N=300]
//   (RATE=10 WARM=2400 REWARM=300 WARM_RATE=30 SETTLE=350 ROUNDS=2 RING_MS=100 HOLD_MS=100 OUT=dir)
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { v8Work } from './lib/measure.mjs';

const REPO = process.argv[2] ?? '.';
const N = Number(process.argv[3] ?? 300);
const env = (k, d) => Number(process.env[k] || d);
const RATE = env('RATE', 10), WARM = env('WARM', 2400), REWARM = env('REWARM', 300), WARM_RATE = env('WARM_RATE', 30), SETTLE = env('SETTLE', 350);
const ROUNDS = env('ROUNDS', 2), RING_MS = env('RING_MS', 100), HOLD_MS = env('HOLD_MS', 100);
const D = process.env.OUT ?? '/tmp/sipbob-tls-fork-bench';
fs.mkdirSync(D, { recursive: true });
// Not bench/run.mjs's 25060/25080 nor tls-register's 27990-27992.
const SIP = 27993, TLSP = 27994, HTTP = 27995, DOMAIN = 'bench.sipbob.test';
const CALLER = '127.0.0.61';
const o = (a) => execFileSync('openssl', a, { cwd: D, stdio: 'ignore' });
if (!fs.existsSync(`${D}/srv.pem`)) {
  o(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=ca']);
  fs.writeFileSync(`${D}/ext`, 'subjectAltName=IP:127.0.0.1\n');
  o(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=srv']);
  o(['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '1', '-extfile', 'ext']);
}
const ca = fs.readFileSync(`${D}/ca.pem`);
// bench/gen.mjs's config for the fork extension, plus the TLS listener and a second extension
// whose devices are on TLS (a device on both would ring twice).
fs.writeFileSync(`${D}/sipbob.yaml`, `domain: ${DOMAIN}
listen: [udp://127.0.0.1:${SIP}, tls://127.0.0.1:${TLSP}]
tls: { cert: ${D}/srv.pem, key: ${D}/srv.key }
http: { listen: 127.0.0.1:${HTTP}, adminToken: bench-token }
auth: { algorithms: [MD5] }
registrar: { minExpires: 60, maxExpires: 3600, defaultExpires: 600 }
calls: { ringTimeout: 30, maxCallDuration: 14400 }
storage: { path: ${D}/state }
log: { level: warn }
trunks:
  - { name: bench-caller, address: ${CALLER} }
extensions:
  - { number: "300", name: Fork UDP, busyOnBusy: false, devices: [{ username: ua, password: pw-ua }, { username: ub, password: pw-ub }] }
  - { number: "301", name: Fork TLS, busyOnBusy: false, devices: [{ username: ta, password: pw-ta }, { username: tb, password: pw-tb }] }
`);
fs.rmSync(`${D}/state`, { recursive: true, force: true });
for (const f of fs.readdirSync(D)) if (f.startsWith('cg.out')) fs.rmSync(`${D}/${f}`);
const NODE_FLAGS = (process.env.CG_NODE_FLAGS ?? '--single-threaded --no-memory-reducer --min-semi-space-size=16').split(' ').filter(Boolean);
// DRY=1: the same calls against the proxy without valgrind (no counts), to check the flows quickly.
const DRY = process.env.DRY === '1';
const proxyArgs = [...NODE_FLAGS, `${REPO}/dist/src/cli.js`, '--config', `${D}/sipbob.yaml`];
const child = DRY
  ? spawn(process.execPath, proxyArgs, { stdio: ['ignore', 'ignore', 'inherit'] })
  : spawn('valgrind', ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${D}/cg.out`, process.execPath, ...proxyArgs], { stdio: ['ignore', 'ignore', 'ignore'] });
const stopChild = () => { try { child.kill('SIGKILL'); } catch {} };
process.on('exit', stopChild);
process.on('SIGINT', () => process.exit(130));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
for (let i = 0; ; i++) {
  try { if ((await fetch(`http://127.0.0.1:${HTTP}/healthz`)).status === 200) break; } catch {}
  if (i > 240) throw new Error('no healthz');
  await sleep(500);
}

// --- SIP text helpers (the proxy writes full header names).
const hdrs = (m, name) => [...m.slice(0, m.indexOf('\r\n\r\n')).matchAll(new RegExp(`^${name}:[ \\t]*(.*)$`, 'gim'))].map((x) => x[1]);
const hdr = (m, name) => hdrs(m, name)[0] ?? '';
const callIdOf = (m) => hdr(m, 'Call-ID');
const md5 = (s) => createHash('md5').update(s).digest('hex');
const SDP = 'v=0\r\no=b 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n';
let seq = 0;

// --- A leg: one socket (UDP) or one kept connection (TLS) of the caller or a device. Messages
// are handed to the waiter whose predicate takes them, else kept for a later waiter of a live
// call; anything else (a retransmission after its call ended) is counted as stray and dropped.
const live = new Set();
let strays = 0;
function leg(host, transport, port, write, onMessage) {
  const L = { host, transport, port, write, waiters: [], unread: [] };
  onMessage((m) => {
    const i = L.waiters.findIndex((w) => w.pred(m));
    if (i !== -1) return L.waiters.splice(i, 1)[0].resolve(m);
    if (live.has(callIdOf(m))) L.unread.push(m);
    else strays++;
  });
  L.next = (pred) => {
    const i = L.unread.findIndex(pred);
    if (i !== -1) return Promise.resolve(L.unread.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (m) => { clearTimeout(w.timer); resolve(m); } };
      w.timer = setTimeout(() => { L.waiters.splice(L.waiters.indexOf(w), 1); reject(new Error(`${host}/${transport}: timeout`)); }, 60_000);
      L.waiters.push(w);
    });
  };
  L.forget = (callId) => { L.unread = L.unread.filter((m) => callIdOf(m) !== callId); };
  L.via = () => `SIP/2.0/${transport.toUpperCase()} ${host}:${L.port()};branch=z9hG4bK-f${++seq}`;
  return L;
}
async function udpLeg(host) {
  const s = dgram.createSocket('udp4');
  await new Promise((r) => s.bind(0, host, r));
  return leg(host, 'udp', () => s.address().port, (t) => s.send(t, SIP, '127.0.0.1'), (f) => s.on('message', (b) => f(b.toString('latin1'))));
}
async function tlsLeg(host) {
  const raw = net.connect({ host: '127.0.0.1', port: TLSP, localAddress: host });
  const s = tls.connect({ socket: raw, host: '127.0.0.1', ca });
  await new Promise((r, j) => { s.once('secureConnect', r); s.once('error', j); });
  s.setEncoding('latin1');
  return leg(host, 'tls', () => s.localPort, (t) => s.write(t), (f) => {
    let buf = '';
    s.on('data', (d) => {
      buf += d;
      for (;;) {
        while (buf.startsWith('\r\n')) buf = buf.slice(2);
        const e = buf.indexOf('\r\n\r\n');
        if (e === -1) return;
        const len = Number(/^Content-Length:\s*(\d+)/im.exec(buf.slice(0, e))?.[1] ?? 0);
        if (buf.length < e + 4 + len) return;
        const m = buf.slice(0, e + 4 + len);
        buf = buf.slice(e + 4 + len);
        f(m);
      }
    });
  });
}
const contactOf = (L, user) => `sip:${user}@${L.host}:${L.port()}${L.transport === 'tls' ? ';transport=tls' : ''}`;

async function register(L, user, pw) {
  const callId = `reg-${user}`;
  live.add(callId);
  const req = (cseq, auth) => `REGISTER sip:${DOMAIN} SIP/2.0\r\nVia: ${L.via()}\r\nMax-Forwards: 70\r\nFrom: <sip:${user}@${DOMAIN}>;tag=r${user}\r\nTo: <sip:${user}@${DOMAIN}>\r\nCall-ID: ${callId}\r\nCSeq: ${cseq} REGISTER\r\nContact: <${contactOf(L, user)}>\r\n${auth ? `Authorization: ${auth}\r\n` : ''}Expires: 3600\r\nContent-Length: 0\r\n\r\n`;
  const isReg = (m) => m.startsWith('SIP/2.0') && callIdOf(m) === callId;
  L.write(req(1, ''));
  const ch = await L.next(isReg);
  const nonce = /nonce="([^"]+)"/.exec(ch)[1];
  const uri = `sip:${DOMAIN}`;
  const resp = md5(`${md5(`${user}:${DOMAIN}:${pw}`)}:${nonce}:00000001:c:auth:${md5(`REGISTER:${uri}`)}`);
  L.write(req(2, `Digest username="${user}", realm="${DOMAIN}", nonce="${nonce}", uri="${uri}", response="${resp}", algorithm=MD5, qop=auth, nc=00000001, cnonce="c"`));
  const ok = await L.next(isReg);
  if (!ok.startsWith('SIP/2.0 200')) throw new Error(`${user}: ${ok}`);
  live.delete(callId);
}

/** A device's response to req: Via, From, To (+tag), Call-ID, CSeq; Record-Route and Contact for a 2xx to INVITE. */
function response(L, user, req, status, tag, { dialog = false, body = '' } = {}) {
  const to = hdr(req, 'To');
  return [
    `SIP/2.0 ${status}`,
    ...hdrs(req, 'Via').map((v) => `Via: ${v}`),
    ...(dialog ? hdrs(req, 'Record-Route').map((r) => `Record-Route: ${r}`) : []),
    `From: ${hdr(req, 'From')}`,
    `To: ${tag && !/;tag=/i.test(to) ? `${to};tag=${tag}` : to}`,
    `Call-ID: ${callIdOf(req)}`,
    `CSeq: ${hdr(req, 'CSeq')}`,
    ...(dialog ? [`Contact: <${contactOf(L, user)}>`] : []),
    ...(body ? ['Content-Type: application/sdp'] : []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
}

const shown = new Set();
/** One forked call to ext: a answers after RING_MS, b is cancelled; the caller holds HOLD_MS and hangs up. */
async function forkCall(c, a, b, ext, id) {
  const callId = `fork-${id}`;
  live.add(callId);
  const is = (method) => (m) => m.startsWith(`${method} `) && callIdOf(m) === callId;
  const isResp = (code, method) => (m) => m.startsWith(`SIP/2.0 ${code} `) && callIdOf(m) === callId && hdr(m, 'CSeq').endsWith(` ${method}`);
  const from = `"Bench Caller" <sip:caller@${c.host}:${c.port()}>;tag=c${id}`;
  c.write(`INVITE sip:${ext}@${DOMAIN} SIP/2.0\r\nVia: ${c.via()}\r\nFrom: ${from}\r\nTo: <sip:${ext}@${DOMAIN}>\r\nCall-ID: ${callId}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@${c.host}:${c.port()}${c.transport === 'tls' ? ';transport=tls' : ''}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: ${SDP.length}\r\n\r\n${SDP}`);
  const [ia, ib] = await Promise.all([a.next(is('INVITE')), b.next(is('INVITE'))]);
  a.write(response(a, 'a', ia, '180 Ringing', `a${id}`));
  b.write(response(b, 'b', ib, '180 Ringing', `b${id}`));
  await sleep(RING_MS);
  a.write(response(a, 'a', ia, '200 OK', `a${id}`, { dialog: true, body: SDP }));
  const ok = await c.next(isResp(200, 'INVITE'));
  // The UAC's route set is the 2xx's Record-Route, reversed; the target its Contact.
  const routes = hdrs(ok, 'Record-Route').flatMap((r) => r.split(/,(?=\s*<)/)).reverse().map((r) => `Route: ${r.trim()}\r\n`).join('');
  const target = /<([^>]+)>/.exec(hdr(ok, 'Contact'))[1];
  if (DRY && !shown.has(ext + c.transport)) {
    shown.add(ext + c.transport);
    console.error(`${c.transport} caller -> ${ext}: Record-Route ${hdrs(ok, 'Record-Route').join(', ')}`);
  }
  const inDialog = (method, cseq) =>
    `${method} ${target} SIP/2.0\r\nVia: ${c.via()}\r\n${routes}From: ${from}\r\nTo: ${hdr(ok, 'To')}\r\nCall-ID: ${callId}\r\nCSeq: ${cseq} ${method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`;
  c.write(inDialog('ACK', 1));
  const cancel = await b.next(is('CANCEL'));
  b.write(response(b, 'b', cancel, '200 OK', `b${id}`));
  b.write(response(b, 'b', ib, '487 Request Terminated', `b${id}`));
  await Promise.all([a.next(is('ACK')), b.next(is('ACK'))]);
  await sleep(HOLD_MS);
  c.write(inDialog('BYE', 2));
  const bye = await a.next(is('BYE'));
  a.write(response(a, 'a', bye, '200 OK', ''));
  await c.next(isResp(200, 'BYE'));
  live.delete(callId);
  for (const L of [c, a, b]) L.forget(callId);
}

/** n calls started at rate/s, each on its own; resolves when all ended. */
let callNo = 0;
async function calls(v, n, rate) {
  const all = [];
  const t0 = Date.now();
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / rate;
    if (due > Date.now()) await sleep(due - Date.now());
    all.push(forkCall(v.c, v.a, v.b, v.ext, ++callNo));
  }
  await Promise.all(all);
}

// The legs: a UDP caller and a TLS caller from the trunk's address; two devices on UDP
// (extension 300), two on TLS (extension 301).
const udpCaller = await udpLeg(CALLER), tlsCaller = await tlsLeg(CALLER);
const ua = await udpLeg('127.0.0.51'), ub = await udpLeg('127.0.0.52');
const ta = await tlsLeg('127.0.0.53'), tb = await tlsLeg('127.0.0.54');
await register(ua, 'ua', 'pw-ua'); await register(ub, 'ub', 'pw-ub');
await register(ta, 'ta', 'pw-ta'); await register(tb, 'tb', 'pw-tb');
const variants = {
  udp: { c: udpCaller, a: ua, b: ub, ext: '300' },
  tls: { c: tlsCaller, a: ta, b: tb, ext: '301' },
  'udp-tls': { c: udpCaller, a: ta, b: tb, ext: '301' },
};

const cgc = (...a) => DRY || execFileSync('callgrind_control', [...a, String(child.pid)], { stdio: 'ignore' });
const dumps = () => new Set(fs.readdirSync(D).filter((f) => /^cg\.out\.\d+$/.test(f)));
const annotate = (files, args) => spawnSync('callgrind_annotate', [...args, ...files], { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] }).stdout ?? '';
// The flood limit (300 requests in 2 s by default) allows the caller's 3 requests a call at 30/s.
for (const v of Object.values(variants)) await calls(v, WARM, WARM_RATE);
const results = [];
for (let round = 1; round <= ROUNDS; round++) {
  for (const [name, v] of Object.entries(variants)) {
    const t0 = Date.now();
    await calls(v, REWARM, WARM_RATE);
    cgc('-i', 'on');
    await calls(v, SETTLE, RATE);
    const before = dumps();
    cgc('-z');
    const strays0 = strays;
    await calls(v, N, RATE);
    cgc('-d', `${name}-${round}`);
    cgc('-i', 'off');
    await sleep(1500);
    const files = [...dumps()].filter((f) => !before.has(f)).map((f) => `${D}/${f}`);
    const ir = files.reduce((s, f) => s + Number(/^totals: (\d+)/m.exec(fs.readFileSync(f, 'utf8'))?.[1] ?? 0), 0);
    const w = DRY ? { compile: 0, gc: 0 } : v8Work(annotate(files, ['--inclusive=yes', '--threshold=100']), annotate(files, ['--tree=caller', '--threshold=100']));
    const r = { round, variant: name, N, whole: Math.round(ir / N), steady: Math.round((ir - w.compile - w.gc) / N), compile: Math.round(w.compile / N), gc: Math.round(w.gc / N), strays: strays - strays0, seconds: Math.round((Date.now() - t0) / 1000) };
    results.push(r);
    console.error(JSON.stringify(r));
  }
}
const med = (xs) => { const s = [...xs].sort((p, q) => p - q); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const summary = {};
for (const name of Object.keys(variants)) {
  const rs = results.filter((r) => r.variant === name);
  summary[name] = { whole: med(rs.map((r) => r.whole)), steady: med(rs.map((r) => r.steady)), runs: rs.map((r) => `${r.whole}/${r.steady}`) };
}
const ratio = (k, f) => Number((summary[k][f] / summary.udp[f]).toFixed(2));
console.log(JSON.stringify({ N, RATE, WARM, REWARM, SETTLE, ROUNDS, ...summary, ratio: { tls: { whole: ratio('tls', 'whole'), steady: ratio('tls', 'steady') }, 'udp-tls': { whole: ratio('udp-tls', 'whole'), steady: ratio('udp-tls', 'steady') } } }));
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
process.exit(0);
