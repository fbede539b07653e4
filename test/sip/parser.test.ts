import t, { type Test } from 'tap';
import { fileURLToPath } from 'node:url';
import { readFileSync, readdirSync } from 'node:fs';
import { isOtherVersion, parseMessage, MAX_MESSAGE_SIZE } from '../../src/sip/parser.js';
import { parseDecimal } from '../../src/sip/numbers.js';
import { splitList, topLevelComma, type SipMessage } from '../../src/sip/message.js';
import { parseVia, parseCSeq, parseNameAddr, responseBranch, tagOf, topVia } from '../../src/sip/headers.js';
import { parseUri } from '../../src/sip/uri.js';
import { knownMethod } from '../../src/sip/methods.js';

const TORTURE = fileURLToPath(new URL('../data/rfc4475/', import.meta.url));

/** Lines joined with CRLF, ending with the empty line (and the body, if any). */
function msg(lines: string[], body = ''): Buffer {
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n' + body, 'utf8');
}

function ok(t: Test, buf: Buffer): SipMessage {
  const r = parseMessage(buf);
  if (!r.ok) {
    t.fail(`expected a valid message, got: ${r.error}`);
    throw new Error(r.error);
  }
  return r.msg;
}

function bad(t: Test, buf: Buffer, re?: RegExp): { error: string; msg?: SipMessage } {
  const r = parseMessage(buf);
  t.equal(r.ok, false, `rejected${re ? ` (${re})` : ''}`);
  if (r.ok) return { error: '' };
  if (re) t.match(r.error, re);
  return r;
}

const INVITE = [
  'INVITE sip:200@pbx.example.test SIP/2.0',
  'Via: SIP/2.0/UDP 127.0.0.21:5060;branch=z9hG4bK-abc;rport',
  'Max-Forwards: 70',
  'From: "Alice" <sip:alice@pbx.example.test>;tag=a1',
  'To: <sip:200@pbx.example.test>',
  'Call-ID: c1@127.0.0.21',
  'CSeq: 1 INVITE',
  'Contact: <sip:alice@127.0.0.21:5060>',
  'Content-Type: application/sdp',
];

t.test('request line', async (t) => {
  const m = ok(t, msg([...INVITE, 'Content-Length: 0']));
  t.equal(m.isRequest, true);
  t.equal(m.method, 'INVITE');
  t.equal(m.uri, 'sip:200@pbx.example.test');
  t.equal(m.status, 0);
  t.equal(m.header('call-id'), 'c1@127.0.0.21');
  t.equal(m.bodyLength, 0);

  // Leading CRLFs are ignored (RFC 3261 §7.5).
  t.equal(ok(t, Buffer.concat([Buffer.from('\r\n\r\n'), msg([...INVITE, 'Content-Length: 0'])])).method, 'INVITE');
  // The version is case-insensitive (§7.1), the method is case-sensitive: kept as received.
  const lower = ok(t, msg(['invite sip:a@b sip/2.0', ...INVITE.slice(1), 'Content-Length: 0']));
  t.equal(lower.method, 'invite', 'method not upper-cased');
  // Liberal: several SP between elements, trailing SP (RFC 4475 lwsstart, trws).
  t.equal(ok(t, msg(['OPTIONS  sip:a@b  SIP/2.0', ...INVITE.slice(1), 'l: 0'])).uri, 'sip:a@b');
  t.equal(ok(t, msg(['OPTIONS sip:a@b SIP/2.0  ', ...INVITE.slice(1), 'l: 0'])).uri, 'sip:a@b');
});

