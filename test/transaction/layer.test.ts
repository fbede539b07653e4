/**
 * The transaction layer's matching (RFC 3261 §17.1.3, §17.2.3, §9.2, RFC 6026) through its
 * seam: a recording TransactionUser, a fake send and a fake clock. Each test checks both what
 * the user hears and what goes on the wire.
 */
import t from 'tap';
import type { SipMessage } from '../../src/sip/message.js';
import type { ClientUser } from '../../src/transaction/client.js';
import { TransactionLayer, type TransactionUser } from '../../src/transaction/layer.js';
import type { IncomingRequest } from '../../src/transaction/request.js';
import type { ServerTransaction } from '../../src/transaction/server.js';
import type { Endpoint } from '../../src/transport/endpoint.js';
import { FakeTimers, incoming, sip, type Sent } from '../support/sip.js';

interface Heard {
  requests: IncomingRequest[];
  acks: IncomingRequest[];
  cancels: { inc: IncomingRequest; tx: ServerTransaction | undefined; invite: ServerTransaction | undefined }[];
  stray: { res: SipMessage; branch: string }[];
}

function setup(): { layer: TransactionLayer; timers: FakeTimers; sent: Sent[]; heard: Heard } {
  const timers = new FakeTimers();
  const sent: Sent[] = [];
  const layer = new TransactionLayer((dest, data) => sent.push({ at: timers.now, dest, data: data.toString() }), timers.queue);
  const heard: Heard = { requests: [], acks: [], cancels: [], stray: [] };
  const user: TransactionUser = {
    request: (inc) => heard.requests.push(inc),
    ack: (inc) => heard.acks.push(inc),
    // As the proxy does: a CANCEL gets its own transaction only when it found its INVITE.
    cancel: (inc, invite) => heard.cancels.push({ inc, tx: invite ? layer.createServer(inc) : undefined, invite }),
    strayInvite2xx: (res, branch) => heard.stray.push({ res, branch }),
  };
  layer.setUser(user);
  return { layer, timers, sent, heard };
}

interface ReqOpts {
  branch?: string | undefined;
  sentBy?: string;
  cseq?: number;
  fromTag?: string;
  callId?: string;
  toTag?: string;
}

/** A request as a caller sends it; branch undefined: no branch parameter at all (RFC 2543). */
function req(method: string, o: ReqOpts = {}): SipMessage {
  const branch = 'branch' in o ? o.branch : 'z9hG4bK-c1';
  const cseqMethod = method;
  return sip(
    `${method} sip:200@pbx.example SIP/2.0
Via: SIP/2.0/UDP ${o.sentBy ?? '192.0.2.10:5060'}${branch === undefined ? '' : `;branch=${branch}`}
Max-Forwards: 70
From: <sip:100@pbx.example>;tag=${o.fromTag ?? 'f1'}
To: <sip:200@pbx.example>${o.toTag ? `;tag=${o.toTag}` : ''}
Call-ID: ${o.callId ?? 'call-1'}
CSeq: ${o.cseq ?? 1} ${cseqMethod}
Content-Length: 0

`,
  );
}

function res(status: number, branch: string, method = 'INVITE'): SipMessage {
  return sip(
    `SIP/2.0 ${status} Whatever
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=${branch};rport
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-c1
From: <sip:100@pbx.example>;tag=f1
To: <sip:200@pbx.example>;tag=t9
Call-ID: call-1
CSeq: 1 ${method}
Content-Length: 0

`,
  );
}

const buf = (s: string): Buffer => Buffer.from(s);

