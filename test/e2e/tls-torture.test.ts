/**
 * The RFC 4475 torture messages over TLS, judged by the same manifest as over UDP
 * (torture.test.ts): each message on a fresh TLS connection (one broken message may close its
 * connection, so it must not take the next one along), its answers read off that connection.
 * Messages whose point is datagram framing are left out: on a stream Content-Length frames the
 * message, so a body shorter than it (clerr) waits for more bytes, a missing one is a framing
 * error that closes the connection, and trailing octets (dblreq) are the next message.
 */
import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN_TOKEN, DOMAIN, portBlock } from './harness.js';
import { start, type Running } from './http-kit.js';
import { makeCa, makeCert } from '../support/test-certs.js';

const TORTURE = fileURLToPath(new URL('../data/rfc4475/', import.meta.url));
const B = portBlock(16);
const TLS_PORT = B.sip + 5;
const HTTP_PORT = B.base + 100;
const FROM = '127.0.0.41';

const ca = makeCa();
t.teardown(() => ca.remove());
const cert = makeCert(ca, 'server', 'sipbob-torture');

/** Datagram-framing messages (see the file comment): not meaningful on a stream. */
const DATAGRAM_ONLY = new Set(['dblreq', 'clerr']);

function hasContentLength(data: Buffer): boolean {
  const end = data.indexOf('\r\n\r\n');
  const head = data.subarray(0, end === -1 ? data.length : end).toString('latin1');
  return /\r\n(?:Content-Length|l)[ \t]*:/i.test(head);
}

/** Sends data on a fresh TLS connection; collects the status codes answered within waitMs. */
async function exchange(data: Buffer, waitMs: number): Promise<number[]> {
  const raw = net.connect({ host: '127.0.0.1', port: TLS_PORT, localAddress: FROM });
  const sock = tls.connect({ socket: raw, host: '127.0.0.1', ca: ca.pem });
  let got = '';
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => (got += d));
  sock.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    sock.once('secureConnect', () => resolve());
    sock.once('error', reject);
  });
  sock.write(data);
  await new Promise((r) => setTimeout(r, waitMs));
  sock.destroy();
  return [...got.matchAll(/(?:^|\r\n)SIP\/2\.0 (\d{3}) /g)].map((m) => Number(m[1]));
}

let proxy: Running;
t.before(async () => {
  proxy = await start({
    domain: DOMAIN,
    listen: [`udp://127.0.0.1:${TLS_PORT}`, `tls://127.0.0.1:${TLS_PORT}`],
    tls: { cert: cert.certFile, key: cert.keyFile },
    http: { listen: `127.0.0.1:${HTTP_PORT}`, adminToken: ADMIN_TOKEN },
    storage: { path: mkdtempSync(path.join(tmpdir(), 'sipbob-e2e-tls-torture-')) },
    extensions: [{ number: '200', name: 'Anna', devices: [{ username: 'anna', password: 'torture-pw' }] }],
  });
});
t.teardown(() => proxy?.stop());

t.test('RFC 4475 torture messages over TLS are handled as over UDP', async (t) => {
  const manifest = readFileSync(`${TORTURE}manifest.tsv`, 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => l.split('\t'))
    .map(([name, , , expect]) => ({ name: name!, expect: expect! }));
  const skipped: string[] = [];
  let judged = 0;
  for (const m of manifest) {
    const data = readFileSync(`${TORTURE}${m.name}.sip`);
    if (DATAGRAM_ONLY.has(m.name) || !hasContentLength(data)) {
      skipped.push(m.name);
      continue;
    }
    const statuses = await exchange(data, 250);
    const finals = [...new Set(statuses.filter((s) => s >= 200))];
    const isResponse = data.subarray(0, 4).toString() === 'SIP/';
    const [rule, codes] = m.expect.split(':') as [string, string | undefined];
    let why: string | undefined;
    if (isResponse) why = statuses.length > 0 ? `a response was answered: ${statuses.join(',')}` : undefined;
    else if (rule === 'not400') why = finals.includes(400) ? 'rejected as malformed (400)' : finals.length === 0 ? 'no final response' : undefined;
    else if (rule === '400drop') {
      const allowed = new Set([400, ...(codes ?? '').split(',').filter(Boolean).map(Number)]);
      const bad = finals.filter((s) => !allowed.has(s));
      why = bad.length ? `answered ${bad.join(',')}` : undefined;
    } else if (rule === 'error') why = finals.some((s) => s < 400) ? `answered ${finals.join(',')}` : undefined;
    else if (rule === 'reject') why = finals.some((s) => s < 300 || s === 400) ? `answered ${finals.join(',')}` : undefined;
    t.equal(why, undefined, `${m.name} (${m.expect}): ${why ?? `ok [${statuses.join(',') || 'no answer'}]`}`);
    judged++;
  }
  t.comment(`judged ${judged}; left out on a stream: ${skipped.join(', ')}`);
  t.ok(judged >= 35, 'most of the manifest applies to a stream');
  const health = await fetch(`http://127.0.0.1:${HTTP_PORT}/healthz`);
  t.equal(health.status, 200, 'the proxy is still up');
});
