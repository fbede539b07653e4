import t from 'tap';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { parseMessage } from '../../src/sip/parser.js';
import type { HeaderField, SipMessage } from '../../src/sip/message.js';
import { buildResponse, hasTag, rewrite, stripTopVia, withFirstValue, withoutFirstValues } from '../../src/sip/serialize.js';
import { countValues, isAsciiString } from '../../src/sip/message.js';

function parse(s: string | Buffer): SipMessage {
  const r = parseMessage(typeof s === 'string' ? Buffer.from(s, 'utf8') : s);
  if (!r.ok) throw new Error(r.error);
  return r.msg;
}

const REQ =
  'INVITE sip:200@pbx.example.test SIP/2.0\r\n' +
  'Via: SIP/2.0/UDP 127.0.0.21:5060;branch=z9hG4bK-abc;rport\r\n' +
  'max-forwards:   70\r\n' +
  'f: "Jürgen" <sip:alice@pbx.example.test>;tag=a1\r\n' +
  'To:<sip:200@pbx.example.test>\r\n' +
  'Call-ID: c1@127.0.0.21\r\n' +
  'CSeq: 1 INVITE\r\n' +
  'X-Odd :  spacing\t\r\n' +
  'Subject: folded\r\n  over two lines\r\n' +
  'Content-Type: application/sdp\r\n' +
  'Content-Length: 4\r\n' +
  '\r\n' +
  'v=0\n';

t.test('rewrite keeps untouched header lines byte for byte', async (t) => {
  const m = parse(REQ);
  const mf = m.field('max-forwards')!;
  const out = rewrite(m, 'INVITE sip:dev@127.0.0.11:5062 SIP/2.0', 'Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-new\r\n', new Map([[mf, 'Max-Forwards: 69']]));
  const expected =
    'INVITE sip:dev@127.0.0.11:5062 SIP/2.0\r\n' +
    'Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-new\r\n' +
    'Via: SIP/2.0/UDP 127.0.0.21:5060;branch=z9hG4bK-abc;rport\r\n' +
    'Max-Forwards: 69\r\n' +
    'f: "Jürgen" <sip:alice@pbx.example.test>;tag=a1\r\n' +
    'To:<sip:200@pbx.example.test>\r\n' +
    'Call-ID: c1@127.0.0.21\r\n' +
    'CSeq: 1 INVITE\r\n' +
    'X-Odd :  spacing\t\r\n' +
    'Subject: folded\r\n  over two lines\r\n' +
    'Content-Type: application/sdp\r\n' +
    'Content-Length: 4\r\n' +
    '\r\n' +
    'v=0\n';
  t.equal(out.toString('utf8'), expected);
  t.ok(out.equals(Buffer.from(expected, 'utf8')), 'exact bytes, UTF-8 preserved');
  // No edits at all: the header block is the original one.
  const same = rewrite(m, 'INVITE sip:200@pbx.example.test SIP/2.0', '', undefined);
  t.ok(same.equals(Buffer.from(REQ, 'utf8')), 'identity rewrite reproduces the message');
  // Drop a line (null edit): the folded Subject goes whole, the rest stays.
  const dropped = rewrite(m, 'INVITE sip:x@y SIP/2.0', '', new Map<HeaderField, string | null>([[m.field('subject')!, null]])).toString();
  t.notMatch(dropped, /Subject|over two lines/);
  t.match(dropped, /X-Odd :  spacing\t\r\nContent-Type: application\/sdp\r\nContent-Length: 4\r\n\r\nv=0\n$/);
  t.ok(parseMessage(Buffer.from(dropped)).ok, 'result parses');
});

