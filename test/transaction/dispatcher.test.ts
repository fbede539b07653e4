/**
 * The dispatcher (transport -> here -> transaction layer) with a real TransactionLayer, a
 * recording TransactionUser, a recording stateless send and a recording counter.
 */
import t from 'tap';
import { pino } from 'pino';
import { parseMessage } from '../../src/sip/parser.js';
import { Dispatcher } from '../../src/transaction/dispatcher.js';
import { LocalIds } from '../../src/transaction/ids.js';
import { TransactionLayer } from '../../src/transaction/layer.js';
import type { IncomingRequest } from '../../src/transaction/request.js';
import type { Endpoint } from '../../src/transport/endpoint.js';
import type { LocalAddress } from '../../src/transport/transport.js';
import { FakeTimers } from '../support/sip.js';

/** A test of a src bug not fixed yet: tap skips it as todo; RUN_TODO=1 runs it (and it fails). */
const knownBug = (why: string): string | false => (process.env.RUN_TODO ? false : why);

interface Rig {
  dispatcher: Dispatcher;
  layer: TransactionLayer;
  sent: { dest: Endpoint; data: string }[];
  heard: string[];
  incs: IncomingRequest[];
  counted: { requests: string[]; responses: number[] };
  deliver(text: string | Buffer, source?: Endpoint): void;
}

const SRC: Endpoint = { transport: 'udp', address: '192.0.2.10', port: 40000 };
const LOCAL: LocalAddress = { transport: 'udp', host: '10.0.0.1', port: 5060 };

function rig(): Rig {
  const timers = new FakeTimers();
  const layer = new TransactionLayer(() => {}, timers.queue);
  const heard: string[] = [];
  const incs: IncomingRequest[] = [];
  layer.setUser({
    request: (inc) => {
      heard.push(`request ${inc.req.method}`);
      incs.push(inc);
    },
    ack: (inc) => {
      heard.push('ack');
      incs.push(inc);
    },
    cancel: (inc) => {
      heard.push('cancel');
      incs.push(inc);
    },
    strayInvite2xx: (res) => heard.push(`stray ${res.status}`),
  });
  const sent: Rig['sent'] = [];
  const counted = { requests: [] as string[], responses: [] as number[] };
  const dispatcher = new Dispatcher({
    layer,
    ids: new LocalIds(),
    send: (dest, data) => sent.push({ dest, data: data.toString() }),
    counter: { request: (m) => counted.requests.push(m), response: (s) => counted.responses.push(s) },
    log: pino({ level: 'silent' }),
  });
  return {
    dispatcher,
    layer,
    sent,
    heard,
    incs,
    counted,
    deliver(text, source = SRC) {
      const data = typeof text === 'string' ? Buffer.from(text.replace(/\r?\n/g, '\r\n')) : text;
      dispatcher.onMessage(data, source, LOCAL);
    },
  };
}

/** An INVITE with the header lines given (each "Name: value"; null drops the default one). */
function invite(over: Record<string, string | null> = {}, method = 'INVITE', startLine?: string): string {
  const h: Record<string, string | null> = {
    Via: 'SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK-d1',
    'Max-Forwards': '70',
    From: '"Anna" <sip:100@pbx.example>;tag=from1',
    To: '<sip:200@pbx.example>',
    'Call-ID': 'cid-1@192.0.2.10',
    CSeq: `7 ${method === 'ACK' ? 'ACK' : method}`,
    ...over,
  };
  let s = `${startLine ?? `${method} sip:200@pbx.example SIP/2.0`}\n`;
  for (const [k, v] of Object.entries(h)) if (v !== null) s += `${k}: ${v}\n`;
  return s + 'Content-Length: 0\n\n';
}