t.test('a request retransmission is absorbed by its server transaction: the last response again, nothing for the user', async (t) => {
  const { layer, sent, heard } = setup();
  layer.receiveRequest(incoming(req('INVITE')));
  t.equal(heard.requests.length, 1, 'a new INVITE goes to the user');
  const inc = heard.requests[0]!;
  t.not(inc.key, '', 'the layer filled in the key');
  const tx = layer.createServer(inc);
  t.equal(layer.findServer(inc.key), tx);

  layer.receiveRequest(incoming(req('INVITE')));
  t.equal(heard.requests.length, 1, 'retransmission before any response: absorbed');
  t.equal(sent.length, 0, 'and nothing to re-send yet');

  tx.respond(180, buf('180 ringing'));
  layer.receiveRequest(incoming(req('INVITE')));
  layer.receiveRequest(incoming(req('INVITE')));
  t.equal(heard.requests.length, 1, 'user hears nothing of the retransmissions');
  t.same(
    sent.map((s) => s.data),
    ['180 ringing', '180 ringing', '180 ringing'],
    'each retransmission re-sends the last response',
  );
  t.same(sent[1]!.dest, { transport: 'udp', address: '192.0.2.10', port: 5060 }, 'to the reply target');

  // A non-INVITE likewise.
  layer.receiveRequest(incoming(req('OPTIONS', { branch: 'z9hG4bK-o1' })));
  t.equal(heard.requests.length, 2);
  const otx = layer.createServer(heard.requests[1]!);
  otx.respond(200, buf('200 options'));
  layer.receiveRequest(incoming(req('OPTIONS', { branch: 'z9hG4bK-o1' })));
  t.equal(heard.requests.length, 2, 'OPTIONS retransmission absorbed');
  t.equal(sent.at(-1)!.data, '200 options');

  // Same branch from another sent-by, or another method, is another transaction (§17.2.3).
  layer.receiveRequest(incoming(req('INVITE', { sentBy: '192.0.2.11:5060' })));
  t.equal(heard.requests.length, 3, 'same branch, other sent-by: a new request');
  layer.receiveRequest(incoming(req('BYE')));
  t.equal(heard.requests.length, 4, 'same branch, other method: a new request');
});

t.test('the layer creates no server transaction by itself', async (t) => {
  const { layer, heard } = setup();
  layer.receiveRequest(incoming(req('INVITE')));
  layer.receiveRequest(incoming(req('INVITE')));
  t.equal(heard.requests.length, 2, 'without createServer the user decides each time (stateless answer)');
  t.equal(layer.inFlight, 0);
});

t.test('an ACK for a non-2xx final response is consumed: Timer G stops; an ACK without a transaction goes to user.ack', async (t) => {
  const { layer, timers, sent, heard } = setup();
  layer.receiveRequest(incoming(req('INVITE')));
  const tx = layer.createServer(heard.requests[0]!);
  tx.respond(486, buf('486 busy'));
  timers.advance(500);
  t.equal(sent.length, 2, 'Timer G re-sent the 486 after T1');
  layer.receiveRequest(incoming(req('ACK')));
  t.equal(heard.acks.length, 0, 'the ACK is absorbed by the transaction');
  t.equal(heard.requests.length, 1);
  t.equal(tx.state, 'confirmed');
  timers.advance(30_000);
  t.equal(sent.length, 2, 'no Timer G retransmission after the ACK');
  t.equal(layer.findServer(heard.requests[0]!.key), undefined, 'Timer I ended it');

  // The ACK for a 2xx is a transaction of its own (new branch, §13.2.2.4).
  layer.receiveRequest(incoming(req('ACK', { branch: 'z9hG4bK-ack2xx', toTag: 't9' })));
  t.equal(heard.acks.length, 1, 'an ACK that matches nothing goes to user.ack');
  t.equal(heard.acks[0]!.req.method, 'ACK');
  t.equal(heard.requests.length, 1, 'and not to user.request');

  // An ACK with the INVITE's branch after a 2xx: the transaction is Accepted, the ACK is still
  // given to the transaction (which ignores it); the user hears nothing.
  layer.receiveRequest(incoming(req('INVITE', { branch: 'z9hG4bK-c2' })));
  const tx2 = layer.createServer(heard.requests[1]!);
  tx2.respond(200, buf('200 ok'));
  layer.receiveRequest(incoming(req('ACK', { branch: 'z9hG4bK-c2' })));
  t.equal(tx2.state, 'accepted');
  t.equal(heard.acks.length, 1);
});

