#!/usr/bin/env node
// Instructions (callgrind Ir, user space) per registration round — REGISTER, 401, REGISTER
// with digest, 200 — over UDP, over one kept TLS connection, and over a fresh TLS connection
// per round (full handshake), in one proxy process, after a warm-up. SIPp here has no TLS, so
// the client is this script (node:tls). Usage, after `npm run build`:
//   node bench/tls-register.mjs [REPO=.] [N=200]      (WARM=400 rounds of warm-up each; OUT=dir)
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
const REPO = process.argv[2] ?? '.';
const N = Number(process.argv[3] ?? 100);
const D = process.env.OUT ?? '/tmp/sipbob-tls-bench';
fs.mkdirSync(D, { recursive: true });
const SIP = 27990, TLSP = 27991, HTTP = 27992, DOMAIN = 'pbx.example.test';
const o = (a) => execFileSync('openssl', a, { cwd: D, stdio: 'ignore' });
if (!fs.existsSync(`${D}/srv.pem`)) {
  o(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=ca']);
  fs.writeFileSync(`${D}/ext`, 'subjectAltName=IP:127.0.0.1\n');
  o(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=srv']);
  o(['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '1', '-extfile', 'ext']);
}
const ca = fs.readFileSync(`${D}/ca.pem`);
fs.writeFileSync(`${D}/sipbob.yaml`, `domain: ${DOMAIN}
listen: [udp://127.0.0.1:${SIP}, tls://127.0.0.1:${TLSP}]
tls: { cert: ${D}/srv.pem, key: ${D}/srv.key }
http: { listen: 127.0.0.1:${HTTP}, adminToken: bench-token }
security: { trusted: [127.0.0.0/8] }
storage: { path: ${D}/state }
log: { level: warn }
extensions:
  - { number: "200", name: A, devices: [{ username: dev, password: pw }] }
`);
fs.rmSync(`${D}/state`, { recursive: true, force: true });
for (const f of fs.readdirSync(D)) if (f.startsWith('cg.out')) fs.rmSync(`${D}/${f}`);
const child = spawn('valgrind', ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${D}/cg.out`, process.execPath, '--single-threaded', `${REPO}/dist/src/cli.js`, '--config', `${D}/sipbob.yaml`], { stdio: ['ignore', 'ignore', 'ignore'] });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
for (let i = 0; ; i++) {
  try { if ((await fetch(`http://127.0.0.1:${HTTP}/healthz`)).status === 200) break; } catch {}
  if (i > 240) throw new Error('no healthz');
  await sleep(500);
}
const md5 = (s) => createHash('md5').update(s).digest('hex');
let seq = 0;
function reg(via, contact, callId, auth) {
  seq++;
  return `REGISTER sip:${DOMAIN} SIP/2.0\r\nVia: ${via};branch=z9hG4bK-b${seq}\r\nMax-Forwards: 70\r\nFrom: <sip:dev@${DOMAIN}>;tag=b\r\nTo: <sip:dev@${DOMAIN}>\r\nCall-ID: ${callId}\r\nCSeq: ${seq} REGISTER\r\nContact: <${contact}>\r\n${auth ? `Authorization: ${auth}\r\n` : ''}Expires: 300\r\nContent-Length: 0\r\n\r\n`;
}
function authFor(challenge) {
  const nonce = /nonce="([^"]+)"/.exec(challenge)[1];
  const uri = `sip:${DOMAIN}`;
  const resp = md5(`${md5(`dev:${DOMAIN}:pw`)}:${nonce}:00000001:c:auth:${md5(`REGISTER:${uri}`)}`);
  return `Digest username="dev", realm="${DOMAIN}", nonce="${nonce}", uri="${uri}", response="${resp}", algorithm=MD5, qop=auth, nc=00000001, cnonce="c"`;
}
// A reader of one response at a time off a stream or socket.
function reader(onData) {
  let buf = '', want = null;
  onData((d) => { buf += d; const e = buf.indexOf('\r\n\r\n'); if (e !== -1 && want) { const m = buf.slice(0, e + 4); buf = buf.slice(e + 4); const w = want; want = null; w(m); } });
  return () => new Promise((r) => { const e = buf.indexOf('\r\n\r\n'); if (e !== -1) { const m = buf.slice(0, e + 4); buf = buf.slice(e + 4); r(m); } else want = r; });
}
async function roundsUdp(n) {
  const s = dgram.createSocket('udp4');
  await new Promise((r) => s.bind(0, '127.0.0.51', r));
  const next = reader((f) => s.on('message', (m) => f(m.toString())));
  const port = s.address().port;
  for (let i = 0; i < n; i++) {
    const via = `SIP/2.0/UDP 127.0.0.51:${port}`, c = `sip:dev@127.0.0.51:${port}`;
    s.send(reg(via, c, 'udp-b', ''), SIP, '127.0.0.1');
    const ch = await next();
    s.send(reg(via, c, 'udp-b', authFor(ch)), SIP, '127.0.0.1');
    const ok = await next(); if (!ok.startsWith('SIP/2.0 200')) throw new Error(ok);
  }
  s.close();
}
async function tlsConn() {
  const raw = net.connect({ host: '127.0.0.1', port: TLSP, localAddress: '127.0.0.52' });
  const s = tls.connect({ socket: raw, host: '127.0.0.1', ca });
  await new Promise((r, j) => { s.once('secureConnect', r); s.once('error', j); });
  s.setEncoding('latin1');
  return { s, next: reader((f) => s.on('data', f)) };
}
async function roundsTls(n, fresh) {
  let c = fresh ? null : await tlsConn();
  for (let i = 0; i < n; i++) {
    if (fresh) c = await tlsConn();
    const via = `SIP/2.0/TLS 127.0.0.52:${c.s.localPort}`, ct = `sip:dev@127.0.0.52:${c.s.localPort};transport=tls`;
    c.s.write(reg(via, ct, `tls-b-${c.s.localPort}`, ''));
    const ch = await c.next();
    c.s.write(reg(via, ct, `tls-b-${c.s.localPort}`, authFor(ch)));
    const ok = await c.next(); if (!ok.startsWith('SIP/2.0 200')) throw new Error(ok);
    if (fresh) { c.s.destroy(); await sleep(5); }
  }
  if (!fresh) c.s.destroy();
}
const cgc = (...a) => execFileSync('callgrind_control', [...a, String(child.pid)], { stdio: 'ignore' });
const total = () => fs.readdirSync(D).filter((f) => f.startsWith('cg.out.')).reduce((s, f) => s + Number(/^totals: (\d+)/m.exec(fs.readFileSync(`${D}/${f}`, 'utf8'))?.[1] ?? /^summary: (\d+)/m.exec(fs.readFileSync(`${D}/${f}`, 'utf8'))?.[1] ?? 0), 0);
// Warm-up (JIT), not counted.
const WARM = Number(process.env.WARM ?? 200);
await roundsUdp(WARM); await roundsTls(WARM, false); await roundsTls(WARM / 4, true); await roundsUdp(WARM); await roundsTls(WARM, false);
const out = {};
for (const [name, fn] of [['udp', () => roundsUdp(N)], ['tls-kept', () => roundsTls(N, false)], ['tls-fresh', () => roundsTls(N, true)], ['idle', () => sleep(2000)]]) {
  await sleep(1000);
  const before = total();
  cgc('-i', 'on'); await fn(); await sleep(300); cgc('-i', 'off'); cgc('-d');
  await sleep(1500);
  out[name] = total() - before;
}
console.log(JSON.stringify({ N, ...out, perRound: { udp: Math.round(out.udp / N), tlsKept: Math.round(out['tls-kept'] / N), tlsFresh: Math.round(out['tls-fresh'] / N) } }));
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
