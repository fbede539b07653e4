/**
 * Routing across instances (issue 14), through the real proxy core: a Proxy over a real
 * TransactionLayer, LocationService, Directory, Authenticator and Registrar, with a fake send
 * and a fake clock. The same rig plays either side: the instance that forks (a binding another
 * instance owns is rung through that instance) and the owner (a peer's branch is relayed to the
 * device's own flow).
 */
import t from 'tap';
import { Authenticator } from '../../src/auth/authenticator.js';
import { formatErrors, parseConfig } from '../../src/config/load.js';
import type { Config, ExtensionConfig } from '../../src/config/types.js';
import { Directory } from '../../src/directory/directory.js';
import type { Binding } from '../../src/location/binding.js';
import { LocationService } from '../../src/location/location.js';
import type { ConfirmedDialog } from '../../src/calls/active-call.js';
import type { ProxyEvents } from '../../src/proxy/events.js';
import { Identity } from '../../src/proxy/identity.js';
import { nextHop, ownerRoute } from '../../src/proxy/next-hop.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { extensionTargets } from '../../src/proxy/target-set.js';
import { Registrar } from '../../src/registrar/registrar.js';
import { parseMessage } from '../../src/sip/parser.js';
import { LocalIds } from '../../src/transaction/ids.js';
import { TransactionLayer } from '../../src/transaction/layer.js';
import type { Endpoint } from '../../src/transport/endpoint.js';
import { FakeTimers, LOCAL_UDP, incoming, sip, type Sent } from '../support/sip.js';

/** This instance listens on 10.0.0.1:5060 (LOCAL_UDP); the other instance is at PEER. */
const PEER: Endpoint = { transport: 'udp', address: '10.0.0.9', port: 5060 };
const OUR_ROUTE = 'Route: <sip:10.0.0.1:5060;transport=udp;lr>';
const PEER_ROUTE = 'Route: <sip:10.0.0.9:5060;transport=udp;lr>';
const TRUNK: Endpoint = { transport: 'udp', address: '192.0.2.50', port: 5060 };
const STRANGER: Endpoint = { transport: 'udp', address: '192.0.2.77', port: 5060 };

function config(): Config {
  const text = [
    'domain: pbx.example',
    'listen: [udp://10.0.0.1:5060]',
    'trunks: [{name: carrier, address: 192.0.2.50}]',
    'extensions:',
    '  - number: "200"',
    '    name: Sales',
    '    devices: [{username: anna, password: secret-a}, {username: bob, password: secret-b}]',
  ].join('\n');
  const r = parseConfig(text, 'test.yaml', {});
  if (!r.config) throw new Error(formatErrors('test.yaml', r.errors));
  return r.config;
}

function binding(username: string, contact: string, dest: Endpoint, owner?: { owner: string; path: Endpoint }): Binding {
  const b: Binding = { username, extension: '200', contact, expiresAt: Date.now() + 3600_000, callId: `reg-${username}`, cseq: 1, source: dest, dest, userAgent: 'test' };
  return owner ? { ...b, ...owner } : b;
}

const ANNA = binding('anna', 'sip:anna@192.0.2.21:5062', { transport: 'udp', address: '192.0.2.21', port: 5062 });
/** bob as the owner sees him: registered here from behind NAT. */
const BOB_HERE = binding('bob', 'sip:bob@10.1.1.2:5062', { transport: 'udp', address: '198.51.100.9', port: 61000 });
/** bob as every other instance sees him: owned by instance "a" at PEER. */
const BOB_THERE = { ...BOB_HERE, owner: 'a', path: PEER };

