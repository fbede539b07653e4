/**
 * The proxy's routing pieces, each pure or nearly: ourRoutes (in-dialog-route.ts) with an
 * Identity, forwarding edits (§16.6), loop detection (§16.3 step 4), request checks (§16.3),
 * the target set (§16.5), next hop, and our Via / Record-Route entries.
 */
import t from 'tap';
import { ourRoutes } from '../../src/proxy/in-dialog-route.js';
import { Identity } from '../../src/proxy/identity.js';
import { forwardEdits, remainingRouteLines } from '../../src/proxy/forward-edits.js';
import { isLoop, loopHash } from '../../src/proxy/loop-detection.js';
import { checkRequest } from '../../src/proxy/request-checks.js';
import { extensionTargets, trunkOf, trunkTarget } from '../../src/proxy/target-set.js';
import { nextHop } from '../../src/proxy/next-hop.js';
import { recordRoute } from '../../src/proxy/record-route.js';
import { ourVia } from '../../src/transport/via.js';
import { localResponse } from '../../src/proxy/local-response.js';
import type { ExtensionConfig, TrunkConfig } from '../../src/config/types.js';
import type { Binding } from '../../src/location/binding.js';
import { parseEndpoint } from '../../src/transport/endpoint.js';
import { rewrite } from '../../src/sip/serialize.js';
import { parseUri } from '../../src/sip/uri.js';
import { LocalIds } from '../../src/transaction/ids.js';
import type { Endpoint } from '../../src/transport/endpoint.js';
import type { LocalAddress } from '../../src/transport/transport.js';
import { LOCAL_TCP, LOCAL_UDP, incoming, sip } from '../support/sip.js';

function identity(): Identity {
  const id = new Identity();
  id.refresh(
    'PBX.example',
    '203.0.113.5',
    [
      { host: '10.0.0.1', port: 5060 },
      { host: '10.0.0.1', port: 5061 },
    ],
    [LOCAL_UDP, { transport: 'tcp', host: '10.0.0.2', port: 5061 }],
  );
  return id;
}

/** A request with the given extra header lines (each a full line). */
function withLines(lines: string[], uri = 'sip:bob@192.0.2.30:5062'): ReturnType<typeof sip> {
  return sip(
    `INVITE ${uri} SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-r1
From: <sip:100@pbx.example>;tag=from1
To: <sip:200@pbx.example>;tag=to1
Call-ID: route-1
CSeq: 5 INVITE
${lines.join('\n')}${lines.length ? '\n' : ''}Content-Length: 0

`,
  );
}

t.test('ourRoutes: how many top Route entries are ours, and the next one', async (t) => {
  const id = identity();
  t.same(ourRoutes(withLines([]), id), { popped: 0, nextRoute: undefined }, 'no Route');
  t.same(ourRoutes(withLines(['Route: <sip:10.0.0.1:5060;lr>', 'Route: <sip:192.0.2.99;lr>']), id), { popped: 1, nextRoute: 'sip:192.0.2.99;lr' }, 'one of ours, then a foreign one');
  t.same(
    ourRoutes(withLines(['Route: <sip:10.0.0.1:5061;transport=tcp;lr>', 'Route: <sip:10.0.0.1;transport=udp;lr>, <sip:192.0.2.99:5080;lr>']), id),
    { popped: 2, nextRoute: 'sip:192.0.2.99:5080;lr' },
    'two after double record-routing (the second on one line with the next; no port is 5060)',
  );
  t.same(ourRoutes(withLines(['Route: <sip:192.0.2.99;lr>', 'Route: <sip:10.0.0.1;lr>']), id), { popped: 0, nextRoute: 'sip:192.0.2.99;lr' }, 'a foreign first Route: none popped');
  t.same(ourRoutes(withLines(['Route: <sip:pbx.example;lr>']), id), { popped: 1, nextRoute: undefined }, 'our domain, any port');
  t.same(ourRoutes(withLines(['Route: <sip:pbx.example:5099;lr>']), id), { popped: 1, nextRoute: undefined }, 'our domain with another port is still ours');
  t.same(ourRoutes(withLines(['Route: <sip:10.0.0.1:5099;lr>']), id), { popped: 0, nextRoute: 'sip:10.0.0.1:5099;lr' }, 'our host, not our port');
  t.same(ourRoutes(withLines(['Route: <sip:203.0.113.5;lr>']), id), { popped: 1, nextRoute: undefined }, 'the advertised address');
  t.same(ourRoutes(withLines(['Route: <sip:10.0.0.2:5061;lr>']), id), { popped: 1, nextRoute: undefined }, 'a local address');
  t.same(ourRoutes(withLines(['Route: garbage']), id), { popped: 0, nextRoute: undefined }, 'an unreadable Route is not ours');
});

