/**
 * How the proxy reaches each end of a confirmed dialog (proxy/dialog-ends.ts): the remote
 * targets, the flows, the route set beyond us from the 2xx's Record-Route, From/To as each end
 * expects them, the CSeq seen so far.
 */
import t from 'tap';
import { callerSide, dialogEnds } from '../../src/proxy/dialog-ends.js';
import { Identity } from '../../src/proxy/identity.js';
import type { Endpoint } from '../../src/transport/endpoint.js';
import { LOCAL_UDP, incoming, sip } from '../support/sip.js';

function identity(): Identity {
  const id = new Identity();
  id.refresh('pbx.example', undefined, [{ host: '10.0.0.1', port: 5060 }], [LOCAL_UDP]);
  return id;
}

const INVITE = [
  'INVITE sip:200@pbx.example SIP/2.0',
  'Via: SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK-1',
  'From: "Anna" <sip:100@pbx.example>;tag=caller-tag',
  'To: <sip:200@pbx.example>',
  'Call-ID: c1',
  'CSeq: 5 INVITE',
  'Contact: <sip:100@192.0.2.7:5070>',
  'Max-Forwards: 70',
  'Content-Length: 0',
  '',
  '',
].join('\r\n');

const ok = (recordRoute: string[]) =>
  sip(
    [
      'SIP/2.0 200 OK',
      'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-ours',
      'Via: SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK-1',
      ...recordRoute.map((r) => `Record-Route: ${r}`),
      'From: "Anna" <sip:100@pbx.example>;tag=caller-tag',
      'To: <sip:200@pbx.example>;tag=callee-tag',
      'Call-ID: c1',
      'CSeq: 5 INVITE',
      'Contact: <sip:anna@10.9.9.9:5062;transport=udp>',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );

const SOURCE: Endpoint = { transport: 'udp', address: '203.0.113.40', port: 40000 };
const CALLEE_FLOW: Endpoint = { transport: 'udp', address: '198.51.100.5', port: 6000 };
const hops: Record<string, Endpoint> = {
  'sip:edge.callee.example;lr': { transport: 'udp', address: '198.51.100.77', port: 5060 },
  'sip:sbc.caller.example;lr': { transport: 'tcp', address: '203.0.113.99', port: 5060 },
};
const resolve = (uri: string) => hops[uri];

t.test('our Record-Route alone: both ends are reached directly, From/To as each end expects', async (t) => {
  const side = callerSide(incoming(sip(INVITE), SOURCE))!;
  const ends = dialogEnds(side, ok(['<sip:10.0.0.1;lr>']), CALLEE_FLOW, identity(), resolve)!;
  t.same(ends.callee, {
    uri: 'sip:anna@10.9.9.9:5062;transport=udp',
    dest: CALLEE_FLOW,
    from: '"Anna" <sip:100@pbx.example>;tag=caller-tag',
    to: '<sip:200@pbx.example>;tag=callee-tag',
    routes: '',
    cseq: 5,
  });
  t.same(ends.caller, {
    uri: 'sip:100@192.0.2.7:5070',
    dest: SOURCE,
    from: '<sip:200@pbx.example>;tag=callee-tag',
    to: '"Anna" <sip:100@pbx.example>;tag=caller-tag',
    routes: '',
    cseq: -1,
  });
});

t.test('proxies beyond us on both sides: each end gets its own route set, its first hop resolved', async (t) => {
  const side = callerSide(incoming(sip(INVITE), SOURCE))!;
  // The 2xx lists the route set from the callee's side down.
  const res = ok(['<sip:edge.callee.example;lr>', '<sip:10.0.0.1;lr>, <sip:sbc.caller.example;lr>']);
  const ends = dialogEnds(side, res, CALLEE_FLOW, identity(), resolve)!;
  t.equal(ends.callee.routes, 'Route: <sip:edge.callee.example;lr>\r\n');
  t.same(ends.callee.dest, hops['sip:edge.callee.example;lr']);
  t.equal(ends.caller.routes, 'Route: <sip:sbc.caller.example;lr>\r\n');
  t.same(ends.caller.dest, hops['sip:sbc.caller.example;lr']);
});

t.test('no usable Contact in the 2xx or INVITE: no ends', async (t) => {
  const noContact = sip(INVITE.replace('Contact: <sip:100@192.0.2.7:5070>\r\n', ''));
  t.equal(callerSide(incoming(noContact, SOURCE)), undefined);
  const side = callerSide(incoming(sip(INVITE), SOURCE))!;
  const res = sip(ok(['<sip:10.0.0.1;lr>']).raw.toString().replace('Contact: <sip:anna@10.9.9.9:5062;transport=udp>\r\n', ''));
  t.equal(dialogEnds(side, res, CALLEE_FLOW, identity(), resolve), undefined);
});