t.test('rewrite adds Content-Length when missing', async (t) => {
  const m = parse('MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: x\r\nCSeq: 1 MESSAGE\r\n\r\nGrüße');
  const out = rewrite(m, 'MESSAGE sip:a@c SIP/2.0', '', undefined);
  t.equal(
    out.toString('utf8'),
    'MESSAGE sip:a@c SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: x\r\nCSeq: 1 MESSAGE\r\nContent-Length: 7\r\n\r\nGrüße',
    'byte length of the UTF-8 body',
  );
  const again = parse(out);
  t.equal(again.body.toString('utf8'), 'Grüße');
  // Without a body: Content-Length: 0, and the trailing datagram bytes past it are not relayed.
  const m0 = parse('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nl: 0\r\n\r\nGARBAGE');
  const out0 = rewrite(m0, 'OPTIONS sip:a@b SIP/2.0', '', undefined).toString();
  t.equal(out0, 'OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nl: 0\r\n\r\n');
});

t.test('LF-only input is relayed with its lines intact and stays parseable', async (t) => {
  const m = parse('OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nCall-ID: x\n\n');
  const out = rewrite(m, 'OPTIONS sip:a@c SIP/2.0', '', undefined);
  const again = parse(out);
  t.equal(again.header('call-id'), 'x');
  t.equal(again.bodyLength, 0);
});

const RES =
  'SIP/2.0 180 Ringing\r\n' +
  'Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sb1.1;rport=5060, SIP/2.0/UDP 127.0.0.21:5060;branch=z9hG4bK-abc;rport=5060;received=127.0.0.21\r\n' +
  'Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-far\r\n' +
  'From: <sip:a@b>;tag=1\r\n' +
  'To: <sip:c@d>;tag=2\r\n' +
  'Call-ID: x\r\n' +
  'CSeq: 1 INVITE\r\n' +
  'Content-Length: 0\r\n\r\n';