t.test('malformed request lines', async (t) => {
  const rest = [...INVITE.slice(1), 'Content-Length: 0'];
  // Hopeless start lines: nothing to answer.
  t.equal(bad(t, msg(['INVITE', ...rest])).msg, undefined);
  t.equal(bad(t, msg(['INV(TE sip:a@b SIP/2.0', ...rest]), /method/).msg, undefined);
  t.equal(bad(t, msg(['\0NVITE sip:a@b SIP/2.0', ...rest]), /method/).msg, undefined);
  // A valid method: the headers are indexed so a 400 can be formed.
  for (const line of [
    'INVITE sip:a@b; lr SIP/2.0', // RFC 4475 lwsruri
    'INVITE sip:a\0b@c SIP/2.0',
    'INVITE sip:a\u0001@b SIP/2.0',
    'INVITE  SIP/2.0',
    'INVITE sip:a@b',
  ]) {
    const r = bad(t, msg([line, ...rest]), /Request-URI|request line|version/);
    t.ok(r.msg, `headers indexed for ${JSON.stringify(line)}`);
    t.equal(r.msg?.values('via').length, 1);
    t.equal(r.msg?.method, 'INVITE');
  }
  const v = bad(t, msg(['OPTIONS sip:a@b SIP/3.0', ...rest]), /version/);
  t.ok(v.msg);
  bad(t, msg(['OPTIONS sip:a@b SIP/2.0x', ...rest]), /version/);
  bad(t, msg(['OPTIONS sip:a@b HTTP/1.1', ...rest]), /version/);
  bad(t, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  bad(t, Buffer.alloc(0), /start line/);
  bad(t, Buffer.from('\r\n\r\n\r\n'), /start line/);
  bad(t, Buffer.from('x'.repeat(9000) + '\r\n\r\n'), /too long/);
});

t.test('status line', async (t) => {
  const res = (line: string) =>
    msg([line, 'Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1', 'From: <sip:a@b>;tag=1', 'To: <sip:c@d>;tag=2', 'Call-ID: x', 'CSeq: 1 INVITE', 'Content-Length: 0']);
  const m = ok(t, res('SIP/2.0 180 Ringing'));
  t.equal(m.isRequest, false);
  t.equal(m.status, 180);
  t.equal(m.reason, 'Ringing');
  t.equal(m.method, '');
  t.equal(ok(t, res('SIP/2.0 100 ')).reason, '', 'empty reason (RFC 4475 noreason)');
  t.equal(ok(t, res('SIP/2.0 100')).reason, '', 'no reason');
  t.equal(ok(t, res('SIP/2.0 486 Besetzt – gerade')).reason, 'Besetzt – gerade', 'UTF-8 reason decoded as UTF-8');
  t.equal(ok(t, res('sip/2.0 200 OK')).status, 200);
  for (const l of ['SIP/2.0 99 Low', 'SIP/2.0 700 High', 'SIP/2.0 4294967301 big', 'SIP/2.0 20x OK', 'SIP/2.0  200 OK', 'SIP/2.0 2000 OK', 'SIP/2.0 200OK']) {
    t.equal(bad(t, res(l), /status/).msg, undefined, l);
  }
});

t.test('header names: case-insensitive, compact forms, LWS before colon', async (t) => {
  const m = ok(
    t,
    msg([
      'OPTIONS sip:a@b SIP/2.0',
      'v: SIP/2.0/UDP h1;branch=z9hG4bK1',
      'VIA: SIP/2.0/UDP h2;branch=z9hG4bK2',
      'i: cid',
      'f: <sip:a@b>;tag=x',
      't: <sip:c@d>',
      'CSEQ: 7 OPTIONS',
      'm: <sip:a@h>',
      'c: text/plain',
      'k: timer',
      'MaX-fOrWaRdS  : 70',
      'X-Custom\t: v',
      'l: 5',
    ], 'hello'),
  );
  t.same(m.values('via'), ['SIP/2.0/UDP h1;branch=z9hG4bK1', 'SIP/2.0/UDP h2;branch=z9hG4bK2']);
  t.equal(m.header('call-id'), 'cid');
  t.equal(m.header('from'), '<sip:a@b>;tag=x');
  t.equal(m.header('to'), '<sip:c@d>');
  t.equal(m.header('cseq'), '7 OPTIONS');
  t.equal(m.header('contact'), '<sip:a@h>');
  t.equal(m.header('content-type'), 'text/plain');
  t.equal(m.header('supported'), 'timer');
  t.equal(m.header('max-forwards'), '70');
  t.equal(m.header('x-custom'), 'v');
  t.equal(m.header('content-length'), '5');
  t.equal(m.body.toString(), 'hello');
  t.equal(m.header('absent'), undefined);
  t.equal(m.header('absent'), undefined, 'cached miss');
  t.equal(m.fields('via').length, 2);
  t.equal(m.field('via')?.name, 'via');

  bad(t, msg(['OPTIONS sip:a@b SIP/2.0', 'Bad Name: x', 'l: 0']), /header name/);
  bad(t, msg(['OPTIONS sip:a@b SIP/2.0', 'NoColonHere', 'l: 0']), /colon/);
  bad(t, msg(['OPTIONS sip:a@b SIP/2.0', ': empty name', 'l: 0']), /header name/);
});

t.test('folding (RFC 3261 §7.3.1)', async (t) => {
  const m = ok(
    t,
    msg([
      'INVITE sip:a@b SIP/2.0',
      'Via: SIP/2.0/UDP h1;branch=z9hG4bK1',
      'Subject: first',
      '  second',
      '\tthird',
      'CSeq: 0009',
      '  INVITE',
      'Call-ID: x',
      'l: 0',
    ]),
  );
  t.equal(m.header('subject'), 'first second third');
  t.equal(m.header('cseq'), '0009 INVITE');
  t.same(parseCSeq(m.header('cseq')), { seq: 9, method: 'INVITE' });
  t.equal(m.header('call-id'), 'x', 'the line after a fold is its own header');
});

t.test('multi-value headers split at top-level commas only', async (t) => {
  const m = ok(
    t,
    msg([
      'INVITE sip:a@b SIP/2.0',
      'Via: SIP/2.0/UDP h1;branch=z9hG4bK1, SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bK2 ,SIP/2.0/UDP h3',
      'Via: SIP/2.0/UDP h4;branch=z9hG4bK4',
      'Contact: "Doe, John" <sip:j@h;x=a,b>;q=0.5, <sip:k@h>, sip:l@h;expires=0',
      'Route: <sip:r1;lr>,<sip:r2;lr>',
      'l: 0',
    ]),
  );
  t.same(m.values('via'), [
    'SIP/2.0/UDP h1;branch=z9hG4bK1',
    'SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bK2',
    'SIP/2.0/UDP h3',
    'SIP/2.0/UDP h4;branch=z9hG4bK4',
  ]);
  t.same(m.values('contact'), ['"Doe, John" <sip:j@h;x=a,b>;q=0.5', '<sip:k@h>', 'sip:l@h;expires=0']);
  t.same(m.values('route'), ['<sip:r1;lr>', '<sip:r2;lr>']);
  t.same(splitList('"a\\",b" <sip:x>, <sip:y>'), ['"a\\",b" <sip:x>', '<sip:y>'], 'escaped quote inside quotes');
  t.same(splitList(' , ,a,, '), ['a'], 'empty elements dropped');
  const v2 = parseVia(m.values('via')[1]!);
  t.equal(v2?.host, '2001:db8::1');
  t.equal(v2?.port, 5070);
  t.equal(v2?.transport, 'TCP');
});

t.test('IPv6 in Via and URIs', async (t) => {
  const m = ok(
    t,
    msg([
      'INVITE sip:200@[2001:db8::10]:5060;transport=udp SIP/2.0',
      'Via: SIP/2.0/UDP [2001:db8::20]:5062;branch=z9hG4bKv6;received=2001:db8::21;rport=5062',
      'From: <sip:a@[2001:db8::20]>;tag=1',
      'To: <sip:200@[2001:DB8::10]>',
      'Record-Route: <SIP:[2001:db8::30];lr>',
      'Call-ID: v6',
      'CSeq: 1 INVITE',
      'l: 0',
    ]),
  );
  const via = parseVia(m.values('via')[0]!);
  t.match(via, { host: '2001:db8::20', port: 5062, branch: 'z9hG4bKv6', received: '2001:db8::21', rport: '5062' });
  t.match(parseUri(m.uri), { scheme: 'sip', user: '200', host: '2001:db8::10', port: 5060, params: ';transport=udp' });
  t.match(parseUri(parseNameAddr(m.header('to')!)!.uri), { host: '2001:db8::10' }, 'IPv6 host lower-cased');
  t.match(parseUri(parseNameAddr(m.values('record-route')[0]!)!.uri), { scheme: 'sip', host: '2001:db8::30', params: ';lr' }, 'upper-case SIP: scheme');
});

t.test('Content-Length against the bytes', async (t) => {
  const base = ['MESSAGE sip:a@b SIP/2.0', 'Via: SIP/2.0/UDP h;branch=z9hG4bK1', 'Call-ID: x', 'CSeq: 1 MESSAGE'];
  // Exact.
  let m = ok(t, msg([...base, 'Content-Length: 5'], 'hello'));
  t.equal(m.body.toString(), 'hello');
  t.equal(m.raw.length, msg([...base, 'Content-Length: 5'], 'hello').length);
  // Extra bytes after Content-Length in a datagram are ignored (RFC 3261 §18.3, RFC 4475 dblreq).
  m = ok(t, msg([...base, 'Content-Length: 5'], 'helloEXTRA BYTES'));
  t.equal(m.body.toString(), 'hello');
  t.equal(m.bodyLength, 5);
  t.equal(m.raw.subarray(m.raw.length - 5).toString(), 'hello', 'raw ends with the body');
  // Content-Length: 0 over UDP with trailing bytes: body is empty (the sip package got this wrong).
  m = ok(t, msg([...base, 'Content-Length: 0'], 'junk'));
  t.equal(m.bodyLength, 0);
  // No Content-Length in a datagram: the rest of it is the body.
  m = ok(t, msg(base, 'rest'));
  t.equal(m.body.toString(), 'rest');
  // UTF-8 body: Content-Length counts bytes.
  const utf = 'Grüße ☎';
  m = ok(t, msg([...base, `Content-Length: ${Buffer.byteLength(utf)}`], utf));
  t.equal(m.body.toString('utf8'), utf);
  // Lies.
  bad(t, msg([...base, 'Content-Length: 6'], 'hello'), /larger/);
  bad(t, msg([...base, 'Content-Length: 150'], 'hello'), /larger/);
  for (const v of ['-1', '+5', '5x', 'abc', '', '99999999999', '1e3', '5, 5', '0x10', '65536']) {
    const r = bad(t, msg([...base, `Content-Length: ${v}`], 'hello'), /Content-Length/);
    t.ok(r.msg, `headers kept for a 400 (Content-Length: ${v})`);
  }
  bad(t, msg([...base, 'Content-Length: 5', 'l: 5'], 'hello'), /duplicate content-length/);
  bad(t, msg([...base, 'Content-Length: 5', 'Content-Length: 4'], 'hello'), /duplicate content-length/);
});

t.test('duplicate single-value headers are rejected, list headers are not', async (t) => {
  const base = ['OPTIONS sip:a@b SIP/2.0', 'Via: SIP/2.0/UDP h;branch=z9hG4bK1', 'From: <sip:a@b>;tag=1', 'To: <sip:c@d>', 'Call-ID: x', 'CSeq: 1 OPTIONS', 'Max-Forwards: 70'];
  ok(t, msg([...base, 'Via: SIP/2.0/UDP h2', 'Contact: <sip:a@h>', 'Contact: <sip:b@h>', 'Route: <sip:r;lr>', 'Route: <sip:s;lr>', 'l: 0']));
  for (const [dup, name] of [
    ['Call-ID: y', 'call-id'],
    ['i: y', 'call-id'],
    ['CSeq: 2 OPTIONS', 'cseq'],
    ['From: <sip:z@b>;tag=2', 'from'],
    ['f: <sip:z@b>;tag=2', 'from'],
    ['To: <sip:z@b>', 'to'],
    ['t: <sip:z@b>', 'to'],
    ['Max-Forwards: 69', 'max-forwards'],
  ]) {
    const r = bad(t, msg([...base, dup!, 'l: 0']), new RegExp(`duplicate ${name}`));
    t.ok(r.msg, 'msg kept for a 400');
  }
});

t.test('empty line and truncation', async (t) => {
  const full = msg([...INVITE, 'Content-Length: 4'], 'v=0\n');
  ok(t, full);
  // Ends right after a header line: the empty line is missing (RFC 3261 §7).
  const noEmpty = Buffer.from(INVITE.join('\r\n') + '\r\nContent-Length: 0\r\n');
  const r = bad(t, noEmpty, /empty line/);
  t.ok(r.msg, 'headers indexed, a 400 can be formed');
  // Bare LF line ends are accepted.
  const lf = Buffer.from([...INVITE, 'Content-Length: 0'].join('\n') + '\n\n');
  t.equal(ok(t, lf).header('call-id'), 'c1@127.0.0.21');
  // Every proper prefix of a valid message is rejected.
  let accepted = 0;
  for (let i = 0; i < full.length; i++) if (parseMessage(full.subarray(0, i)).ok) accepted++;
  t.equal(accepted, 0, `none of ${full.length} truncations accepted`);
});

t.test('NUL bytes', async (t) => {
  const base = ['OPTIONS sip:a@b SIP/2.0', 'Via: SIP/2.0/UDP h;branch=z9hG4bK1', 'Call-ID: x', 'CSeq: 1 OPTIONS'];
  let r = bad(t, msg([...base, 'Subject: a\0b', 'l: 0']), /NUL/);
  t.ok(r.msg);
  r = bad(t, msg([...base, 'Call-ID\0: x', 'l: 0']), /header name/);
  r = bad(t, msg(['SIP/2.0 200 O\0K', ...base.slice(1), 'l: 0']), /NUL/);
  // A quoted-pair may carry a NUL (RFC 4475 intmeth); an escaped backslash before it may not.
  ok(t, msg([...base, 'To: "NUL:\\\0" <sip:a@b>', 'l: 0']));
  bad(t, msg([...base, 'To: "NUL:\\\\\0" <sip:a@b>', 'l: 0']), /NUL/);
  // NUL in the body is just data.
  t.equal(ok(t, msg([...base, 'l: 3'], 'a\0b')).body.length, 3);
});

t.test('limits', async (t) => {
  const base = ['OPTIONS sip:a@b SIP/2.0', 'Via: SIP/2.0/UDP h;branch=z9hG4bK1', 'Call-ID: x', 'CSeq: 1 OPTIONS'];
  t.equal(bad(t, Buffer.alloc(MAX_MESSAGE_SIZE + 1, 0x41), /too large/).msg, undefined);
  const many: string[] = [];
  for (let i = 0; i < 300; i++) many.push(`X-H${i}: ${i}`);
  bad(t, msg([...base, ...many, 'l: 0']), /too many headers/);
  // A long (but legal) header value is fine.
  const m = ok(t, msg([...base, `X-Long: ${'a'.repeat(60000)}`, 'l: 0']));
  t.equal(m.header('x-long')?.length, 60000);
});

t.test('header values are decoded as UTF-8, lazily and cached', async (t) => {
  const m = ok(t, msg(['OPTIONS sip:a@b SIP/2.0', 'Via: SIP/2.0/UDP h;branch=z9hG4bK1', 'From: "Jürgen ☎" <sip:j@b>;tag=9', 'l: 0']));
  t.equal(m.header('from'), '"Jürgen ☎" <sip:j@b>;tag=9');
  t.equal(parseNameAddr(m.header('from')!)?.display, 'Jürgen ☎');
  t.equal(tagOf(m.header('from')), '9');
  t.equal(m.header('from'), m.header('from'));
});

t.test('RFC 4475 valid messages parse and yield their key fields', async (t) => {
  const cases: Array<[string, (t: Test, m: SipMessage) => void]> = [
    ['wsinv', (t, m) => {
      t.equal(m.method, 'INVITE');
      t.equal(m.uri, 'sip:vivekg@chair-dnrc.example.com;unknownparam');
      t.equal(tagOf(m.header('to')), '1918181833n');
      t.equal(tagOf(m.header('from')), '98asjd8');
      t.equal(m.header('max-forwards'), '0068');
      t.same(parseCSeq(m.header('cseq')), { seq: 9, method: 'INVITE' });
      const vias = m.values('via').map((v) => parseVia(v));
      t.equal(vias.length, 3);
      t.match(vias[0], { transport: 'UDP', host: '192.0.2.2', branch: '390skdjuw' });
      t.match(vias[1], { transport: 'TCP', host: 'spindle.example.com', branch: 'z9hG4bK9ikj8' });
      t.match(vias[2], { transport: 'UDP', host: '192.168.255.111', branch: 'z9hG4bK30239' });
      t.equal(m.bodyLength, 150);
      t.equal(m.header('subject'), '', 'empty compact s:');
    }],
    ['intmeth', (t, m) => {
      t.equal(m.method, "!interesting-Method0123456789_*+`.%indeed'~");
      t.equal(parseCSeq(m.header('cseq'))?.method, m.method);
      const u = parseUri(m.uri);
      t.equal(u?.host, 'example.com', 'user part with ? and : before @');
      t.equal(u?.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
      t.equal(parseVia(m.values('via')[0]!)?.branch, "z9hG4bK-.!%66*_+`'~");
    }],
    ['esc01', (t, m) => t.equal(parseUri(m.uri)?.host, 'example.net')],
    ['escnull', (t, m) => t.equal(m.method, 'REGISTER')],
    ['esc02', (t, m) => {
      t.equal(m.method, 'RE%47IST%45R', 'method not unescaped');
      t.equal(m.values('contact').length, 2, 'C%6Fntact is another header');
    }],
    ['lwsdisp', (t, m) => t.equal(parseNameAddr(m.header('from')!)?.display, 'caller')],
    ['longreq', (t, m) => {
      t.equal(m.values('via').length, 34);
      t.equal(m.bodyLength, 150);
    }],
    ['dblreq', (t, m) => {
      t.equal(m.method, 'REGISTER');
      t.equal(m.bodyLength, 0, 'the INVITE after it is ignored');
      t.equal(m.raw.length, 296 + 4);
    }],
    ['semiuri', (t, m) => t.match(parseUri(m.uri), { user: 'user;par=u%40example.net', host: 'example.com' })],
    ['transports', (t, m) => t.same(m.values('via').map((v) => parseVia(v)?.transport), ['UDP', 'SCTP', 'TLS', 'UNKNOWN', 'TCP'])],
    ['mpart01', (t, m) => t.equal(m.bodyLength, Number(m.header('content-length')))],
    ['unreason', (t, m) => {
      t.equal(m.status, 200);
      t.equal(m.reason, '= 2**3 * 5**2 но сто девяносто девять - простое');
    }],
    ['noreason', (t, m) => {
      t.equal(m.status, 100);
      t.equal(m.reason, '');
    }],
    ['novelsc', (t, m) => t.equal(parseUri(m.uri)?.scheme, 'soap.beep')],
    ['inv2543', (t, m) => t.equal(parseVia(m.values('via')[0]!)?.branch, '')],
    ['trws', (t, m) => t.equal(m.uri, 'sip:remote-target@example.com')],
    ['lwsstart', (t, m) => t.equal(m.uri, 'sip:user@example.com')],
  ];
  for (const [name, check] of cases) {
    const r = parseMessage(readFileSync(`${TORTURE}${name}.sip`));
    t.ok(r.ok, `${name} parses${r.ok ? '' : `: ${r.error}`}`);
    if (r.ok) t.test(name, async (t) => check(t, r.msg));
  }
});

t.test('RFC 4475 messages the parser itself must reject', async (t) => {
  const expect: Record<string, RegExp> = {
    clerr: /larger/,
    ncl: /Content-Length/,
    mcl01: /duplicate content-length/,
    multi01: /duplicate/,
    bigcode: /status code/,
    lwsruri: /Request-URI/,
    badvers: /version/,
  };
  for (const [name, re] of Object.entries(expect)) {
    const r = parseMessage(readFileSync(`${TORTURE}${name}.sip`));
    t.equal(r.ok, false, name);
    if (!r.ok) t.match(r.error, re, name);
    // Requests keep their headers for the 400, responses need none.
    if (!r.ok && name !== 'bigcode') t.ok(r.msg, `${name}: headers indexed`);
  }
});

t.test('isOtherVersion and parseDecimal', async (t) => {
  t.equal(isOtherVersion(Buffer.from('OPTIONS sip:a@b SIP/3.0\r\nVia: x\r\n\r\n')), true);
  t.equal(isOtherVersion(Buffer.from('OPTIONS sip:t.watson@example.org SIP/7.0\r\n')), true, 'RFC 4475 badvers');
  t.equal(isOtherVersion(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\n')), false);
  t.equal(isOtherVersion(Buffer.from('OPTIONS sip:a@b sip/2.0\r\n')), false, 'case-insensitive');
  t.equal(isOtherVersion(Buffer.from('GET / HTTP/1.1\r\n')), false);
  t.equal(isOtherVersion(Buffer.from('garbage')), false);
  const d = (s: string, max = 65535) => parseDecimal(Buffer.from(s), 0, s.length, max);
  t.equal(d('0'), 0);
  t.equal(d('0068'), 68);
  t.equal(d('65535'), 65535);
  t.equal(d('65536'), -1);
  t.equal(d(''), -1);
  t.equal(d('12345678901', 1e12), -1, 'more than 10 digits');
  t.equal(d('1a'), -1);
  t.equal(d('-1'), -1);
});

t.test('header values: ASCII header sections and UTF-8 ones decode alike, folding collapsed', async (t) => {
  const ascii = ok(t, msg([...INVITE.slice(0, 3), 'From: "Alice" <sip:alice@pbx.example.test>;tag=a1', ...INVITE.slice(4), 'Subject: one,', ' two', 'Content-Length: 0']));
  t.equal(ascii.header('from'), '"Alice" <sip:alice@pbx.example.test>;tag=a1');
  t.equal(ascii.header('subject'), 'one, two', 'folded line unfolded');
  t.equal(ascii.header('call-id'), 'c1@127.0.0.21');
  const utf = ok(t, msg([...INVITE.slice(0, 3), 'From: "Jürgen ☎" <sip:j@pbx.example.test>;tag=j1', ...INVITE.slice(4), 'Content-Length: 0']));
  t.equal(utf.header('from'), '"Jürgen ☎" <sip:j@pbx.example.test>;tag=j1', 'a UTF-8 display name is decoded as UTF-8');
  t.equal(utf.header('call-id'), 'c1@127.0.0.21', 'and the other values of that message too');
  // A body with non-ASCII bytes does not change how the ASCII header section is read.
  const body = 'v=0 ☎';
  const withBody = ok(t, msg([...INVITE.slice(0, 7), `Content-Length: ${Buffer.byteLength(body)}`], body));
  t.equal(withBody.header('to'), '<sip:200@pbx.example.test>');
});

t.test('firstValue and hasSeveral: the top value of a list header without splitting the rest', async (t) => {
  const one = ok(t, msg([...INVITE.slice(0, 7), 'Content-Length: 0']));
  t.equal(one.firstValue('via'), 'SIP/2.0/UDP 127.0.0.21:5060;branch=z9hG4bK-abc;rport');
  t.equal(one.hasSeveral('via'), false);
  t.equal(one.firstValue('route'), undefined);
  const combined = ok(t, msg([INVITE[0]!, 'Via: SIP/2.0/UDP a.example;branch=z9hG4bK-1 , SIP/2.0/UDP b.example;branch=z9hG4bK-2', ...INVITE.slice(2, 7), 'Content-Length: 0']));
  t.equal(combined.firstValue('via'), 'SIP/2.0/UDP a.example;branch=z9hG4bK-1');
  t.equal(combined.hasSeveral('via'), true, 'a comma in the first line');
  const lines = ok(t, msg([...INVITE.slice(0, 2), 'Via: SIP/2.0/UDP b.example;branch=z9hG4bK-2', ...INVITE.slice(2, 7), 'Content-Length: 0']));
  t.equal(lines.hasSeveral('via'), true, 'two lines');
  t.same(lines.values('via').length, 2);
  const quoted = ok(t, msg([INVITE[0]!, INVITE[1]!, 'Contact: "Smith, John" <sip:j@h>, <sip:k@h>', ...INVITE.slice(2, 7), 'Content-Length: 0']));
  t.equal(quoted.firstValue('contact'), '"Smith, John" <sip:j@h>', 'a comma inside quotes does not split');
  const empty = ok(t, msg([INVITE[0]!, 'Via: , SIP/2.0/UDP c.example;branch=z9hG4bK-3', ...INVITE.slice(2, 7), 'Content-Length: 0']));
  t.equal(empty.firstValue('via'), 'SIP/2.0/UDP c.example;branch=z9hG4bK-3', 'an empty first element is skipped, as values() does');
});

t.test('methods resolve to shared constants, case-sensitively; others are kept as received', async (t) => {
  const line = 'xx INVITE SUBSCRIBE invite FOO';
  t.equal(knownMethod(line, 3, 9), 'INVITE');
  t.equal(knownMethod(line, 10, 19), 'SUBSCRIBE');
  t.equal(knownMethod(line, 20, 26), undefined, 'methods are case-sensitive (RFC 3261 §7.1): no mapping');
  t.equal(knownMethod(line, 27, 30), undefined);
  t.equal(knownMethod('ACKS', 0, 4), undefined, 'a known method as prefix is not enough');
  t.equal(knownMethod('INVITX', 0, 6), undefined, 'nor all but the last character');
  const odd = parseMessage(Buffer.from('FOO.bar sip:a@b SIP/2.0\r\nCSeq: 7 FOO.bar\r\n\r\n'));
  t.ok(odd.ok, 'an unknown method that is a token is accepted');
  if (odd.ok) t.same(parseCSeq(odd.msg.header('cseq')), { seq: 7, method: 'FOO.bar' });
  t.equal(parseMessage(Buffer.from('FO(O sip:a@b SIP/2.0\r\n\r\n')).ok, false, 'one that is not is refused');
  const r = parseMessage(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nCSeq: 7  OPTIONS \r\n\r\n'));
  t.ok(r.ok);
  if (r.ok) {
    t.equal(r.msg.method, 'OPTIONS');
    t.same(parseCSeq(r.msg.header('cseq')), { seq: 7, method: 'OPTIONS' });
  }
  t.equal(parseCSeq('7 OPT IONS'), undefined, 'a method is one token');
  t.equal(parseCSeq('7'), undefined);
  t.equal(parseCSeq('7 '), undefined);
});

t.test('topVia (read from the bytes) agrees with parseVia of the first Via value', async (t) => {
  const protocols = ['SIP/2.0/UDP', 'sip / 2.0 / udp', 'SIP/2.0/TCP', 'SIP/2.0/tls', 'SIP/2.0/ws', 'SIP/3.0/UDP', 'SIP/2.0/', 'SIPS/2.0/UDP'];
  const hosts = [' 127.0.0.1', ' Host.Example.COM', ' [2001:DB8::1]', ' [::1', ' ', '\t10.0.0.1'];
  const ports = [':5060', ' : 5062', ':99999', ':', '', ':123456'];
  const params = [';branch=z9hG4bK1;rport', ';rport;received=1.2.3.4', ';BRANCH=x;branch=y', ';;', ' ; branch = z ', ';received=[::1]', ';x="q"', ';x=<a>', '', ';rport=', 'junk', ';ttl=1;maddr=h'];
  const tails = ['', '  ', ', SIP/2.0/UDP other;branch=2', ' ,x', ',', '\r\n more'];
  const heads = ['', ' ', ', ', '\t'];
  let n = 0;
  let disagree = 0;
  let alone = 0;
  let wrongAlone = 0;
  let wrongBranch = 0;
  for (const p of protocols)
    for (const h of hosts)
      for (const port of ports)
        for (const par of params)
          for (const tail of tails)
            for (const head of heads) {
              const raw = `OPTIONS sip:a@b SIP/2.0\r\nVia:${head}${p}${h}${port}${par}${tail}\r\nVia: SIP/2.0/UDP second;branch=s\r\n\r\n`;
              const r = parseMessage(Buffer.from(raw, 'latin1'));
              if (!r.msg) continue;
              n++;
              const first = r.msg.firstValue('via');
              const expected = first === undefined ? undefined : parseVia(first);
              const got = topVia(r.msg);
              // alone is topVia's own knowledge (parseVia of a string cannot have it): it may be
              // claimed only when the first line holds no second value.
              if (got?.alone) {
                alone++;
                if (topLevelComma(r.msg.value(r.msg.field('via')!), 0) !== -1 && wrongAlone++ < 5) t.fail(`alone claimed: ${JSON.stringify(raw)}`);
              }
              // responseBranch (the response path's shortcut) agrees wherever topVia reads a Via.
              if (got !== undefined && responseBranch(r.msg) !== got.branch && wrongBranch++ < 5) {
                t.fail(`responseBranch ${JSON.stringify(responseBranch(r.msg))} vs ${JSON.stringify(got.branch)}: ${JSON.stringify(raw)}`);
              }
              const gotFields = got && { ...got, alone: false };
              if (JSON.stringify(gotFields) !== JSON.stringify(expected)) {
                if (disagree++ < 5) t.fail(`${JSON.stringify(raw)}: ${JSON.stringify(got)} vs ${JSON.stringify(expected)}`);
              }
            }
  t.ok(n > 40_000, `${n} messages compared`);
  t.equal(disagree, 0, 'no disagreement');
  t.equal(wrongAlone, 0, 'alone only where the first line holds one value');
  t.equal(wrongBranch, 0, 'responseBranch gives topVia\'s branch');
  t.ok(alone > 2_000, `${alone} first lines seen as holding one value`);
  // The torture messages too (valid or not, where a Via can be read).
  for (const f of readdirSync(TORTURE)) {
    const r = parseMessage(readFileSync(TORTURE + f));
    if (!r.msg) continue;
    const first = r.msg.firstValue('via');
    const got = topVia(r.msg);
    t.same(got && { ...got, alone: false }, first === undefined ? undefined : parseVia(first), f);
  }
  const valid = parseMessage(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKx;rport\r\n\r\n'));
  t.same(valid.msg && topVia(valid.msg), {
    value: 'SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKx;rport',
    transport: 'UDP',
    host: '10.0.0.1',
    port: 5070,
    params: ';branch=z9hG4bKx;rport',
    branch: 'z9hG4bKx',
    rport: '',
    received: undefined,
    alone: true,
  });
  const combined = parseMessage(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2\r\n\r\n'));
  t.equal(combined.msg && topVia(combined.msg)?.alone, false, 'a second value on the line');
  t.equal(combined.msg?.hasSeveral('via'), true);
  const twoLines = parseMessage(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP b;branch=z9hG4bK2\r\n\r\n'));
  t.equal(twoLines.msg && topVia(twoLines.msg)?.alone, true);
  t.equal(twoLines.msg?.hasSeveral('via', true), true, 'a second Via line counts whatever the first holds');
  t.equal(valid.msg?.hasSeveral('via', true), false);
  t.equal(parseVia('SIP/2.0/UDP a;branch=z9hG4bK1')?.alone, false, 'parseVia does not know the line');
});

t.test('responseBranch', async (t) => {
  const res = (via: string) => {
    const r = parseMessage(Buffer.from(`SIP/2.0 200 OK\r\n${via}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`, 'utf8'));
    if (!r.msg) throw new Error('unparsed');
    return r.msg;
  };
  const cases: [string, string | undefined][] = [
    ['Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sb1a2b3c4dq7.1f;rport', 'z9hG4bK-sb1a2b3c4dq7.1f'],
    ['Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sb1.1, SIP/2.0/UDP c;branch=z9hG4bK-c', 'z9hG4bK-sb1.1'],
    ['Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sb1.1 ;rport', 'z9hG4bK-sb1.1'],
    ['Via: SIP/2.0/UDP h;BRANCH=z9hG4bK-up', 'z9hG4bK-up'],
    ['Via: SIP/2.0/UDP h;BRANCH=first;branch=second', 'first'],
    ['Via: SIP/2.0/UDP h;x="a;branch=fake";branch=real', 'real'],
    ['Via: SIP/2.0/UDP h;branch = spaced', 'spaced'],
    ['Via: SIP/2.0/UDP h;rport, SIP/2.0/UDP c;branch=z9hG4bK-second', ''],
    ['Via: SIP/2.0/UDP h;branch=Jürgen', undefined],
    ['Via: SIP/2.0/UDP h;branch=z9hG4bK-a@b', undefined], // not a token: not cut short
    ['Call-ID: x', undefined],
  ];
  for (const [via, branch] of cases) {
    const m = res(via);
    t.equal(responseBranch(m), branch, via);
    t.equal(responseBranch(m), topVia(m)?.branch, `${via}: same as topVia`);
  }
});
