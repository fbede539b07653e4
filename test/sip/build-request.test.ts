/** buildRequest: a branch's CANCEL (§9.1) and ACK for a non-2xx (§17.1.1.3), byte for byte. */
import t from 'tap';
import { buildRequest, type RequestParts } from '../../src/sip/build-request.js';
import { parseMessage } from '../../src/sip/parser.js';

const BASE: RequestParts = {
  method: 'CANCEL',
  uri: 'sip:bob@192.0.2.30:5062',
  via: 'SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-sb1234abcd.1;rport',
  from: '"Anna" <sip:100@pbx.example>;tag=from1',
  to: '<sip:200@pbx.example>',
  callId: 'call-1@192.0.2.10',
  cseq: 42,
  routeLines: 'Route: <sip:192.0.2.99;lr>\r\nRoute: <sip:192.0.2.98;lr>, <sip:192.0.2.97;lr>\r\n',
  extra: ['Reason: SIP;cause=200;text="Call completed elsewhere"'],
  ascii: true,
};

t.test('a CANCEL with Reason and Route lines, exact bytes', async (t) => {
  const b = buildRequest(BASE);
  t.equal(
    b.toString('latin1'),
    'CANCEL sip:bob@192.0.2.30:5062 SIP/2.0\r\n' +
      'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-sb1234abcd.1;rport\r\n' +
      'Max-Forwards: 70\r\n' +
      'From: "Anna" <sip:100@pbx.example>;tag=from1\r\n' +
      'To: <sip:200@pbx.example>\r\n' +
      'Call-ID: call-1@192.0.2.10\r\n' +
      'CSeq: 42 CANCEL\r\n' +
      'Route: <sip:192.0.2.99;lr>\r\n' +
      'Route: <sip:192.0.2.98;lr>, <sip:192.0.2.97;lr>\r\n' +
      'Reason: SIP;cause=200;text="Call completed elsewhere"\r\n' +
      'Content-Length: 0\r\n' +
      '\r\n',
  );
  const p = parseMessage(b);
  t.ok(p.ok, 'it parses');
  if (p.ok) {
    t.equal(p.msg.method, 'CANCEL');
    t.equal(p.msg.header('cseq'), '42 CANCEL', 'CSeq method is the request\'s own');
    t.equal(p.msg.bodyLength, 0);
  }
});

t.test('an ACK with the response\'s To, no Route, no extra', async (t) => {
  const b = buildRequest({ ...BASE, method: 'ACK', to: '<sip:200@pbx.example>;tag=bob-tag', routeLines: '', extra: [] });
  t.equal(
    b.toString('latin1'),
    'ACK sip:bob@192.0.2.30:5062 SIP/2.0\r\n' +
      'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-sb1234abcd.1;rport\r\n' +
      'Max-Forwards: 70\r\n' +
      'From: "Anna" <sip:100@pbx.example>;tag=from1\r\n' +
      'To: <sip:200@pbx.example>;tag=bob-tag\r\n' +
      'Call-ID: call-1@192.0.2.10\r\n' +
      'CSeq: 42 ACK\r\n' +
      'Content-Length: 0\r\n' +
      '\r\n',
  );
});

t.test('UTF-8 when not ASCII, latin1 byte copy when it is', async (t) => {
  const from = '"Jürgen Ünal" <sip:100@pbx.example>;tag=f';
  const utf8 = buildRequest({ ...BASE, from, ascii: false });
  t.ok(utf8.includes(Buffer.from('From: "Jürgen Ünal"', 'utf8')), 'the display name as UTF-8');
  t.equal(utf8.length, Buffer.byteLength(utf8.toString('utf8')), 'valid UTF-8 throughout');
  const p = parseMessage(utf8);
  t.ok(p.ok);
  if (p.ok) t.equal(p.msg.header('from'), from, 'reads back as written');
  const emoji = buildRequest({ ...BASE, extra: ['Reason: SIP;cause=200;text="fertig ✓"'], ascii: false });
  t.ok(emoji.includes(Buffer.from('✓', 'utf8')));
  const ascii = buildRequest(BASE);
  t.equal(ascii.length, buildRequest({ ...BASE, ascii: false }).length, 'ASCII text: the same bytes either way');
  t.same(ascii, buildRequest({ ...BASE, ascii: false }));
});