t.test('stripTopVia', async (t) => {
  // The top Via is the first value of a multi-value line: the rest of that line stays.
  const out = stripTopVia(parse(RES)).toString();
  t.equal(
    out,
    'SIP/2.0 180 Ringing\r\n' +
      'Via: SIP/2.0/UDP 127.0.0.21:5060;branch=z9hG4bK-abc;rport=5060;received=127.0.0.21\r\n' +
      'Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-far\r\n' +
      'From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n',
  );
  // One value on its own line: the line goes.
  const once = parse(out);
  const twice = stripTopVia(once).toString();
  t.match(twice, /^SIP\/2\.0 180 Ringing\r\nVia: SIP\/2\.0\/UDP 10\.0\.0\.1;branch=z9hG4bK-far\r\nFrom:/);
  t.equal(parse(twice).values('via').length, 1);
  // Compact v: lines.
  const compact = stripTopVia(parse(RES.replace('Via: SIP/2.0/UDP 10.0.0.1', 'v: SIP/2.0/UDP 10.0.0.1'))).toString();
  t.match(compact, /\r\nv: SIP\/2\.0\/UDP 10\.0\.0\.1;branch=z9hG4bK-far\r\n/, 'untouched compact line kept as is');
  // No Via at all: unchanged.
  const noVia = parse('SIP/2.0 200 OK\r\nCall-ID: x\r\nl: 0\r\n\r\n');
  t.equal(stripTopVia(noVia), noVia.raw);
  // UTF-8 reason phrase relayed as received (RFC 4475 unreason).
  const unreason = parse(readFileSync(fileURLToPath(new URL('../data/rfc4475/unreason.sip', import.meta.url))));
  const relayed = stripTopVia(unreason);
  const firstLine = (b: Buffer) => b.subarray(0, b.indexOf('\r\n'));
  t.ok(firstLine(relayed).equals(firstLine(unreason.raw)), 'status line bytes unchanged');
  t.equal(relayed.subarray(relayed.length - unreason.bodyLength).toString('utf8'), unreason.body.toString('utf8'), 'body kept');
  // The byte-splice path: own Via line, Content-Length present, leading CRLFs and a body.
  const body = 'v=0\r\n';
  const spliced = stripTopVia(
    parse(
      '\r\n\r\nSIP/2.0 200 OK\r\nVia: SIP/2.0/UDP us;branch=z9hG4bK-1\r\nVia: SIP/2.0/UDP them;branch=z9hG4bK-2\r\n' +
        `Call-ID: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    ),
  ).toString();
  t.equal(spliced, `SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP them;branch=z9hG4bK-2\r\nCall-ID: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  // Without Content-Length (UDP allows it) the rewrite adds one, for a TCP hop further on.
  const noLength = stripTopVia(parse('SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP us;branch=z9hG4bK-1\r\nVia: SIP/2.0/UDP them;branch=z9hG4bK-2\r\nCall-ID: x\r\n\r\n')).toString();
  t.match(noLength, /Content-Length: 0\r\n\r\n$/);
});

t.test('stripTopVia: the remaining Vias are the received ones minus the first, whatever the line layout', async (t) => {
  // Fast path (bytes cut out) and rewrite path must agree with the list syntax: the Vias after
  // stripping are exactly values('via').slice(1) of the received response.
  const first = ['SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sb1.1', 'SIP/2.0/UDP us;branch="z9hG4bK,q"', 'SIP/2.0/UDP\tus;branch=z9hG4bK-t'];
  const layouts = [
    (a: string) => `Via: ${a}, SIP/2.0/UDP c1;branch=z9hG4bK-c1\r\n`,
    (a: string) => `Via: ${a}  ,\t SIP/2.0/UDP c1;branch=z9hG4bK-c1 , SIP/2.0/UDP c2;branch=z9hG4bK-c2\r\n`,
    (a: string) => `Via: ${a},SIP/2.0/UDP c1;branch=z9hG4bK-c1\r\nv: SIP/2.0/UDP c2;branch=z9hG4bK-c2\r\n`,
    (a: string) => `Via: ${a}\r\nVia: SIP/2.0/UDP c1;branch=z9hG4bK-c1\r\n`,
    (a: string) => `Via: ${a},\r\n SIP/2.0/UDP c1;branch=z9hG4bK-c1\r\n`, // folded after the comma
    (a: string) => `Via: , ${a}, SIP/2.0/UDP c1;branch=z9hG4bK-c1\r\n`, // empty first element
    (a: string) => `Via: ${a},\r\n`, // trailing comma
  ];
  let n = 0;
  for (const a of first) {
    for (const layout of layouts) {
      for (const length of [true, false]) {
        const text = `SIP/2.0 180 Ringing\r\n${layout(a)}Call-ID: x\r\n${length ? 'Content-Length: 0\r\n' : ''}\r\n`;
        const before = parse(text);
        const after = parse(stripTopVia(before));
        t.same(after.values('via'), before.values('via').slice(1), JSON.stringify(text));
        t.equal(after.header('call-id'), 'x');
        t.equal(after.header('content-length'), '0', 'Content-Length present (added when missing)');
        n++;
      }
    }
  }
  t.equal(n, 42);
  // The cut keeps the bytes of what remains on the line as received.
  const kept = stripTopVia(parse('SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK-a ,  SIP/2.0/UDP b;branch=z9hG4bK-b ,c\r\nContent-Length: 0\r\n\r\n'));
  t.equal(kept.toString(), 'SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP b;branch=z9hG4bK-b ,c\r\nContent-Length: 0\r\n\r\n');
});

t.test('withFirstValue / withoutFirstValues', async (t) => {
  const m = parse(RES);
  const via = m.field('via')!;
  t.equal(withoutFirstValues(m.value(via), 1, 'Via'), 'Via: SIP/2.0/UDP 127.0.0.21:5060;branch=z9hG4bK-abc;rport=5060;received=127.0.0.21');
  t.equal(withoutFirstValues(m.value(via), 2, 'Via'), null);
  // One value on the line: it goes whole, or stays as it is.
  t.equal(withoutFirstValues(' <sip:p1;lr> ', 1, 'Route'), null);
  t.equal(withoutFirstValues(' <sip:p1;lr> ', 0, 'Route'), 'Route: <sip:p1;lr>');
  t.equal(withoutFirstValues('"a, b" <sip:x>', 0, 'Contact'), 'Contact: "a, b" <sip:x>', 'a quoted comma is no separator');
  t.equal(withoutFirstValues('', 0, 'Route'), null);
  t.equal(withoutFirstValues('<sip:p1;lr>, <sip:p2;lr>', 1, 'Route'), 'Route: <sip:p2;lr>');
  t.same([countValues(''), countValues(' x '), countValues('a, b'), countValues('a, , b'), countValues('"a, b" <sip:x>')], [0, 1, 2, 2, 1]);
  t.equal(withFirstValue(m, via, 'SIP/2.0/UDP new', 'Via'), 'Via: SIP/2.0/UDP new, SIP/2.0/UDP 127.0.0.21:5060;branch=z9hG4bK-abc;rport=5060;received=127.0.0.21');
});

t.test('buildResponse (RFC 3261 §8.2.6)', async (t) => {
  const req = parse(
    'OPTIONS sip:a@b SIP/2.0\r\n' +
      'Via: SIP/2.0/UDP 127.0.0.21:5070;branch=z9hG4bK1;rport\r\n' +
      'v: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\n' +
      'f: <sip:x@b>;tag=9\r\n' +
      't: <sip:a@b>\r\n' +
      'i: cid\r\n' +
      'CSeq: 3 OPTIONS\r\n' +
      'Subject: not copied\r\n' +
      'l: 0\r\n\r\n',
  );
  const out = buildResponse(req, 200, 'OK', { toTag: 'tt', topVia: 'SIP/2.0/UDP 127.0.0.21:5070;branch=z9hG4bK1;rport=5070;received=127.0.0.9', headers: ['Allow: INVITE'] }).toString();
  t.equal(
    out,
    'SIP/2.0 200 OK\r\n' +
      'Via: SIP/2.0/UDP 127.0.0.21:5070;branch=z9hG4bK1;rport=5070;received=127.0.0.9\r\n' +
      'Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\n' +
      'From: <sip:x@b>;tag=9\r\n' +
      'To: <sip:a@b>;tag=tt\r\n' +
      'Call-ID: cid\r\n' +
      'CSeq: 3 OPTIONS\r\n' +
      'Allow: INVITE\r\n' +
      'Server: sipbob\r\n' +
      'Content-Length: 0\r\n\r\n',
  );
  const res = parse(out);
  t.equal(res.status, 200);
  // An existing To tag is kept, never doubled, also with LWS around '=' (RFC 4475 wsinv).
  for (const to of ['<sip:a@b>;tag=x', '<sip:a@b>;TAG=x', 'sip:a@b;tag=x', '<sip:a@b> ;   tag    = 1918181833n', '"tag=" <sip:a@b;tag=uri>;tag=x']) {
    const r = parse(`OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: ${to}\r\nl: 0\r\n\r\n`);
    const o = buildResponse(r, 404, 'Not Found', { toTag: 'new' }).toString();
    t.notMatch(o, /tag=new/, `no second tag for ${to}`);
  }
  // A URI parameter named tag inside <> is not a To tag.
  const inUri = parse('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@b;tag=uri>\r\nl: 0\r\n\r\n');
  t.match(buildResponse(inUri, 404, 'Not Found', { toTag: 'new' }).toString(), /To: <sip:a@b;tag=uri>;tag=new\r\n/);
  // A body gets its Content-Type and byte length.
  const withBody = buildResponse(req, 400, 'Bad Request', { body: 'ä', contentType: 'text/plain' }).toString();
  t.match(withBody, /Content-Type: text\/plain\r\nContent-Length: 2\r\n\r\nä$/);
});

t.test('buildResponse copies one From/To/Call-ID/CSeq of a request that repeats them (RFC 4475 multi01)', async (t) => {
  const r = parseMessage(readFileSync(fileURLToPath(new URL('../data/rfc4475/multi01.sip', import.meta.url))));
  t.equal(r.ok, false);
  const req = r.msg!;
  const out = buildResponse(req, 400, 'Bad Request', { toTag: 'x' });
  const res = parseMessage(out);
  t.ok(res.ok, `the 400 parses${res.ok ? '' : `: ${res.error}`}`);
  if (res.ok) {
    t.equal(res.msg.fields('call-id').length, 1);
    t.equal(res.msg.fields('cseq').length, 1);
    t.equal(res.msg.fields('from').length, 1);
    t.equal(res.msg.fields('to').length, 1);
    t.equal(res.msg.header('call-id'), req.header('call-id'), 'the first Call-ID');
    t.equal(res.msg.values('via').length, req.values('via').length, 'every Via');
  }
});

t.test('hasTag', async (t) => {
  t.equal(hasTag('<sip:a@b>;tag=1'), true);
  t.equal(hasTag('<sip:a@b>'), false);
  t.equal(hasTag('<sip:a@b;tag=1>'), false);
  t.equal(hasTag('<sip:a@b>;xtag=1'), false);
  t.equal(hasTag('<sip:a@b>;tag'), true);
  t.equal(hasTag('sip:a@b ; tag = 5'), true);
});

t.test('ASCII text is written as latin1 with the same bytes; anything else stays UTF-8', async (t) => {
  const utf8Msg = parse(REQ);
  t.equal(utf8Msg.isAscii, false, 'a UTF-8 display name makes the message non-ASCII');
  const m = parse(REQ.replace('Jürgen', 'Juergen').replace('Content-Length: 4\r\n', ''));
  t.equal(m.isAscii, true);
  t.equal(isAsciiString('sip:200@pbx.example.test'), true);
  t.equal(isAsciiString('sip:jürgen@pbx'), false);
  t.equal(isAsciiString('Łódź'), false, 'two-byte strings too');
  const mf = m.field('max-forwards')!;
  const edits = new Map<HeaderField, string | null>([
    [mf, 'Max-Forwards: 69'],
    [m.field('subject')!, null],
  ]);
  const args = ['INVITE sip:dev@127.0.0.11:5062 SIP/2.0', 'Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-new\r\n', edits] as const;
  const asUtf8 = rewrite(m, ...args, false);
  const asLatin1 = rewrite(m, ...args, true);
  t.ok(asLatin1.equals(asUtf8), 'byte-identical output');
  t.match(asLatin1.toString(), /Content-Type: application\/sdp\r\nContent-Length: 4\r\n\r\nv=0\n$/, 'missing Content-Length added, body kept');
  // A generated response: an ASCII request with a non-ASCII reason phrase, and the other way round.
  const ascii = parse('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:x@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n');
  const reason = buildResponse(ascii, 480, 'Nicht verfügbar', { toTag: 't' });
  t.ok(reason.includes(Buffer.from('480 Nicht verfügbar\r\n', 'utf8')), 'reason phrase as UTF-8');
  const header = buildResponse(ascii, 420, 'Bad Extension', { toTag: 't', headers: ['Unsupported: größe'] });
  t.ok(header.includes(Buffer.from('Unsupported: größe\r\n', 'utf8')), 'extra header as UTF-8');
  const fromUtf8 = buildResponse(utf8Msg, 404, 'Not Found', { toTag: 't' });
  t.ok(fromUtf8.includes(Buffer.from('From: "Jürgen" <sip:alice@pbx.example.test>;tag=a1\r\n', 'utf8')), 'copied headers as UTF-8');
  const plain = buildResponse(ascii, 404, 'Not Found', { toTag: 't' }).toString('latin1');
  t.equal(plain, 'SIP/2.0 404 Not Found\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:x@b>;tag=1\r\nTo: <sip:a@b>;tag=t\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nServer: sipbob\r\nContent-Length: 0\r\n\r\n');
});