t.test('Identity: isOurHost and isOurUri', async (t) => {
  const id = identity();
  t.ok(id.isOurHost('pbx.example'), 'the domain, lower-cased');
  t.ok(id.isOurHost('10.0.0.1'));
  t.notOk(id.isOurHost('10.0.0.9'));
  t.ok(id.isOurUri('sip:200@PBX.EXAMPLE'));
  t.ok(id.isOurUri('sip:10.0.0.1:5061'));
  t.notOk(id.isOurUri('sip:10.0.0.1:5062'));
  t.notOk(id.isOurUri(undefined));
  t.notOk(id.isOurUri('tel:+4930'));
  id.refresh('other.example', undefined, [{ host: '10.0.0.9', port: 5070 }], []);
  t.notOk(id.isOurUri('sip:pbx.example'), 'refresh replaces, not adds');
  t.ok(id.isOurUri('sip:10.0.0.9:5070'));
  t.notOk(id.isOurUri('sip:127.0.0.5:5070'), 'a loopback address is not ours when no listener is a wildcard');
  id.refresh('other.example', undefined, [{ host: '0.0.0.0', port: 5070 }], [{ transport: 'udp', host: '192.0.2.2', port: 5070 }]);
  t.ok(id.isOurUri('sip:192.0.2.2:5070'), 'an interface address of a wildcard listener');
  t.ok(id.isOurUri('sip:127.0.0.5:5070;transport=tcp'), 'any loopback address with our port: a wildcard TCP listener answers there');
  t.notOk(id.isOurUri('sip:127.0.0.5:5071'), 'not with another port');
  t.notOk(id.isOurUri('sip:127.0.0.5.9:5070'), 'not an address');
});

const SOURCE: Endpoint = { transport: 'udp', address: '192.0.2.10', port: 40000 };

