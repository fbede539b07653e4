import t from 'tap';
import { StreamFramer, type FrameEvent } from '../../src/transport/framer.js';
import { parseMessage } from '../../src/sip/parser.js';

function sipMsg(n: number, body = ''): Buffer {
  return Buffer.from(
    `OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK${n}\r\nCall-ID: c${n}\r\nCSeq: ${n} OPTIONS\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    'utf8',
  );
}

function messages(evs: FrameEvent[]): Buffer[] {
  return evs.flatMap((e) => (e.kind === 'message' ? [e.data] : []));
}

t.test('one message per segment', async (t) => {
  const f = new StreamFramer();
  const m = sipMsg(1, 'body');
  const evs = f.push(m);
  t.equal(evs.length, 1);
  t.ok(messages(evs)[0]!.equals(m));
  t.same(f.push(Buffer.alloc(0)), []);
});

t.test('several messages in one segment, bodies included', async (t) => {
  const f = new StreamFramer();
  const ms = [sipMsg(1, 'a'), sipMsg(2), sipMsg(3, 'Grüße ☎'), sipMsg(4, 'x'.repeat(1000))];
  const evs = f.push(Buffer.concat(ms));
  const got = messages(evs);
  t.equal(got.length, 4);
  for (let i = 0; i < 4; i++) t.ok(got[i]!.equals(ms[i]!), `message ${i + 1} exact`);
  for (const g of got) t.ok(parseMessage(g).ok);
});

t.test('a message split across two segments at every byte offset', async (t) => {
  const m = sipMsg(7, 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n');
  const pair = Buffer.concat([m, sipMsg(8, 'z')]);
  let failures = 0;
  for (let i = 0; i <= pair.length; i++) {
    const f = new StreamFramer();
    const got = [...messages(f.push(pair.subarray(0, i))), ...messages(f.push(pair.subarray(i)))];
    if (got.length !== 2 || !got[0]!.equals(m) || !got[1]!.equals(sipMsg(8, 'z'))) failures++;
  }
  t.equal(failures, 0, `all ${pair.length + 1} split points frame both messages exactly`);
});

t.test('one byte per segment, and three-way splits', async (t) => {
  const ms = [sipMsg(1, 'hello'), sipMsg(2), sipMsg(3, 'end')];
  const all = Buffer.concat(ms);
  const f = new StreamFramer();
  const got: Buffer[] = [];
  for (let i = 0; i < all.length; i++) got.push(...messages(f.push(all.subarray(i, i + 1))));
  t.equal(got.length, 3);
  for (let i = 0; i < 3; i++) t.ok(got[i]!.equals(ms[i]!));
  // Segments of every size from 2 to 40 bytes.
  let bad = 0;
  for (let size = 2; size <= 40; size++) {
    const g = new StreamFramer();
    const out: Buffer[] = [];
    for (let i = 0; i < all.length; i += size) out.push(...messages(g.push(all.subarray(i, i + size))));
    if (out.length !== 3 || !out.every((b, i) => b.equals(ms[i]!))) bad++;
  }
  t.equal(bad, 0);
});

t.test('input segments are not modified and output does not alias them', async (t) => {
  const seg1 = Buffer.from(sipMsg(1).subarray(0, 20));
  const seg2 = Buffer.from(sipMsg(1).subarray(20));
  const c1 = Buffer.from(seg1);
  const c2 = Buffer.from(seg2);
  const f = new StreamFramer();
  f.push(seg1);
  const [m] = messages(f.push(seg2));
  t.ok(seg1.equals(c1) && seg2.equals(c2), 'segments untouched');
  seg2.fill(0);
  t.ok(m!.equals(sipMsg(1)), 'message is a copy');
});

t.test('CRLF keep-alive (RFC 5626 §3.5.1)', async (t) => {
  const f = new StreamFramer();
  t.same(f.push(Buffer.from('\r\n\r\n')), [{ kind: 'ping' }]);
  t.same(f.push(Buffer.from('\r\n\r\n\r\n\r\n')), [{ kind: 'ping' }], 'several pings in one segment: one pong');
  t.same(f.push(Buffer.from('\r\n'.repeat(32000))), [{ kind: 'ping' }], '64 KB of CRLFs: one pong, not 16,000');
  // A ping split over two segments.
  t.same(f.push(Buffer.from('\r\n')), []);
  t.same(f.push(Buffer.from('\r\n')), [{ kind: 'ping' }]);
  t.same(f.push(Buffer.from('\r')), []);
  t.same(f.push(Buffer.from('\n\r')), []);
  t.same(f.push(Buffer.from('\n')), [{ kind: 'ping' }]);
  // A ping between two messages, and a single CRLF before a message (RFC 3261 §7.5).
  const evs = f.push(Buffer.concat([sipMsg(1), Buffer.from('\r\n\r\n'), sipMsg(2), Buffer.from('\r\n'), sipMsg(3)]));
  t.same(evs.map((e) => e.kind), ['message', 'ping', 'message', 'message']);
  t.ok(messages(evs)[2]!.equals(sipMsg(3)));
});

t.test('missing or bad Content-Length closes the stream', async (t) => {
  const head = 'OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nCall-ID: c\r\n';
  const cases: Array<[string, RegExp]> = [
    [`${head}\r\n`, /missing Content-Length/],
    [`${head}Content-Length: -1\r\n\r\n`, /bad Content-Length/],
    [`${head}Content-Length: abc\r\n\r\n`, /bad Content-Length/],
    [`${head}Content-Length: 99999999999\r\n\r\n`, /bad Content-Length/],
    [`${head}Content-Length: 70000\r\n\r\n`, /bad Content-Length/],
    [`${head}Content-Length: 65000\r\n${'X-Pad: ' + 'p'.repeat(1000) + '\r\n'}\r\n`, /bad Content-Length/],
  ];
  for (const [data, re] of cases) {
    const f = new StreamFramer();
    const evs = f.push(Buffer.from(data));
    t.equal(evs.length, 1);
    const e = evs[0]!;
    t.equal(e.kind, 'error');
    if (e.kind === 'error') t.match(e.reason, re);
    t.same(f.push(sipMsg(2)), [], 'nothing more after an error');
  }
  // Compact form l: and any case are found.
  t.equal(messages(new StreamFramer().push(Buffer.from(`${head}l: 2\r\n\r\nok`))).length, 1);
  t.equal(messages(new StreamFramer().push(Buffer.from(`${head}CONTENT-LENGTH : 2\r\n\r\nok`))).length, 1);
  // A folded header containing "Content-Length" text is not mistaken for it.
  t.equal(messages(new StreamFramer().push(Buffer.from(`${head}Subject: x\r\n Content-Length: 9\r\nl: 2\r\n\r\nok`))).length, 1);
  // Bare LF line ends.
  t.equal(messages(new StreamFramer().push(Buffer.from('OPTIONS sip:a@b SIP/2.0\nl: 1\n\nx'))).length, 1);
});

t.test('a header block that never ends is cut off at 64 KiB', async (t) => {
  const f = new StreamFramer();
  let evs: FrameEvent[] = [];
  const chunk = Buffer.from('X-Junk: ' + 'j'.repeat(990) + '\r\n');
  evs = f.push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\n'));
  let n = 0;
  while (evs.length === 0 && n < 200) {
    evs = f.push(chunk);
    n++;
  }
  t.ok(n <= 67, `error after ${n} KB`);
  t.equal(evs[0]?.kind, 'error');
  // Whitespace without any LF is no exception.
  const g = new StreamFramer();
  const e2 = g.push(Buffer.alloc(65536 + 10, 0x20));
  t.equal(e2[0]?.kind, 'error');
});

t.test('byte-by-byte trickle stays linear', async (t) => {
  // 60 KB of header lines fed one byte per segment: rescanning and re-concatenating the whole
  // pending buffer per segment (quadratic) took ~1.7 s here; linear framing takes ~35 ms.
  const lines: string[] = ['OPTIONS sip:a@b SIP/2.0'];
  while (lines.join('\r\n').length < 60000) lines.push('X-H: 0123456789');
  const data = Buffer.from(lines.join('\r\n') + '\r\nContent-Length: 0\r\n\r\n');
  const f = new StreamFramer();
  const start = performance.now();
  let got = 0;
  for (let i = 0; i < data.length; i++) got += messages(f.push(data.subarray(i, i + 1))).length;
  const ms = performance.now() - start;
  t.equal(got, 1);
  t.ok(ms < 500, `${data.length} one-byte segments in ${ms.toFixed(0)} ms`);
});