t.test('a CANCEL is paired with its INVITE (same branch and sent-by); the user gives it a transaction', async (t) => {
  const { layer, sent, heard } = setup();
  layer.receiveRequest(incoming(req('INVITE')));
  const invite = layer.createServer(heard.requests[0]!);
  invite.respond(180, buf('180'));

  layer.receiveRequest(incoming(req('CANCEL')));
  t.equal(heard.cancels.length, 1);
  const c = heard.cancels[0]!;
  t.equal(c.invite, invite, 'paired with its INVITE transaction');
  t.not(c.tx, invite, 'a transaction of its own');
  t.equal(c.tx!.request?.method, 'CANCEL');
  t.equal(c.tx!.isInvite, false);
  t.equal(layer.findServer(c.inc.key), c.tx, 'the layer keeps it');
  t.equal(heard.requests.length, 1, 'not a new request for the user');
  t.equal(sent.length, 1, 'the layer answers nothing itself');

  c.tx!.respond(200, buf('200 cancel'));
  layer.receiveRequest(incoming(req('CANCEL')));
  t.equal(heard.cancels.length, 1, 'a CANCEL retransmission is absorbed');
  t.equal(sent.at(-1)!.data, '200 cancel', 'with the CANCEL\'s own 200 re-sent');

  layer.receiveRequest(incoming(req('CANCEL', { branch: 'z9hG4bK-other' })));
  t.equal(heard.cancels.length, 2);
  t.equal(heard.cancels[1]!.invite, undefined, 'another branch: no INVITE');
  t.equal(layer.inFlight, 2, 'the layer created no transaction for it (the user answers statelessly)');

  layer.receiveRequest(incoming(req('CANCEL', { sentBy: '192.0.2.10:5070' })));
  t.equal(heard.cancels[2]!.invite, undefined, 'same branch, other sent-by: no INVITE');

  invite.respond(487, buf('487'));
  invite.ack();
  invite.terminate();
  layer.receiveRequest(incoming(req('CANCEL', { branch: 'z9hG4bK-c1', sentBy: '192.0.2.10:5060', cseq: 1, callId: 'call-1', fromTag: 'f1' })));
  t.equal(heard.cancels.length, 3, 'the first CANCEL\'s transaction still absorbs it');
});

t.test('a CANCEL after its INVITE transaction ended is paired with undefined', async (t) => {
  const { layer, heard } = setup();
  layer.receiveRequest(incoming(req('INVITE', { branch: 'z9hG4bK-gone' })));
  const invite = layer.createServer(heard.requests[0]!);
  invite.terminate();
  layer.receiveRequest(incoming(req('CANCEL', { branch: 'z9hG4bK-gone' })));
  t.equal(heard.cancels.length, 1);
  t.equal(heard.cancels[0]!.invite, undefined);
});

t.test('RFC 2543 requests (no magic cookie) match by Call-ID, CSeq, From tag and Via', async (t) => {
  const { layer, sent, heard } = setup();
  const old = (method: string, o: ReqOpts = {}): IncomingRequest => incoming(req(method, { branch: undefined, ...o }));
  layer.receiveRequest(old('INVITE'));
  t.equal(heard.requests.length, 1);
  t.match(heard.requests[0]!.key, /^2543\n/, 'the RFC 2543 key');
  const tx = layer.createServer(heard.requests[0]!);
  tx.respond(180, buf('180'));

  layer.receiveRequest(old('INVITE'));
  t.equal(heard.requests.length, 1, 'same Call-ID, CSeq, From tag: a retransmission');
  t.equal(sent.length, 2, 're-sent the 180');

  layer.receiveRequest(old('INVITE', { fromTag: 'f2' }));
  t.equal(heard.requests.length, 2, 'another From tag: a new request');
  layer.receiveRequest(old('INVITE', { cseq: 2 }));
  t.equal(heard.requests.length, 3, 'another CSeq: a new request');
  layer.receiveRequest(old('INVITE', { callId: 'call-2' }));
  t.equal(heard.requests.length, 4, 'another Call-ID: a new request');
  layer.receiveRequest(incoming(req('INVITE', { branch: 'not-a-cookie' })));
  t.equal(heard.requests.length, 5, 'a branch without the cookie that differs: a new request');

  layer.receiveRequest(old('CANCEL'));
  t.equal(heard.cancels[0]!.invite, tx, 'an RFC 2543 CANCEL finds its INVITE');

  tx.respond(404, buf('404'));
  const before = sent.length;
  layer.receiveRequest(old('ACK', { toTag: 't9' }));
  t.equal(heard.acks.length, 0, 'the ACK for the 404 is consumed');
  t.equal(tx.state, 'confirmed');
  t.equal(sent.length, before);

  // A bare "z9hG4bK" is not an RFC 3261 branch (nothing after the cookie).
  layer.receiveRequest(incoming(req('OPTIONS', { branch: 'z9hG4bK' })));
  t.match(heard.requests.at(-1)!.key, /^2543\n/, 'the cookie alone falls back to RFC 2543 matching');
});