function rig(bindings: Binding[], peers: (s: Endpoint) => boolean = (s) => s.address === PEER.address) {
  const cfg = config();
  const timers = new FakeTimers();
  const sent: Sent[] = [];
  const send = (dest: Endpoint, data: Buffer) => sent.push({ at: timers.now, dest, data: data.toString() });
  const layer = new TransactionLayer(send, timers.queue);
  const ids = new LocalIds();
  const identity = new Identity();
  identity.refresh(cfg.domain, undefined, [{ host: '10.0.0.1', port: 5060 }], [LOCAL_UDP]);
  const directory = new Directory(cfg);
  const location = new LocationService();
  for (const b of bindings) (b.owner === undefined ? location.restore(b) : location.mirror(b));
  const auth = new Authenticator(directory, () => ({ realm: cfg.domain, algorithms: ['MD5'], isOurHost: (h) => identity.isOurHost(h) }));
  const registrar = new Registrar(location, auth, () => ({ domain: cfg.domain, ...cfg.registrar }));
  const heard = { confirmed: [] as ConfirmedDialog[], outcomes: [] as string[], inDialog: [] as string[] };
  const events: ProxyEvents = {
    dialogConfirmed: (c) => void heard.confirmed.push(c),
    inDialogRequest: (_c, _f, _t, method) => void heard.inDialog.push(method),
    callOutcome: (o) => void heard.outcomes.push(o.outcome),
  };
  const proxy = new Proxy({
    config: () => cfg,
    layer,
    ids,
    identity,
    localFor: () => LOCAL_UDP,
    send,
    directory,
    location,
    auth,
    registrar,
    calls: { activeFor: () => 0 },
    events,
    peers: { isPeer: peers },
  });
  layer.setUser(proxy);
  return {
    sent,
    heard,
    location,
    /** A request from source, as the dispatcher hands it up. */
    receive(text: string, source: Endpoint) {
      layer.receiveRequest(incoming(sip(text), source));
    },
    /** A response to a branch we sent (its top Via is ours). */
    respond(to: Sent, status: number, reason: string, toTag = 'callee1', extra: string[] = []) {
      const lines = to.data.split('\r\n');
      const vias = lines.filter((l) => /^Via:/i.test(l));
      const pick = (name: string) => lines.find((l) => l.toLowerCase().startsWith(`${name}:`))!;
      const to_ = status > 100 ? `${pick('to')};tag=${toTag}` : pick('to');
      const res = [`SIP/2.0 ${status} ${reason}`, ...vias, pick('from'), to_, pick('call-id'), pick('cseq'), ...extra, 'Contact: <sip:bob@10.1.1.2:5062>', 'Content-Length: 0', '', ''].join('\r\n');
      const r = parseMessage(Buffer.from(res));
      if (!r.ok) throw new Error(r.error);
      layer.receiveResponse(r.msg);
    },
    to(dest: Endpoint, method: string): Sent[] {
      return sent.filter((s) => s.dest.address === dest.address && s.dest.port === dest.port && s.data.startsWith(`${method} `));
    },
    responses(dest: Endpoint): string[] {
      return sent.filter((s) => s.dest.address === dest.address && s.data.startsWith('SIP/2.0 ')).map((s) => s.data.slice(8, 11));
    },
  };
}

const headerLines = (data: string, name: string) => data.split('\r\n').filter((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));

const TRUNK_INVITE = `INVITE sip:200@pbx.example SIP/2.0
Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bK-trunk1
Max-Forwards: 70
From: <sip:+4930123@192.0.2.50>;tag=trunk1
To: <sip:200@pbx.example>
Call-ID: cluster-1
CSeq: 1 INVITE
Contact: <sip:+4930123@192.0.2.50>
Content-Length: 0

`;

const TRUNK_CANCEL = TRUNK_INVITE.replace('INVITE sip:', 'CANCEL sip:').replace('1 INVITE', '1 CANCEL');

/** The branch another instance sends us for bob (its Via, our Route, no credentials). */
function relayInvite(uri = BOB_HERE.contact, route = OUR_ROUTE): string {
  return `INVITE ${uri} SIP/2.0
Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-sbpeer.1;rport
Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bK-trunk1
Max-Forwards: 69
${route}
Record-Route: <sip:10.0.0.9:5060;transport=udp;lr>
From: <sip:+4930123@192.0.2.50>;tag=trunk1
To: <sip:200@pbx.example>
Call-ID: cluster-1
CSeq: 1 INVITE
Contact: <sip:+4930123@192.0.2.50>
Content-Length: 0

`;
}

t.test('extensionTargets: a binding another instance owns goes to its path with a Route naming it', async (t) => {
  const ext: ExtensionConfig = config().extensions[0]!;
  const table: Record<string, Binding[]> = { anna: [ANNA], bob: [BOB_THERE] };
  const targets = extensionTargets(ext, undefined, { lookup: (u) => table[u] ?? [] });
  t.strictSame(targets, [
    { uri: 'sip:anna@192.0.2.21:5062', dest: ANNA.dest, device: 'anna', extension: '200' },
    { uri: 'sip:bob@10.1.1.2:5062', dest: PEER, device: 'bob', extension: '200', route: `${PEER_ROUTE}\r\n` },
  ], 'our own binding as before (no route member at all); the other at its owner, never at the owner\'s view of the device');
  t.equal(ownerRoute({ transport: 'udp', address: '2001:db8::9', port: 5070 }), 'Route: <sip:[2001:db8::9]:5070;transport=udp;lr>\r\n', 'IPv6 in brackets');
});

t.test('nextHop: a contact another instance owns resolves to that instance', async (t) => {
  const table = new Map([[ANNA.contact, ANNA], [BOB_THERE.contact, BOB_THERE]]);
  const location = { byContactUri: (u: string) => table.get(u) };
  t.strictSame(nextHop(ANNA.contact, location), ANNA.dest);
  t.strictSame(nextHop(BOB_THERE.contact, location), PEER, 'not the owner\'s view of bob (198.51.100.9:61000)');
});