t.test('forwardEdits: Max-Forwards, the stamped Via, our Routes popped across lines, our realm\'s credentials', async (t) => {
  const req = sip(`INVITE sip:bob@192.0.2.30 SIP/2.0
Via: SIP/2.0/UDP phone.local:5070;branch=z9hG4bK-1;rport, SIP/2.0/UDP 192.0.2.77;branch=z9hG4bK-0
Via: SIP/2.0/UDP 192.0.2.78;branch=z9hG4bK-00
Max-Forwards: 70
Route: <sip:10.0.0.1:5061;transport=tcp;lr>
From: <sip:100@pbx.example>;tag=from1
Route: <sip:10.0.0.1;lr>, <sip:192.0.2.99;lr>
To: <sip:200@pbx.example>
Proxy-Authorization: Digest username="anna", realm="pbx.example", nonce="n", uri="sip:bob@192.0.2.30", response="r"
Proxy-Authorization: Digest username="anna", realm="other.example", nonce="n", uri="sip:bob@192.0.2.30", response="r"
Call-ID: fe-1
CSeq: 1 INVITE
Content-Length: 0

`);
  const inc = incoming(req, SOURCE);
  const fwd = forwardEdits(inc, 2, 'pbx.example');
  t.equal(fwd.addMaxForwards, undefined, 'the request had a Max-Forwards');
  const out = rewrite(req, 'INVITE sip:bob@192.0.2.30 SIP/2.0', '', fwd.edits).toString();
  t.equal(
    out,
    [
      'INVITE sip:bob@192.0.2.30 SIP/2.0',
      'Via: SIP/2.0/UDP phone.local:5070;branch=z9hG4bK-1;rport=40000;received=192.0.2.10, SIP/2.0/UDP 192.0.2.77;branch=z9hG4bK-0',
      'Via: SIP/2.0/UDP 192.0.2.78;branch=z9hG4bK-00',
      'Max-Forwards: 69',
      'From: <sip:100@pbx.example>;tag=from1',
      'Route: <sip:192.0.2.99;lr>',
      'To: <sip:200@pbx.example>',
      'Proxy-Authorization: Digest username="anna", realm="other.example", nonce="n", uri="sip:bob@192.0.2.30", response="r"',
      'Call-ID: fe-1',
      'CSeq: 1 INVITE',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
    'exact forwarded header section',
  );
  t.equal(remainingRouteLines(req, fwd.edits), 'Route: <sip:192.0.2.99;lr>\r\n', 'the route set a CANCEL/ACK carries');

  const one = forwardEdits(inc, 1, 'pbx.example');
  t.equal(
    remainingRouteLines(req, one.edits),
    'Route: <sip:10.0.0.1;lr>, <sip:192.0.2.99;lr>\r\n',
    'one popped: the first line goes, the second stays as received',
  );
  const none = forwardEdits(inc, 0, 'elsewhere.example');
  t.equal(remainingRouteLines(req, none.edits), 'Route: <sip:10.0.0.1:5061;transport=tcp;lr>\r\nRoute: <sip:10.0.0.1;lr>, <sip:192.0.2.99;lr>\r\n', 'none popped');
  t.equal([...none.edits.values()].filter((v) => v === null).length, 0, 'another realm: both credentials kept');
});

t.test('forwardEdits: two of our Routes on one line with the next hop', async (t) => {
  const req = withLines(['Route: <sip:10.0.0.1:5061;transport=tcp;lr>, <sip:10.0.0.1;lr>, <sip:192.0.2.99;lr>', 'Route: <sip:192.0.2.98;lr>']);
  const routes = ourRoutes(req, identity());
  t.same(routes, { popped: 2, nextRoute: 'sip:192.0.2.99;lr' });
  const fwd = forwardEdits(incoming(req, SOURCE), routes.popped, 'pbx.example');
  t.equal(remainingRouteLines(req, fwd.edits), 'Route: <sip:192.0.2.99;lr>\r\nRoute: <sip:192.0.2.98;lr>\r\n', 'both popped from the one line');
  const all = forwardEdits(incoming(req, SOURCE), 4, 'pbx.example');
  t.equal(remainingRouteLines(req, all.edits), '', 'popping every entry drops every line');
});

t.test('forwardEdits: Max-Forwards added when missing, decremented from its value; an unchanged Via is not edited', async (t) => {
  const noMf = sip('OPTIONS sip:bob@192.0.2.30 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:40000;branch=z9hG4bK-2\nFrom: <sip:a@b>;tag=1\nTo: <sip:c@d>\nCall-ID: x\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n');
  const inc = incoming(noMf, SOURCE);
  t.equal(inc.stampedVia, undefined);
  const fwd = forwardEdits(inc, 0, 'pbx.example');
  t.equal(fwd.addMaxForwards, 'Max-Forwards: 69', 'added: 70 - 1');
  t.equal(fwd.edits.size, 0, 'nothing else to edit');

  const mf = sip('OPTIONS sip:bob@192.0.2.30 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:40000;branch=z9hG4bK-2\nMax-Forwards: 0068\nFrom: <sip:a@b>;tag=1\nTo: <sip:c@d>\nCall-ID: x\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n');
  const inc2 = incoming(mf, SOURCE);
  inc2.maxForwards = 68; // as the dispatcher reads "0068"
  const out = rewrite(mf, 'OPTIONS sip:bob@192.0.2.30 SIP/2.0', '', forwardEdits(inc2, 0, 'pbx.example').edits).toString();
  t.match(out, /\r\nMax-Forwards: 67\r\n/, 'decremented from the value read, not the text');
  t.match(out, /\r\nVia: SIP\/2\.0\/UDP 192\.0\.2\.10:40000;branch=z9hG4bK-2\r\n/, 'Via as received');
});

t.test('isLoop and loopHash: our own branch with this request\'s hash is a loop, a spiral is not', async (t) => {
  const ids = new LocalIds();
  const first = incoming(withLines([]));
  t.notOk(isLoop(first, ids.branchPrefix), 'one Via: not a loop');
  const ourBranch = ids.branch(loopHash(first));
  t.ok(ourBranch.startsWith(`${ids.branchPrefix}${loopHash(first)}.`), 'our branch carries the hash');

  const back = (uri: string, via2 = `SIP/2.0/UDP 10.0.0.1:5060;branch=${ourBranch};rport`): ReturnType<typeof incoming> =>
    incoming(
      sip(`INVITE ${uri} SIP/2.0
Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bK-other
Via: ${via2}
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-r1
From: <sip:100@pbx.example>;tag=from1
To: <sip:200@pbx.example>;tag=to1
Call-ID: route-1
CSeq: 5 INVITE
Content-Length: 0

`),
    );
  t.ok(isLoop(back('sip:bob@192.0.2.30:5062'), ids.branchPrefix), 'came back unchanged: a loop (483)');
  t.notOk(isLoop(back('sip:bob-mobile@192.0.2.31'), ids.branchPrefix), 'a new Request-URI: a spiral');
  t.notOk(isLoop(back('sip:bob@192.0.2.30:5062', 'SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-sbdeadbeef123.1'), ids.branchPrefix), 'another proxy\'s branch');
  t.notOk(isLoop(back('sip:bob@192.0.2.30:5062'), new LocalIds().branchPrefix), 'another instance\'s prefix');
  const oneLine = incoming(
    sip(`INVITE sip:bob@192.0.2.30:5062 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bK-other, SIP/2.0/UDP 10.0.0.1:5060;branch=${ourBranch}
From: <sip:100@pbx.example>;tag=from1
To: <sip:200@pbx.example>;tag=to1
Call-ID: route-1
CSeq: 5 INVITE
Content-Length: 0

`),
  );
  t.ok(isLoop(oneLine, ids.branchPrefix), 'our Via on the same line as the top one');

  const h = loopHash(first);
  t.match(h, /^[0-9a-z]+$/, 'base 36');
  t.equal(loopHash({ ...first }), h, 'deterministic');
  t.not(loopHash({ ...first, callId: 'other' }), h, 'Call-ID counts');
  t.not(loopHash({ ...first, fromTag: 'other' }), h, 'From tag counts');
  t.not(loopHash({ ...first, cseq: 6 }), h, 'CSeq counts');
  t.not(loopHash({ ...first, callId: 'route-', fromTag: '1from1' }), h, 'fields are separated');
});

t.test('checkRequest: 483, 420 with Unsupported, 416', async (t) => {
  const inc = incoming(withLines([]));
  t.equal(checkRequest(inc, parseUri(inc.req.uri)), undefined, 'a good request passes');
  t.same(checkRequest({ ...inc, maxForwards: 0 }, parseUri(inc.req.uri)), { status: 483, reason: 'Too Many Hops' });
  t.equal(checkRequest({ ...inc, maxForwards: 1 }, parseUri(inc.req.uri)), undefined, 'Max-Forwards 1 still passes');
  const pr = incoming(withLines(['Proxy-Require: foo, bar']));
  t.same(checkRequest(pr, parseUri(pr.req.uri)), { status: 420, reason: 'Bad Extension', headers: ['Unsupported: foo, bar'] });
  t.same(checkRequest(inc, parseUri('http://example.com/')), { status: 416, reason: 'Unsupported URI Scheme' });
  t.same(checkRequest(inc, undefined), { status: 416, reason: 'Unsupported URI Scheme' }, 'an unreadable Request-URI');
  t.equal(checkRequest(inc, parseUri('tel:+4930123')), undefined, 'tel is accepted');
  t.equal(checkRequest(inc, parseUri('sips:bob@pbx.example')), undefined, 'sips is accepted');
  t.equal(checkRequest({ ...pr, maxForwards: 0 }, undefined)?.status, 483, '483 is checked first');
});

/** dest: where requests go when it is not the source (location/nat.ts decides at REGISTER). */
function binding(username: string, contact: string, source: string, dest?: string): Binding {
  const s = parseEndpoint(source)!;
  return { username, extension: '200', contact, expiresAt: 0, callId: 'c', cseq: 1, source: s, dest: dest === undefined ? s : parseEndpoint(dest)!, userAgent: 'x' };
}

t.test('extensionTargets: every contact of every device but the caller\'s, at its binding\'s dest', async (t) => {
  const ext: ExtensionConfig = {
    number: '200',
    name: 'Sales',
    busyOnBusy: false,
    declineEndsCall: false,
    devices: [
      { username: 'anna', password: 'x' },
      { username: 'bob', password: 'x' },
      { username: 'carl', password: 'x' },
      { username: 'dora', password: 'x' },
    ],
  };
  const table: Record<string, Binding[]> = {
    anna: [binding('anna', 'sip:anna@192.0.2.21:5062', 'udp:192.0.2.21:5062')],
    bob: [binding('bob', 'sip:bob@10.1.1.1:5062', 'udp:198.51.100.9:61000'), binding('bob', 'sip:bob@10.1.1.2;transport=tcp', 'tcp:198.51.100.9:40123')],
    carl: [],
    dora: [binding('dora', 'sip:dora@192.0.2.40:5070', 'udp:192.0.2.40:40000', 'udp:192.0.2.40:5070')],
  };
  const location = { lookup: (u: string): Binding[] => table[u] ?? [] };
  const targets = extensionTargets(ext, 'anna', location);
  t.same(targets, [
    { uri: 'sip:bob@10.1.1.1:5062', dest: { transport: 'udp', address: '198.51.100.9', port: 61000 }, device: 'bob', extension: '200' },
    { uri: 'sip:bob@10.1.1.2;transport=tcp', dest: { transport: 'tcp', address: '198.51.100.9', port: 40123 }, device: 'bob', extension: '200' },
    { uri: 'sip:dora@192.0.2.40:5070', dest: { transport: 'udp', address: '192.0.2.40', port: 5070 }, device: 'dora', extension: '200' },
  ], 'anna (calling) excluded, carl has none, dora registered for her Contact from another port');
  t.equal(extensionTargets(ext, undefined, location).length, 4, 'a trunk call rings every device');
});

t.test('nextHop: a registered contact at its binding\'s dest, an IP URI as written, a foreign host name nowhere', async (t) => {
  const b = binding('bob', 'sip:bob@10.1.1.1:5062', 'udp:198.51.100.9:61000');
  const c = binding('carl', 'sip:carl@192.0.2.40:5070', 'udp:192.0.2.40:40000', 'udp:192.0.2.40:5070');
  const location = { byContactUri: (uri: string): Binding | undefined => (uri === b.contact ? b : uri === c.contact ? c : undefined) };
  t.same(nextHop('sip:bob@10.1.1.1:5062', location), { transport: 'udp', address: '198.51.100.9', port: 61000 }, 'behind NAT: its source');
  t.same(nextHop('sip:carl@192.0.2.40:5070', location), { transport: 'udp', address: '192.0.2.40', port: 5070 }, 'registered for its Contact: there');
  t.same(nextHop('sip:192.0.2.99;lr', location), { transport: 'udp', address: '192.0.2.99', port: 5060 });
  t.same(nextHop('sip:192.0.2.99:5080;transport=TCP;lr', location), { transport: 'tcp', address: '192.0.2.99', port: 5080 });
  t.equal(nextHop('sip:gw.example.com;lr', location), undefined);
  t.equal(nextHop('not a uri', location), undefined);
});

t.test('trunkOf and trunkTarget', async (t) => {
  const trunks: TrunkConfig[] = [
    { name: 'any-port', host: '198.51.100.1' },
    { name: 'fixed-port', host: '198.51.100.2', port: 5080 },
    { name: 'v6', host: '2001:db8::1' },
  ];
  t.equal(trunkOf({ transport: 'udp', address: '198.51.100.1', port: 12345 }, trunks)?.name, 'any-port');
  t.equal(trunkOf({ transport: 'udp', address: '198.51.100.2', port: 5080 }, trunks)?.name, 'fixed-port');
  t.equal(trunkOf({ transport: 'udp', address: '198.51.100.2', port: 5060 }, trunks), undefined, 'a trunk with a port trusts that port only');
  t.equal(trunkOf({ transport: 'udp', address: '198.51.100.3', port: 5060 }, trunks), undefined);
  t.same(trunkTarget('0049301234', trunks[1]!), {
    uri: 'sip:0049301234@198.51.100.2:5080',
    dest: { transport: 'udp', address: '198.51.100.2', port: 5080 },
    device: '',
    extension: '',
  });
  t.same(trunkTarget('+4930', trunks[2]!), { uri: 'sip:+4930@[2001:db8::1]:5060', dest: { transport: 'udp', address: '2001:db8::1', port: 5060 }, device: '', extension: '' }, 'IPv6 in brackets, port 5060 by default');
});

t.test('ourVia and recordRoute (double record-routing when the legs differ)', async (t) => {
  t.equal(ourVia(LOCAL_UDP, 'z9hG4bK-x'), 'SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-x;rport');
  t.equal(ourVia({ transport: 'tcp', host: '10.0.0.1', port: 5061 }, 'z9hG4bK-y'), 'SIP/2.0/TCP 10.0.0.1:5061;branch=z9hG4bK-y;rport');
  t.equal(ourVia({ transport: 'udp', host: '2001:db8::5', port: 5060 }, 'b'), 'SIP/2.0/UDP [2001:db8::5]:5060;branch=b;rport');
  t.equal(recordRoute(LOCAL_UDP, { ...LOCAL_UDP }), 'Record-Route: <sip:10.0.0.1:5060;transport=udp;lr>\r\n', 'same listener: one entry');
  t.equal(
    recordRoute(LOCAL_UDP, LOCAL_TCP),
    'Record-Route: <sip:10.0.0.1:5060;transport=tcp;lr>\r\nRecord-Route: <sip:10.0.0.1:5060;transport=udp;lr>\r\n',
    'UDP in, TCP out: two, outbound first (it is nearest to the callee)',
  );
  const otherPort: LocalAddress = { transport: 'udp', host: '10.0.0.1', port: 5070 };
  t.equal(recordRoute(LOCAL_UDP, otherPort).split('\r\n').length - 1, 2, 'another port: two');
  t.equal(recordRoute(LOCAL_UDP, { transport: 'udp', host: '10.0.0.3', port: 5060 }).split('\r\n').length - 1, 2, 'another host: two');
});

t.test('localResponse: our To tag on responses above 100, the stamped Via on top', async (t) => {
  const ids = new LocalIds();
  const req = sip('INVITE sip:bob@pbx.example SIP/2.0\nVia: SIP/2.0/UDP phone.local:5070;branch=z9hG4bK-lr;rport\nFrom: <sip:a@pbx.example>;tag=1\nTo: <sip:bob@pbx.example>\nCall-ID: lr\nCSeq: 1 INVITE\nContent-Length: 0\n\n');
  const inc = incoming(req, SOURCE);
  const trying = localResponse(inc, ids, 100, 'Trying').toString();
  t.match(trying, /\r\nTo: <sip:bob@pbx\.example>\r\n/, '100: no To tag');
  t.match(trying, /\r\nVia: SIP\/2\.0\/UDP phone\.local:5070;branch=z9hG4bK-lr;rport=40000;received=192\.0\.2\.10\r\n/);
  const busy = localResponse(inc, ids, 486, 'Busy Here', ['Retry-After: 60']).toString();
  t.match(busy, /^SIP\/2\.0 486 Busy Here\r\n/);
  t.match(busy, /\r\nTo: <sip:bob@pbx\.example>;tag=[0-9a-z]+\r\n/, '486: our tag');
  t.match(busy, /\r\nRetry-After: 60\r\n/);
});