function clientUser(): ClientUser & { got: number[]; failed: number[] } {
  const got: number[] = [];
  const failed: number[] = [];
  return { got, failed, onResponse: (r) => got.push(r.status), onFailure: (s) => failed.push(s) };
}

const PHONE: Endpoint = { transport: 'udp', address: '192.0.2.20', port: 5062 };

t.test('a response goes to its client transaction by branch and CSeq method', async (t) => {
  const { layer, heard } = setup();
  const inv = clientUser();
  const can = clientUser();
  layer.sendRequest('z9hG4bK-b1', 'INVITE', PHONE, buf('INVITE'), inv, () => buf('ACK'));
  layer.receiveResponse(res(180, 'z9hG4bK-b1'));
  t.same(inv.got, [180], 'the INVITE transaction hears its 180');

  layer.receiveResponse(res(200, 'z9hG4bK-b1', 'CANCEL'));
  t.same(inv.got, [180], 'a CANCEL response does not reach the INVITE transaction');
  t.same(heard.stray, [], 'nor the user');

  layer.sendRequest('z9hG4bK-b1', 'CANCEL', PHONE, buf('CANCEL'), can);
  layer.receiveResponse(res(200, 'z9hG4bK-b1', 'CANCEL'));
  t.same(can.got, [200], 'the CANCEL transaction (same branch) hears its 200');
  layer.receiveResponse(res(487, 'z9hG4bK-b1'));
  t.same(inv.got, [180, 487], 'the INVITE transaction hears its 487');
  t.same(can.got, [200]);

  layer.receiveResponse(res(180, 'z9hG4bK-b2'));
  t.same(inv.got, [180, 487], 'another branch: not ours');
  layer.receiveResponse(sip('SIP/2.0 180 Ringing\nFrom: <sip:a@b>;tag=1\nTo: <sip:b@b>\nCall-ID: x\nCSeq: 1 INVITE\nContent-Length: 0\n\n'));
  layer.receiveResponse(sip('SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-b1\nCall-ID: x\nCSeq: nonsense\nContent-Length: 0\n\n'));
  t.same(inv.got, [180, 487], 'no Via or no CSeq: dropped');
  t.same(heard.stray, []);
});

t.test('a 2xx to INVITE without a transaction goes to user.strayInvite2xx; other responses without one are dropped', async (t) => {
  const { layer, sent, heard } = setup();
  const r = res(200, 'z9hG4bK-late');
  layer.receiveResponse(r);
  t.equal(heard.stray.length, 1);
  t.equal(heard.stray[0]!.res, r);
  t.equal(heard.stray[0]!.branch, 'z9hG4bK-late', 'with the branch it named');

  layer.receiveResponse(res(486, 'z9hG4bK-late'));
  layer.receiveResponse(res(180, 'z9hG4bK-late'));
  layer.receiveResponse(res(200, 'z9hG4bK-late', 'BYE'));
  layer.receiveResponse(res(299, 'z9hG4bK-late', 'OPTIONS'));
  t.equal(heard.stray.length, 1, '4xx, 1xx and non-INVITE 2xx without a transaction: dropped');
  t.equal(sent.length, 0);
  t.same(heard.requests, []);
});