t.test('the forking instance: the remote branch goes to the owner with its Route, and so does its CANCEL', async (t) => {
  const r = rig([ANNA, BOB_THERE]);
  r.receive(TRUNK_INVITE, TRUNK);
  const toAnna = r.to(ANNA.dest, 'INVITE');
  const toPeer = r.to(PEER, 'INVITE');
  t.equal(toAnna.length, 1, 'anna rung directly');
  t.equal(toPeer.length, 1, 'bob rung through his owner');
  t.equal(r.to(BOB_HERE.dest, 'INVITE').length, 0, 'nothing to the owner\'s view of bob');
  t.strictSame(headerLines(toAnna[0]!.data, 'route'), [], 'no Route to a device of ours');
  const inv = toPeer[0]!.data;
  t.match(inv, /^INVITE sip:bob@10\.1\.1\.2:5062 SIP\/2\.0\r\n/, 'Request-URI: the contact (loose routing)');
  t.strictSame(headerLines(inv, 'route'), [PEER_ROUTE], 'one Route: the owner');
  t.strictSame(headerLines(inv, 'record-route'), ['Record-Route: <sip:10.0.0.1:5060;transport=udp;lr>'], 'record-routed by us as any fork');

  r.respond(toPeer[0]!, 180, 'Ringing');
  r.receive(TRUNK_CANCEL, TRUNK);
  const cancels = r.to(PEER, 'CANCEL');
  t.equal(cancels.length, 1, 'the ringing remote branch is CANCELled at the owner');
  t.match(cancels[0]!.data, /^CANCEL sip:bob@10\.1\.1\.2:5062 SIP\/2\.0\r\n/);
  t.strictSame(headerLines(cancels[0]!.data, 'route'), [PEER_ROUTE], 'the CANCEL carries the INVITE\'s Route (§9.1)');
  r.respond(toPeer[0]!, 487, 'Request Terminated');
  const acks = r.to(PEER, 'ACK');
  t.equal(acks.length, 1, 'the 487 is ACKed hop by hop');
  t.strictSame(headerLines(acks[0]!.data, 'route'), [PEER_ROUTE], 'the ACK carries the INVITE\'s Route (§17.1.1.3)');
});

t.test('the forking instance: the callee end of a call answered through the owner is reached through it', async (t) => {
  const r = rig([BOB_THERE]);
  r.receive(TRUNK_INVITE, TRUNK);
  const out = r.to(PEER, 'INVITE')[0]!;
  // The owner record-routed above us: the 2xx lists it first (nearest the callee).
  r.respond(out, 200, 'OK', 'callee1', ['Record-Route: <sip:10.0.0.9:5060;transport=udp;lr>', 'Record-Route: <sip:10.0.0.1:5060;transport=udp;lr>']);
  t.equal(r.heard.confirmed.length, 1, 'the forking instance tracks the call');
  const callee = r.heard.confirmed[0]!.ends!.callee;
  t.equal(callee.uri, 'sip:bob@10.1.1.2:5062', 'probes and BYE name bob\'s contact');
  t.strictSame(callee.dest, PEER, 'and go to the owner');
  t.equal(callee.routes, 'Route: <sip:10.0.0.9:5060;transport=udp;lr>\r\n', 'through its Record-Route');
  t.strictSame(r.heard.confirmed[0]!.ends!.caller.dest, TRUNK, 'the caller end as before');
});

t.test('the owner: a peer\'s branch with our Route is relayed to the device\'s flow, record-routed, unchallenged, untracked', async (t) => {
  const r = rig([ANNA, BOB_HERE]);
  r.receive(relayInvite(), PEER);
  t.strictSame(r.responses(PEER), ['100'], 'only a 100 Trying: no 407');
  const out = r.to(BOB_HERE.dest, 'INVITE');
  t.equal(out.length, 1, 'sent where bob registered from (his NAT binding)');
  const inv = out[0]!.data;
  t.match(inv, /^INVITE sip:bob@10\.1\.1\.2:5062 SIP\/2\.0\r\n/);
  t.strictSame(headerLines(inv, 'route'), [], 'our Route popped');
  t.strictSame(
    headerLines(inv, 'record-route'),
    ['Record-Route: <sip:10.0.0.1:5060;transport=udp;lr>', 'Record-Route: <sip:10.0.0.9:5060;transport=udp;lr>'],
    'our Record-Route above the forking instance\'s',
  );
  t.match(inv, /\r\nMax-Forwards: 68\r\n/);
  t.equal(r.to(ANNA.dest, 'INVITE').length, 0, 'only the contact named, not the extension');

  r.respond(out[0]!, 200, 'OK');
  t.strictSame(r.responses(PEER), ['100', '200'], 'the 2xx goes back to the peer');
  t.equal(r.heard.confirmed.length, 0, 'no confirmed dialog announced: the forking instance tracks the call');
  t.strictSame(r.heard.outcomes, [], 'no call outcome either');
});

