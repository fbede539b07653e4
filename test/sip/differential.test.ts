/**
 * Differential test: our parser against the npm package `sip` (kirm/sip.js 0.0.6, a
 * devDependency only, never imported from src/) on VALID messages. Both must agree on what a
 * proxy routes by: method, Request-URI (or status), top Via branch, Call-ID, CSeq, From/To tags.
 */
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
// @ts-expect-error -- `sip` ships no type declarations
import sip from 'sip';
import { parseMessage } from '../../src/sip/parser.js';
import { parseCSeq, parseVia, tagOf } from '../../src/sip/headers.js';

const TORTURE = fileURLToPath(new URL('../data/rfc4475/', import.meta.url));

interface Key {
  start: string;
  branch: string;
  callId: string;
  cseq: string;
  fromTag: string;
  toTag: string;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
function theirs(buf: Buffer): Key | undefined {
  let m: any;
  try {
    m = sip.parse(buf.toString('binary'));
  } catch {
    return undefined;
  }
  if (!m || !m.headers) return undefined;
  const h = m.headers;
  return {
    start: m.method !== undefined ? `${m.method} ${m.uri}` : String(m.status),
    branch: h.via?.[0]?.params?.branch ?? '',
    callId: String(h['call-id'] ?? ''),
    cseq: h.cseq ? `${h.cseq.seq} ${h.cseq.method}` : '',
    fromTag: h.from?.params?.tag ?? '',
    toTag: h.to?.params?.tag ?? '',
  };
}

function ours(buf: Buffer): Key | string {
  const r = parseMessage(buf);
  if (!r.ok) return r.error;
  const m = r.msg;
  const via = m.values('via')[0];
  const cseq = parseCSeq(m.header('cseq'));
  return {
    start: m.isRequest ? `${m.method} ${m.uri}` : String(m.status),
    branch: via ? (parseVia(via)?.branch ?? 'BAD VIA') : '',
    callId: m.header('call-id') ?? '',
    cseq: cseq ? `${cseq.seq} ${cseq.method}` : '',
    fromTag: tagOf(m.header('from')),
    toTag: tagOf(m.header('to')),
  };
}

/** Where `sip` is wrong, per RFC 3261: it %-unescapes methods, which are tokens ('%' included). */
const KNOWN: Record<string, Array<keyof Key>> = {
  esc02: ['start', 'cseq'],
};

t.test('RFC 4475 valid messages', async (t) => {
  const manifest = readFileSync(`${TORTURE}manifest.tsv`, 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split('\t'));
  const names = manifest.filter(([, , group, expect]) => group === 'valid' || (group === 'semantic' && expect === 'not400')).map(([n]) => n!);
  t.ok(names.length >= 20, `${names.length} messages`);
  let compared = 0;
  for (const name of names) {
    const buf = readFileSync(`${TORTURE}${name}.sip`);
    const a = ours(buf);
    if (typeof a === 'string') {
      t.fail(`${name}: our parser rejects a valid message: ${a}`);
      continue;
    }
    const b = theirs(buf);
    if (!b) {
      t.comment(`${name}: sip.parse cannot parse it; skipped`);
      continue;
    }
    compared++;
    for (const k of Object.keys(a) as Array<keyof Key>) {
      if (KNOWN[name]?.includes(k)) {
        t.not(a[k], b[k], `${name}.${k}: known divergence of sip (ours ${JSON.stringify(a[k])})`);
        continue;
      }
      t.equal(a[k], b[k], `${name}.${k}`);
    }
  }
  t.ok(compared >= 18, `${compared} compared`);
});

const OWN: Record<string, string> = {
  invite:
    'INVITE sip:200@pbx.example.test SIP/2.0\r\n' +
    'Via: SIP/2.0/UDP 127.0.0.21:5060;rport;branch=z9hG4bK-524287-1---abc\r\n' +
    'Via: SIP/2.0/TCP 10.1.1.1:5070;branch=z9hG4bKold\r\n' +
    'Max-Forwards: 70\r\n' +
    'Contact: <sip:alice@127.0.0.21:5060;transport=udp>;+sip.instance="<urn:uuid:1>"\r\n' +
    'To: <sip:200@pbx.example.test>\r\n' +
    'From: "Alice Ä" <sip:alice@pbx.example.test>;tag=8f3a1b\r\n' +
    'Call-ID: 3c26700c-9e1@127.0.0.21\r\n' +
    'CSeq: 102 INVITE\r\n' +
    'Allow: INVITE, ACK, CANCEL, BYE\r\n' +
    'Content-Type: application/sdp\r\n' +
    'Content-Length: 10\r\n\r\nv=0\r\ns=-\r\n',
  compact:
    'INVITE sip:100@pbx.example.test;user=phone SIP/2.0\r\n' +
    'v: SIP/2.0/TCP 127.0.0.22:5062 ; branch = z9hG4bKcompact\r\n' +
    'f: sip:bob@pbx.example.test;tag=b0b\r\n' +
    't: "Hotline" <sip:100@pbx.example.test>\r\n' +
    'i: compact-1\r\n' +
    'CSEQ: 7 INVITE\r\n' +
    'm: <sip:bob@127.0.0.22:5062>\r\n' +
    'l: 0\r\n\r\n',
  register:
    'REGISTER sip:pbx.example.test SIP/2.0\r\n' +
    'Via: SIP/2.0/UDP 127.0.0.11:5062;branch=z9hG4bK-reg-1;rport\r\n' +
    'From: <sip:anna-desk@pbx.example.test>;tag=r1\r\n' +
    'To: <sip:anna-desk@pbx.example.test>\r\n' +
    'Call-ID: reg-1@127.0.0.11\r\n' +
    'CSeq: 1 REGISTER\r\n' +
    'Contact: <sip:anna-desk@127.0.0.11:5062>;expires=600\r\n' +
    'Authorization: Digest username="anna-desk", realm="pbx.example.test", nonce="abc", uri="sip:pbx.example.test", response="0123456789abcdef0123456789abcdef", algorithm=MD5\r\n' +
    'Expires: 600\r\n' +
    'Content-Length: 0\r\n\r\n',
  folded:
    'OPTIONS sip:127.0.0.1 SIP/2.0\r\n' +
    'Via: SIP/2.0/UDP 127.0.0.41:5060;branch=z9hG4bKfold\r\n' +
    'From: <sip:x@127.0.0.41>\r\n' +
    '  ;tag=folded-tag\r\n' +
    'To: <sip:127.0.0.1>\r\n' +
    'Call-ID: fold-1\r\n' +
    'CSeq: 5\r\n' +
    '\tOPTIONS\r\n' +
    'Content-Length: 0\r\n\r\n',
  ringing:
    'SIP/2.0 180 Ringing\r\n' +
    'Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sb1.1;rport=5060\r\n' +
    'Via: SIP/2.0/UDP 127.0.0.21:5060;branch=z9hG4bK-abc;received=127.0.0.21\r\n' +
    'Record-Route: <sip:127.0.0.1:5060;transport=udp;lr>\r\n' +
    'From: "Alice" <sip:alice@pbx.example.test>;tag=8f3a1b\r\n' +
    'To: <sip:200@pbx.example.test>;tag=dev-77\r\n' +
    'Call-ID: 3c26700c-9e1@127.0.0.21\r\n' +
    'CSeq: 102 INVITE\r\n' +
    'Content-Length: 0\r\n\r\n',
  busy:
    'SIP/2.0 486 Busy Here\r\n' +
    'Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-sb1.2\r\n' +
    'From: <sip:alice@pbx.example.test>;tag=a\r\n' +
    'To: <sip:200@pbx.example.test>;tag=b\r\n' +
    'Call-ID: busy@x\r\n' +
    'CSeq: 1 INVITE\r\n' +
    'Content-Length: 0\r\n\r\n',
  byeWithBody:
    'BYE sip:alice@127.0.0.21:5060 SIP/2.0\r\n' +
    'Via: SIP/2.0/UDP 127.0.0.12:5062;branch=z9hG4bKbye\r\n' +
    'Route: <sip:127.0.0.1:5060;lr>\r\n' +
    'From: <sip:200@pbx.example.test>;tag=dev-77\r\n' +
    'To: <sip:alice@pbx.example.test>;tag=8f3a1b\r\n' +
    'Call-ID: 3c26700c-9e1@127.0.0.21\r\n' +
    'CSeq: 2 BYE\r\n' +
    'Content-Length: 5\r\n\r\nhello',
};

t.test('own valid messages', async (t) => {
  for (const [name, text] of Object.entries(OWN)) {
    const buf = Buffer.from(text, 'utf8');
    const a = ours(buf);
    const b = theirs(buf);
    t.type(a, 'object', `${name}: ours parses${typeof a === 'string' ? `: ${a}` : ''}`);
    t.ok(b, `${name}: sip parses`);
    if (typeof a === 'object' && b) t.same(a, b, name);
  }
});

/** mulberry32: small seeded PRNG, so a failure is reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

t.test('generated valid variants: header order, case, compact forms, LWS', async (t) => {
  const rnd = prng(0x5eed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const randCase = (s: string) => [...s].map((c) => (rnd() < 0.5 ? c.toUpperCase() : c.toLowerCase())).join('');
  const sp = () => pick(['', ' ', '  ', '\t']);
  const token = (n: number) => Array.from({ length: n }, () => pick([...'abcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`\'~'])).join('');
  let mismatches = 0;
  const N = 400;
  for (let i = 0; i < N; i++) {
    const method = pick(['INVITE', 'OPTIONS', 'REGISTER', 'BYE', 'MESSAGE', 'INFO']);
    const branch = `z9hG4bK${token(12)}`;
    const callId = `${token(10)}@${pick(['127.0.0.1', 'host.example.com', 'x'])}`;
    const fromTag = token(8);
    const toTag = rnd() < 0.5 ? token(6) : '';
    const seq = Math.floor(rnd() * 2 ** 31);
    const uri = pick(['sip:200@pbx.example.test', 'sip:127.0.0.1:5060', 'sips:anna@example.com;transport=tcp', 'sip:+4930123@gw.example.net;user=phone']);
    const name = (long: string, compact?: string) => (compact && rnd() < 0.4 ? pick([compact, compact.toUpperCase()]) : randCase(long));
    const headers = [
      `${name('Via', 'v')}${sp()}:${sp()}SIP/2.0/${pick(['UDP', 'TCP'])} ${pick(['127.0.0.21', 'phone.example.com', '10.0.0.1'])}${pick(['', ':5062'])};branch=${branch}${pick(['', ';rport'])}`,
      `${name('From', 'f')}${sp()}:${sp()}${pick(['', '"A B" ', 'Alice '])}<sip:alice@pbx.example.test>;tag=${fromTag}`,
      `${name('To', 't')}${sp()}:${sp()}<${uri}>${toTag ? `;tag=${toTag}` : ''}`,
      `${name('Call-ID', 'i')}${sp()}:${sp()}${callId}`,
      `${name('CSeq')}${sp()}:${sp()}${seq} ${method}`,
      `${name('Max-Forwards')}: ${Math.floor(rnd() * 70)}`,
    ];
    if (rnd() < 0.5) headers.push(`${name('Contact', 'm')}: <sip:alice@127.0.0.21:5062>`);
    if (rnd() < 0.3) headers.push(`${name('Subject', 's')}: ${token(20)}`);
    // Shuffle (Fisher-Yates), then Content-Length last or not.
    for (let k = headers.length - 1; k > 0; k--) {
      const j = Math.floor(rnd() * (k + 1));
      [headers[k], headers[j]] = [headers[j]!, headers[k]!];
    }
    const body = rnd() < 0.3 ? 'v=0\r\n' : '';
    headers.push(`${name('Content-Length', 'l')}: ${body.length}`);
    const text = `${method} ${uri} SIP/2.0\r\n${headers.join('\r\n')}\r\n\r\n${body}`;
    const a = ours(Buffer.from(text));
    const b = theirs(Buffer.from(text));
    if (typeof a === 'string' || !b || JSON.stringify(a) !== JSON.stringify(b)) {
      mismatches++;
      if (mismatches <= 5) t.comment(`mismatch #${i}: ours ${JSON.stringify(a)} sip ${JSON.stringify(b)}\n${text}`);
    }
  }
  t.equal(mismatches, 0, `${N} generated messages agree`);
});
