/**
 * DialogKeepalive through its seams: a real call tracker and transaction layer, a fake clock and
 * a recording send. Probes, their CSeq, the failure count, the BYEs that end a call, session
 * timers and the operator's end.
 */
import t from 'tap';
import type { ConfirmedDialog, DialogEnd } from '../../src/calls/active-call.js';
import { DialogKeepalive } from '../../src/calls/keepalive.js';
import { CallTracker } from '../../src/calls/tracker.js';
import { parseMessage } from '../../src/sip/parser.js';
import { LocalIds } from '../../src/transaction/ids.js';
import { TransactionLayer, type TransactionUser } from '../../src/transaction/layer.js';
import { FakeTimers, type Sent } from '../support/sip.js';

const CALLER: DialogEnd = {
  uri: 'sip:100@127.0.0.21:5070',
  dest: { transport: 'udp', address: '127.0.0.21', port: 5070 },
  from: '<sip:200@pbx.example>;tag=callee-tag',
  to: '<sip:100@pbx.example>;tag=caller-tag',
  routes: '',
  cseq: -1,
};
const CALLEE: DialogEnd = {
  uri: 'sip:anna@10.0.0.5:5062',
  dest: { transport: 'udp', address: '127.0.0.11', port: 6000 },
  from: '<sip:100@pbx.example>;tag=caller-tag',
  to: '<sip:200@pbx.example>;tag=callee-tag',
  routes: 'Route: <sip:127.0.0.99;lr>\r\n',
  cseq: 7,
};

function rig(settings = { interval: 2, failures: 2 }, sessionExpires = 0) {
  const timers = new FakeTimers();
  const sent: Sent[] = [];
  const layer = new TransactionLayer((dest, data) => sent.push({ at: timers.now, dest, data: data.toString() }), timers.queue);
  const stray: number[] = [];
  const user: TransactionUser = { request: () => {}, ack: () => {}, cancel: () => {}, strayInvite2xx: (res) => stray.push(res.status) };
  layer.setUser(user);
  const calls = new CallTracker(() => timers.now);
  const ended: string[] = [];
  calls.events.add((e) => {
    if (e.type === 'ended') ended.push(e.why);
  });
  const ka = new DialogKeepalive({
    layer,
    ids: new LocalIds(),
    localFor: (dest) => ({ transport: dest.transport, host: '127.0.0.1', port: 5060 }),
    calls,
    settings: () => settings,
    now: () => timers.now,
  });
  const d: ConfirmedDialog = {
    callId: 'call-1',
    fromTag: 'caller-tag',
    toTag: 'callee-tag',
    parties: [{ extension: '200', device: 'anna', direction: 'inbound' }],
    ends: { caller: CALLER, callee: CALLEE },
    sessionExpires,
  };
  const call = calls.confirmed(d, 3600)!;
  /** Requests sent to an address since index `from`. */
  const to = (address: string, from = 0) => sent.slice(from).filter((s) => s.dest.address === address && !s.data.startsWith('SIP/2.0'));
  /** Answer the last request sent to an address with a status. */
  const answer = (address: string, status: number) => {
    const req = to(address).at(-1)!.data;
    const via = /^Via: (.*)$/m.exec(req)![1]!;
    const cseq = /^CSeq: (.*)$/m.exec(req)![1]!;
    const res = `SIP/2.0 ${status} X\r\nVia: ${via}\r\nFrom: a\r\nTo: b\r\nCall-ID: call-1\r\nCSeq: ${cseq}\r\nContent-Length: 0\r\n\r\n`;
    const r = parseMessage(Buffer.from(res));
    if (!r.ok) throw new Error(r.error);
    layer.receiveResponse(r.msg);
  };
  return { timers, sent, layer, calls, call, ka, ended, to, answer };
}