t.test('the owner: a peer\'s CANCEL stops the relayed branch', async (t) => {
  const r = rig([BOB_HERE]);
  r.receive(relayInvite(), PEER);
  const out = r.to(BOB_HERE.dest, 'INVITE')[0]!;
  r.respond(out, 180, 'Ringing');
  r.receive(
    `CANCEL ${BOB_HERE.contact} SIP/2.0
Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-sbpeer.1;rport
Max-Forwards: 70
${OUR_ROUTE}
From: <sip:+4930123@192.0.2.50>;tag=trunk1
To: <sip:200@pbx.example>
Call-ID: cluster-1
CSeq: 1 CANCEL
Content-Length: 0

`,
    PEER,
  );
  t.equal(r.to(BOB_HERE.dest, 'CANCEL').length, 1, 'CANCEL on to bob');
});

t.test('a Route naming us from anyone but a peer relays nothing (not an open relay)', async (t) => {
  const r = rig([BOB_HERE]);
  r.receive(relayInvite(), STRANGER);
  t.strictSame(r.responses(STRANGER), ['407'], 'challenged like any new call from an unknown source');
  t.equal(r.to(BOB_HERE.dest, 'INVITE').length, 0, 'bob not rung');
  const none = rig([BOB_HERE], () => false);
  none.receive(relayInvite(), PEER);
  t.strictSame(none.responses(PEER), ['407'], 'without a cluster nobody is a peer');
  t.equal(none.to(BOB_HERE.dest, 'INVITE').length, 0);
});

t.test('a relay to a contact not registered here gets 480', async (t) => {
  const r = rig([BOB_HERE, binding('anna', 'sip:anna@192.0.2.21:5062', ANNA.dest, { owner: 'c', path: { transport: 'udp', address: '10.0.0.8', port: 5060 } })]);
  r.receive(relayInvite('sip:zed@192.0.2.99:5062'), PEER);
  t.strictSame(r.responses(PEER), ['480'], 'unknown contact');
  t.equal(r.sent.length, 1, 'nothing else sent');
  r.receive(relayInvite('sip:anna@192.0.2.21:5062').replace('z9hG4bK-sbpeer.1', 'z9hG4bK-sbpeer.2'), PEER);
  t.strictSame(r.responses(PEER), ['480', '480'], 'a contact a third instance owns is not relayed on');
  t.equal(r.sent.length, 2);
  const expired = rig([{ ...BOB_HERE, expiresAt: Date.now() - 1 }]);
  expired.location.mirror({ ...BOB_HERE, expiresAt: Date.now() - 1 });
  expired.receive(relayInvite(), PEER);
  t.strictSame(expired.responses(PEER), ['480'], 'an expired binding');
});

t.test('a peer\'s request without our Route is a new call like any other', async (t) => {
  const r = rig([BOB_HERE]);
  r.receive(relayInvite(BOB_HERE.contact, 'Route: <sip:192.0.2.99;lr>'), PEER);
  t.strictSame(r.responses(PEER), ['407']);
});

t.test('in dialog: a Request-URI another instance owns, with no route beyond us, goes through the owner', async (t) => {
  const r = rig([BOB_THERE]);
  const bye = `BYE ${BOB_THERE.contact} SIP/2.0
Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bK-trunkbye
Max-Forwards: 70
${OUR_ROUTE}
From: <sip:+4930123@192.0.2.50>;tag=trunk1
To: <sip:200@pbx.example>;tag=callee1
Call-ID: cluster-1
CSeq: 2 BYE
Content-Length: 0

`;
  r.receive(bye, TRUNK);
  const out = r.to(PEER, 'BYE');
  t.equal(out.length, 1, 'to the owner');
  t.strictSame(headerLines(out[0]!.data, 'route'), [PEER_ROUTE], 'with the Route that makes the owner relay it');
  t.strictSame(r.heard.inDialog, ['BYE']);
  r.receive(bye.replace('BYE sip', 'ACK sip').replace('2 BYE', '1 ACK').replace('trunkbye', 'trunkack'), TRUNK);
  const acks = r.to(PEER, 'ACK');
  t.equal(acks.length, 1, 'an ACK for a 2xx too (stateless)');
  t.strictSame(headerLines(acks[0]!.data, 'route'), [PEER_ROUTE]);
});