const BAD: [string, Record<string, string | null>, RegExp][] = [
  ['missing Call-ID', { 'Call-ID': null }, /^SIP\/2\.0 400 Bad Request \(missing or bad Call-ID, From, To or CSeq\)\r\n/],
  ['missing From', { From: null }, /^SIP\/2\.0 400 Bad Request \(missing or bad Call-ID, From, To or CSeq\)\r\n/],
  ['missing To', { To: null }, /^SIP\/2\.0 400 Bad Request \(missing/],
  ['missing CSeq', { CSeq: null }, /^SIP\/2\.0 400 Bad Request \(missing/],
  ['unreadable CSeq', { CSeq: 'seven INVITE' }, /^SIP\/2\.0 400 Bad Request \(missing/],
  ['CSeq method mismatch', { CSeq: '7 BYE' }, /^SIP\/2\.0 400 Bad Request \(CSeq method does not match\)\r\n/],
  ['bad From', { From: '"Anna <sip:100@pbx.example>;tag=from1' }, /^SIP\/2\.0 400 Bad Request \(bad From or To\)\r\n/],
  ['bad To', { To: '<sip:200@pbx.example' }, /^SIP\/2\.0 400 Bad Request \(bad From or To\)\r\n/],
  ['Max-Forwards not a number', { 'Max-Forwards': 'seventy' }, /^SIP\/2\.0 400 Bad Request \(bad Max-Forwards\)\r\n/],
  ['Max-Forwards above 255', { 'Max-Forwards': '256' }, /^SIP\/2\.0 400 Bad Request \(bad Max-Forwards\)\r\n/],
  ['Max-Forwards negative', { 'Max-Forwards': '-1' }, /^SIP\/2\.0 400 Bad Request \(bad Max-Forwards\)\r\n/],
  ['Max-Forwards empty', { 'Max-Forwards': '' }, /^SIP\/2\.0 400 Bad Request \(bad Max-Forwards\)\r\n/],
];

t.test('a request the transaction layer cannot use gets one 400 to its reply target; the user hears nothing', async (t) => {
  for (const [name, over, status] of BAD) {
    const r = rig();
    r.deliver(invite(over));
    t.equal(r.sent.length, 1, `${name}: one response`);
    t.match(r.sent[0]?.data, status, `${name}: status line`);
    // No rport in the Via: the Via's port at the source address (§18.2.2).
    t.same(r.sent[0]?.dest, { transport: 'udp', address: '192.0.2.10', port: 5070 }, `${name}: to the reply target`);
    if (over.To !== null) t.match(r.sent[0]?.data, /\r\nTo: [^\r]*;tag=[0-9a-f]+[0-9a-z]+\r\n/, `${name}: with our To tag`);
    t.same(r.heard, [], `${name}: user hears nothing`);
    t.equal(r.layer.inFlight, 0, `${name}: no transaction`);
    t.same(r.counted.requests, ['INVITE'], `${name}: still counted`);
  }
});

t.test('an ACK with the same faults gets nothing at all', async (t) => {
  for (const [name, over] of BAD) {
    const r = rig();
    const o = { ...over };
    if (o.CSeq === '7 BYE') o.CSeq = '7 INVITE'; // an ACK's CSeq names ACK
    r.deliver(invite(o, 'ACK'));
    t.same(r.sent, [], `${name}: no response to an ACK`);
    t.same(r.heard, [], `${name}: user hears nothing`);
  }
});

t.test('the 400 goes to the source port when the Via asks for rport', async (t) => {
  const r = rig();
  r.deliver(invite({ Via: 'SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK-d1;rport', 'Call-ID': null }));
  t.same(r.sent[0]?.dest, SRC);
});

t.test('a datagram that does not parse: 400 when its Via is readable, 505 for another SIP version, else nothing', async (t) => {
  let r = rig();
  r.deliver(invite({ 'Call-ID': 'a', 'call-id': 'b' }));
  t.equal(r.sent.length, 1);
  t.match(r.sent[0]!.data, /^SIP\/2\.0 400 Bad Request \(duplicate call-id header\)\r\n/);
  t.same(r.heard, []);
  t.same(r.counted.requests, [], 'not counted: it is not a message');

  r = rig();
  r.deliver(invite({}, 'INVITE', 'INVITE sip:200@pbx.example SIP/3.0'));
  t.equal(r.sent.length, 1);
  t.match(r.sent[0]!.data, /^SIP\/2\.0 505 Version Not Supported\r\n/, 'SIP/3.0: 505');
  t.same(r.sent[0]!.dest, { transport: 'udp', address: '192.0.2.10', port: 5070 });

  r = rig();
  r.deliver(invite({}, 'INVITE', 'INVITE sip:200@pbx.example SIP/2.0x'));
  t.match(r.sent[0]?.data, /^SIP\/2\.0 400 Bad Request \(unsupported SIP version\)\r\n/, 'not a version at all: 400');

  r = rig();
  r.deliver(invite({ Via: null, 'Call-ID': 'a', 'call-id': 'b' }));
  t.same(r.sent, [], 'no Via: nothing to answer to');

  r = rig();
  r.deliver(invite({ 'Call-ID': 'a', 'call-id': 'b' }, 'ACK'));
  t.same(r.sent, [], 'a malformed ACK: nothing');

  r = rig();
  r.deliver('SIP/2.0 200 OK\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-x\nCall-ID: a\nCall-ID: b\nCSeq: 1 INVITE\nContent-Length: 0\n\n');
  t.same(r.sent, [], 'a malformed response is dropped');
  t.same(r.heard, [], 'and does not reach the layer as a stray 2xx');
  t.same(r.counted.responses, []);

  r = rig();
  r.deliver(invite({}).replace('Content-Length: 0', 'Content-Length: 99'));
  t.match(r.sent[0]?.data, /^SIP\/2\.0 400 Bad Request \(Content-Length larger than message\)/, 'truncated datagram: 400');
});

t.test('a request without a valid Via is dropped', async (t) => {
  const r = rig();
  r.deliver(invite({ Via: 'garbage' }));
  t.same(r.sent, []);
  t.same(r.heard, []);
});

t.test('a good request reaches the user read once', async (t) => {
  const r = rig();
  r.deliver(invite({ To: '<sip:200@pbx.example>;tag=to9', 'Max-Forwards': '0068' }));
  t.same(r.sent, [], 'nothing answered here');
  t.same(r.heard, ['request INVITE']);
  const inc = r.incs[0]!;
  t.equal(inc.callId, 'cid-1@192.0.2.10');
  t.equal(inc.fromTag, 'from1');
  t.equal(inc.toTag, 'to9');
  t.equal(inc.cseq, 7);
  t.equal(inc.maxForwards, 68, '"0068" is 68 (RFC 4475 wsinv)');
  t.equal(inc.via.branch, 'z9hG4bK-d1');
  t.equal(inc.stampedVia, undefined, 'sent-by is the source address and no rport: unchanged');
  t.same(inc.replyTo, { transport: 'udp', address: '192.0.2.10', port: 5070 });
  t.same(inc.source, SRC);
  t.same(inc.local, LOCAL);
  t.not(inc.key, '', 'the layer set the key');

  const r2 = rig();
  r2.deliver(invite({ 'Max-Forwards': null, To: '<sip:200@pbx.example>' }));
  t.equal(r2.incs[0]!.maxForwards, 70, 'no Max-Forwards: 70 (§8.1.1.6)');
  t.equal(r2.incs[0]!.toTag, '', 'no To tag');

  const r3 = rig();
  r3.deliver(invite({ 'Max-Forwards': '255' }));
  t.equal(r3.incs[0]!.maxForwards, 255, '255 is the largest');
  r3.deliver(invite({ 'Max-Forwards': '0', Via: 'SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK-d2' }));
  t.equal(r3.incs[1]!.maxForwards, 0, '0 reaches the user (483 is the proxy\'s answer)');
});

t.test('received and rport are stamped into the top Via per RFC 3581', async (t) => {
  const r = rig();
  r.deliver(invite({ Via: 'SIP/2.0/UDP phone.local:5070;branch=z9hG4bK-s1;rport' }));
  let inc = r.incs[0]!;
  t.equal(inc.stampedVia, 'SIP/2.0/UDP phone.local:5070;branch=z9hG4bK-s1;rport=40000;received=192.0.2.10');
  t.same(inc.replyTo, SRC, 'rport: the reply goes to the source port');

  r.deliver(invite({ Via: 'SIP/2.0/UDP 192.0.2.10:5070;rport;branch=z9hG4bK-s2' }));
  inc = r.incs[1]!;
  t.equal(inc.stampedVia, 'SIP/2.0/UDP 192.0.2.10:5070;rport=40000;branch=z9hG4bK-s2', 'same host: rport only');

  const tcp: Endpoint = { transport: 'tcp', address: '192.0.2.10', port: 40001 };
  r.deliver(invite({ Via: 'SIP/2.0/TCP 192.0.2.99:5070;branch=z9hG4bK-s3;rport' }), tcp);
  inc = r.incs[2]!;
  t.equal(inc.stampedVia, 'SIP/2.0/TCP 192.0.2.99:5070;branch=z9hG4bK-s3;rport;received=192.0.2.10', 'TCP: received only');
  t.same(inc.replyTo, tcp, 'TCP: the connection');
});

t.test('ACK and CANCEL reach the layer; responses go to it too', async (t) => {
  const r = rig();
  r.deliver(invite({ To: '<sip:200@pbx.example>;tag=x' }, 'ACK'));
  r.deliver(invite({ CSeq: '7 CANCEL' }, 'CANCEL'));
  t.same(r.heard, ['ack', 'cancel']);
  r.deliver('SIP/2.0 200 OK\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-late\nFrom: <sip:a@b>;tag=1\nTo: <sip:c@d>;tag=2\nCall-ID: a\nCSeq: 1 INVITE\nContent-Length: 0\n\n');
  t.same(r.heard, ['ack', 'cancel', 'stray 200'], 'a response goes to the layer (here: a stray 2xx)');
});

t.test('the counter sees requests by method and responses by status', async (t) => {
  const r = rig();
  r.deliver(invite());
  r.deliver(invite({ CSeq: '8 OPTIONS', Via: 'SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK-o' }, 'OPTIONS'));
  r.deliver(invite({ 'Call-ID': null }, 'BYE'));
  r.deliver('SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-x\nCall-ID: a\nCSeq: 1 INVITE\nContent-Length: 0\n\n');
  r.deliver('SIP/2.0 486 Busy Here\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-x\nCall-ID: a\nCSeq: 1 INVITE\nContent-Length: 0\n\n');
  t.same(r.counted.requests, ['INVITE', 'OPTIONS', 'BYE'], 'a request the dispatcher refuses is counted too');
  t.same(r.counted.responses, [180, 486]);
});

t.test('the handler never throws, whatever arrives', async (t) => {
  const r = rig();
  const samples: Buffer[] = [
    Buffer.alloc(0),
    Buffer.from('\r\n\r\n'),
    Buffer.from('hello'),
    Buffer.from('INVITE\r\n\r\n'),
    Buffer.from('SIP/2.0 999 X\r\n\r\n'),
    Buffer.from('INVITE sip:a SIP/2.0\r\nVia: \r\n\r\n'),
    Buffer.from('INVITE sip:a SIP/2.0\r\nVia: SIP/2.0/UDP ;branch=\r\nCSeq: 1\r\n\r\n'),
    Buffer.alloc(70_000, 65),
    Buffer.from([0xff, 0xfe, 0x00, 0x0d, 0x0a]),
  ];
  // Deterministic pseudo-random garbage and mutations of a good request.
  let seed = 42;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const good = Buffer.from(invite().replace(/\n/g, '\r\n'));
  for (let i = 0; i < 300; i++) {
    const b = Buffer.from(good);
    for (let k = 0; k < 1 + rnd(6); k++) b[rnd(b.length)] = rnd(256);
    samples.push(rnd(4) === 0 ? b.subarray(0, rnd(b.length)) : b);
  }
  for (let i = 0; i < 50; i++) samples.push(Buffer.from(Array.from({ length: rnd(200) }, () => rnd(256))));
  let threw = 0;
  for (const s of samples) {
    try {
      r.dispatcher.onMessage(s, SRC, LOCAL);
    } catch {
      threw++;
    }
  }
  t.equal(threw, 0, `${samples.length} messages, none threw`);
  t.ok(r.sent.length > 0, 'some of it was answered');
  // Every answer is itself a message (a request's NUL byte copied into the 400: see the todo below).
  const unparsable = r.sent.map((s) => parseMessage(Buffer.from(s.data))).filter((p) => !p.ok && p.error !== 'NUL byte in the header');
  t.same(unparsable, [], 'every answer parses');
  t.same(r.heard.filter((h) => !h.startsWith('request') && h !== 'ack' && h !== 'cancel'), [], 'nothing odd reached the user');
});

t.test('the 400 for a NUL byte in a header copies the NUL into its own From/To', { todo: knownBug('src: buildResponse copies the bad value verbatim; the 400 is itself malformed') }, async (t) => {
  const r = rig();
  r.deliver(Buffer.from(invite({ To: '<sip:200@pbx\u0000.example>' }).replace(/\n/g, '\r\n')));
  t.equal(r.sent.length, 1);
  t.match(r.sent[0]?.data, /^SIP\/2\.0 400 Bad Request \(NUL byte in the header\)/);
  const p = parseMessage(Buffer.from(r.sent[0]?.data ?? ''));
  t.ok(p.ok, 'the 400 parses');
});