const header = (msg: string, name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(msg)?.[1];

t.test('every interval an in-dialog OPTIONS to each end, written as if from the other end', async (t) => {
  const r = rig();
  r.timers.advance(1999);
  t.equal(r.sent.length, 0, 'nothing before the first interval');
  r.timers.advance(1);
  const [toCallee] = r.to('127.0.0.11');
  const [toCaller] = r.to('127.0.0.21');
  t.match(toCallee!.data, /^OPTIONS sip:anna@10\.0\.0\.5:5062 SIP\/2\.0\r\n/, 'to the callee at its Contact');
  t.equal(header(toCallee!.data, 'From'), CALLEE.from);
  t.equal(header(toCallee!.data, 'To'), CALLEE.to);
  t.equal(header(toCallee!.data, 'Call-ID'), 'call-1');
  t.equal(header(toCallee!.data, 'CSeq'), '7 OPTIONS', 'the last CSeq towards the callee, not a higher one (§12.2.2)');
  t.equal(header(toCallee!.data, 'Route'), '<sip:127.0.0.99;lr>', 'along the route set beyond us');
  t.match(header(toCallee!.data, 'Via'), /^SIP\/2\.0\/UDP 127\.0\.0\.1:5060;branch=z9hG4bK/);
  t.match(toCaller!.data, /^OPTIONS sip:100@127\.0\.0\.21:5070 SIP\/2\.0\r\n/, 'to the caller at its Contact');
  t.equal(header(toCaller!.data, 'CSeq'), '0 OPTIONS', 'the callee sent nothing yet: 0, below any CSeq it will choose');
  t.equal(header(toCaller!.data, 'From'), CALLER.from);
  t.equal(r.ka.stats.sent, 2);
});

t.test('phones that answer 200, 405 or 501 stay up for many intervals; CSeq follows the real requests', async (t) => {
  const r = rig();
  for (let i = 0; i < 5; i++) {
    r.timers.advance(2000);
    r.answer('127.0.0.11', i % 2 ? 405 : 200);
    r.answer('127.0.0.21', 501);
  }
  t.same(r.ended, [], 'still up');
  t.equal(r.calls.size, 1);
  t.equal(r.ka.stats.failed, 0);
  t.equal(r.ka.aliveAt(r.call)?.callee, 10_000, 'the callee last proved alive at the last answer');
  r.ka.sawRequest(r.call, true, 'INVITE', 9, 0); // a re-INVITE from the caller
  r.ka.sawRequest(r.call, false, 'INFO', 3, 0); // an INFO from the callee
  r.ka.sawRequest(r.call, true, 'INFO', 8, 0); // lower than what was seen: no change
  const from = r.sent.length;
  r.timers.advance(2000);
  t.equal(header(r.to('127.0.0.11', from)[0]!.data, 'CSeq'), '9 OPTIONS');
  t.equal(header(r.to('127.0.0.21', from)[0]!.data, 'CSeq'), '3 OPTIONS');
});

t.test('an end that stops answering: after `failures` probes without answer the call ends with BYEs', async (t) => {
  const r = rig({ interval: 2, failures: 2 });
  r.timers.advance(2000); // probe 1
  r.answer('127.0.0.21', 200);
  r.timers.advance(2000); // probe 1 to the callee unanswered: failure 1; probe 2
  r.answer('127.0.0.21', 200);
  t.same(r.ended, []);
  const from = r.sent.length;
  r.timers.advance(2000); // failure 2: the call ends
  t.same(r.ended, ['keepalive']);
  t.equal(r.calls.activeFor('200'), 0, 'the extension is free');
  const byes = r.sent.slice(from).filter((s) => s.data.startsWith('BYE '));
  t.equal(byes.length, 2, 'a BYE to each end');
  const toCallee = byes.find((b) => b.dest.address === '127.0.0.11')!;
  t.equal(header(toCallee.data, 'CSeq'), '8 BYE', 'one above the last CSeq');
  t.equal(header(toCallee.data, 'Reason'), 'SIP;cause=408;text="Call liveness lost"');
  t.equal(header(byes.find((b) => b.dest.address === '127.0.0.21')!.data, 'CSeq'), '1 BYE');
  t.equal(r.ka.stats.failed, 2);
  const n = r.sent.length;
  r.timers.advance(60_000);
  t.equal(r.sent.filter((s, i) => i >= n && s.data.startsWith('OPTIONS')).length, 0, 'no more probes');
});

t.test('408 and 481 are failures; a success in between resets the count', async (t) => {
  const r = rig({ interval: 2, failures: 2 });
  r.timers.advance(2000);
  r.answer('127.0.0.11', 481);
  r.answer('127.0.0.21', 200);
  r.timers.advance(2000);
  r.answer('127.0.0.11', 200);
  r.answer('127.0.0.21', 200);
  r.timers.advance(2000);
  r.answer('127.0.0.11', 408);
  t.same(r.ended, [], 'one failure in a row only');
  r.answer('127.0.0.21', 200);
  r.timers.advance(2000);
  r.answer('127.0.0.11', 481);
  t.same(r.ended, ['keepalive'], 'the second failure in a row ends it at once');
});

t.test('a BYE passing ends the probes; keepalive 0 sends none', async (t) => {
  const r = rig();
  r.calls.end(r.call, 'bye');
  r.timers.advance(10_000);
  t.equal(r.sent.length, 0);
  const off = rig({ interval: 0, failures: 2 });
  off.timers.advance(100_000);
  t.equal(off.sent.length, 0, 'off');
  t.equal(off.calls.size, 1);
});

t.test('session timer: no refresh within Session-Expires ends the call; a re-INVITE or UPDATE refreshes it', async (t) => {
  const r = rig({ interval: 0, failures: 2 }, 90);
  r.timers.advance(60_000);
  r.ka.sawRequest(r.call, true, 'UPDATE', 8, 0);
  r.timers.advance(60_000);
  t.same(r.ended, [], 'refreshed at 60 s: good until 150 s');
  r.ka.sawRequest(r.call, false, 'INFO', 2, 0);
  r.timers.advance(30_000);
  t.same(r.ended, ['session-timer'], 'an INFO is no refresh');
  const byes = r.sent.filter((s) => s.data.startsWith('BYE '));
  t.equal(byes.length, 2);
  t.equal(header(byes[0]!.data, 'Reason'), 'SIP;cause=408;text="Session timer expired"');
  const s = rig({ interval: 0, failures: 2 }, 90);
  s.ka.sawRequest(s.call, false, 'INVITE', 1, 30);
  s.timers.advance(31_000);
  t.same(s.ended, ['session-timer'], 'a refresh with a new Session-Expires takes its interval');
});

t.test('the operator ends a call: BYEs with the reason, the tracker forgets it', async (t) => {
  const r = rig();
  r.ka.end(r.call, 'api');
  t.same(r.ended, ['api']);
  const byes = r.sent.filter((s) => s.data.startsWith('BYE '));
  t.same(byes.map((b) => b.dest.address).sort(), ['127.0.0.11', '127.0.0.21']);
  t.equal(header(byes[0]!.data, 'Reason'), 'SIP;cause=200;text="Call ended by the operator"');
});

t.test('a restored call is followed once track() is called; a call without ends is never probed', async (t) => {
  const r = rig();
  const calls2 = new CallTracker(() => r.timers.now);
  const ka2 = new DialogKeepalive({ layer: r.layer, ids: new LocalIds(), localFor: (dest) => ({ transport: dest.transport, host: '127.0.0.1', port: 5060 }), calls: calls2, settings: () => ({ interval: 2, failures: 1 }), now: () => r.timers.now });
  calls2.restore(r.call);
  const n = r.sent.length;
  ka2.track(r.call);
  ka2.track(r.call);
  r.timers.advance(2000);
  t.equal(r.sent.slice(n).filter((s) => s.data.startsWith('OPTIONS') && s.dest.address === '127.0.0.11').length, 2, 'probed once per tracker (the first rig and this one), not twice by this one');
  const bare = calls2.confirmed({ callId: 'c2', fromTag: 'a', toTag: 'b', parties: [], ends: null, sessionExpires: 0 }, 60)!;
  const m = r.sent.length;
  r.timers.advance(4000);
  t.notOk(r.sent.slice(m).some((s) => s.data.includes('Call-ID: c2')), 'no ends: no probe');
  ka2.end(bare, 'api');
  t.equal(calls2.byId(bare.id), undefined, 'ended all the same');
});

t.test('the wheel: a call that ends before its first probe leaves nothing behind; later calls wait a whole interval', async (t) => {
  const r = rig({ interval: 2, failures: 2 });
  r.timers.advance(500);
  const second = r.calls.confirmed({ callId: 'call-2', fromTag: 'x', toTag: 'y', parties: [], ends: { caller: CALLER, callee: CALLEE }, sessionExpires: 0 }, 3600)!;
  r.timers.advance(1000);
  r.calls.end(r.call, 'bye'); // the first call ends at 1.5 s, before its first probe
  r.timers.advance(500); // 2 s: the first call's slot comes up
  t.equal(r.sent.length, 0, 'an ended call is not probed');
  r.timers.advance(500); // 2.5 s: exactly one interval after the second call
  t.equal(r.sent.length, 0, 'the wheel turns on whole seconds: not yet');
  r.timers.advance(1000); // 3.5 s
  const first = r.to('127.0.0.11')[0]!;
  t.equal(first.at, 3000, 'the second call is probed on the first turn after its interval');
  t.match(first.data, /Call-ID: call-2/);
  r.calls.end(second, 'bye');
  r.timers.advance(5000);
  t.equal(r.timers.queue.pending, 0, 'no call left: the wheel stops, and so does every timer');
});
