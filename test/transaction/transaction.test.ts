/**
 * Transactions (RFC 3261 §17, RFC 6026) with a fake send. State transitions and the long
 * timers (B, F, H, J, L, M: 32 s) run on a hand-advanced fake queue; the real TimerQueue is
 * tested on its own with short real waits, and drives Timer A over its first 1.6 s.
 */
import t from 'tap';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseMessage } from '../../src/sip/parser.js';
import type { SipMessage } from '../../src/sip/message.js';
import { parseVia } from '../../src/sip/headers.js';
import { ClientTransaction, type ClientUser } from '../../src/transaction/client.js';
import { ServerTransaction } from '../../src/transaction/server.js';
import type { TxEnv } from '../../src/transaction/env.js';
import { TransactionLayer, clientKey, serverKey } from '../../src/transaction/layer.js';
import { TICK, TimerQueue, type Timer } from '../../src/transaction/timer-queue.js';
import { FakeTimers } from '../support/sip.js';
import { T1, T2, T4, TIMER_B as TIMEOUT_64T1 } from '../../src/transaction/timer-values.js';
import type { Endpoint } from '../../src/transport/endpoint.js';

interface Sent {
  at: number;
  dest: Endpoint;
  data: string;
}

function harness(): { timers: FakeTimers; env: TxEnv; sent: Sent[]; ended: string[]; failSends: { on: boolean } } {
  const timers = new FakeTimers();
  const sent: Sent[] = [];
  const ended: string[] = [];
  const failSends = { on: false };
  const env: TxEnv = {
    timers: timers as unknown as TimerQueue,
    send: (dest, data, onError) => {
      sent.push({ at: timers.now, dest, data: data.toString() });
      if (failSends.on) onError?.();
    },
    terminated: (key, kind) => ended.push(`${kind}:${key}`),
  };
  return { timers, env, sent, ended, failSends };
}

const UDP: Endpoint = { transport: 'udp', address: '127.0.0.11', port: 5062 };
const TCP: Endpoint = { transport: 'tcp', address: '127.0.0.11', port: 5062 };

function parse(s: string): SipMessage {
  const r = parseMessage(Buffer.from(s));
  if (!r.ok) throw new Error(r.error);
  return r.msg;
}

function request(method: string, branch = 'z9hG4bK-1'): SipMessage {
  return parse(
    `${method} sip:200@pbx SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.21:5060;branch=${branch}\r\nFrom: <sip:a@pbx>;tag=f\r\n` +
      `To: <sip:200@pbx>\r\nCall-ID: cid\r\nCSeq: 1 ${method === 'ACK' ? 'INVITE' : method}\r\nContent-Length: 0\r\n\r\n`,
  );
}

function response(status: number, method = 'INVITE', branch = 'z9hG4bK-b1'): SipMessage {
  return parse(
    `SIP/2.0 ${status} X\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=${branch}\r\nFrom: <sip:a@pbx>;tag=f\r\n` +
      `To: <sip:200@pbx>;tag=t\r\nCall-ID: cid\r\nCSeq: 1 ${method}\r\nContent-Length: 0\r\n\r\n`,
  );
}

const buf = (s: string) => Buffer.from(s);

// ------------------------------------------------------------------------------------------
// Server transactions

t.test('INVITE server over UDP: 1xx, non-2xx final, Timer G, ACK, Timer I', async (t) => {
  const { timers, env, sent, ended } = harness();
  const tx = new ServerTransaction(env, 'k1', request('INVITE'), UDP, true);
  tx.cancellable = { cancel: () => {} };
  t.equal(tx.state, 'proceeding', '§17.2.1: starts in Proceeding');
  tx.retransmission();
  t.equal(sent.length, 0, 'nothing to re-send before any response');
  tx.respond(100, buf('100'));
  tx.respond(180, buf('180'));
  t.equal(tx.state, 'proceeding');
  tx.retransmission();
  t.same(sent.map((s) => s.data), ['100', '180', '180'], 'retransmitted INVITE gets the last provisional');
  sent.length = 0;

  tx.respond(486, buf('486'));
  t.equal(tx.state, 'completed');
  t.equal(tx.lastStatus, 486);
  tx.respond(200, buf('late 200'));
  t.equal(tx.state, 'completed', 'a second final response is ignored');
  // Timer G: T1, 2T1, 4T1, then capped at T2.
  timers.advance(12000);
  t.same(
    sent.map((s) => s.at),
    [0, 500, 1500, 3500, 7500, 11500],
    'Timer G retransmits at T1, 2T1, 4T1, T2, T2',
  );
  t.ok(sent.every((s) => s.data === '486'));
  tx.retransmission();
  t.equal(sent.at(-1)?.data, '486', 'INVITE retransmission in Completed re-sends the final');
  sent.length = 0;

  tx.ack();
  t.equal(tx.state, 'confirmed', '§17.2.1: ACK moves Completed to Confirmed');
  timers.advance(T4 - 1);
  t.equal(sent.length, 0, 'no more retransmissions after the ACK');
  t.equal(tx.state, 'confirmed');
  timers.advance(1);
  t.equal(tx.state, 'terminated', 'Timer I (T4) ends it');
  t.same(ended, ['server:k1']);
  t.equal(tx.cancellable, undefined, 'an ended transaction lets go of what a CANCEL would have stopped');
  t.equal(timers.pending, 0, 'no timer left');
});

t.test('INVITE server: Timer H ends a transaction that never sees its ACK', async (t) => {
  const { timers, env, sent } = harness();
  const tx = new ServerTransaction(env, 'k', request('INVITE'), UDP, true);
  tx.respond(480, buf('480'));
  timers.advance(TIMEOUT_64T1 - 1);
  t.equal(tx.state, 'completed');
  const before = sent.length;
  t.ok(before >= 9, `${before} sends within 64*T1`);
  timers.advance(1);
  t.equal(tx.state, 'terminated');
  timers.advance(60000);
  t.equal(sent.length, before, 'retransmissions stop at Timer H');
  tx.ack();
  t.equal(tx.state, 'terminated', 'a late ACK changes nothing');
  t.equal(timers.pending, 0);
});

t.test('INVITE server over TCP: no Timer G, ACK terminates at once', async (t) => {
  const { timers, env, sent } = harness();
  const tx = new ServerTransaction(env, 'k', request('INVITE'), TCP, true);
  tx.respond(603, buf('603'));
  timers.advance(10000);
  t.equal(sent.length, 1, 'reliable transport: no retransmission');
  tx.ack();
  t.equal(tx.state, 'terminated', 'Timer I is zero on TCP');
  t.equal(timers.pending, 0);
});

t.test('INVITE server: 2xx goes to Accepted (RFC 6026)', async (t) => {
  const { timers, env, sent } = harness();
  const tx = new ServerTransaction(env, 'k', request('INVITE'), UDP, true);
  tx.respond(180, buf('180'));
  tx.respond(200, buf('200 a'));
  t.equal(tx.state, 'accepted');
  tx.retransmission();
  t.equal(sent.at(-1)?.data, '200 a', 'INVITE retransmission absorbed in Accepted (RFC 6026 §8.7)');
  t.equal(sent.length, 2);
  tx.respond(200, buf('200 b'));
  t.equal(sent.at(-1)?.data, '200 b', 'a further 2xx (forking race) is sent');
  tx.respond(486, buf('486'));
  t.equal(sent.at(-1)?.data, '200 b', 'a non-2xx after a 2xx is not');
  timers.advance(10000);
  t.equal(sent.length, 3, 'the transaction does not retransmit 2xx (the UAS core does)');
  timers.advance(TIMEOUT_64T1);
  t.equal(tx.state, 'terminated', 'Timer L');
});

t.test('non-INVITE server over UDP: Trying, Proceeding, Completed, Timer J', async (t) => {
  const { timers, env, sent, ended } = harness();
  const tx = new ServerTransaction(env, 'r', request('REGISTER'), UDP, false);
  t.equal(tx.state, 'trying');
  tx.retransmission();
  t.equal(sent.length, 0, '§17.2.2: retransmissions in Trying are discarded');
  tx.respond(100, buf('100'));
  t.equal(tx.state, 'proceeding');
  tx.respond(200, buf('200'));
  t.equal(tx.state, 'completed');
  timers.advance(10000);
  t.equal(sent.length, 2, 'non-INVITE final responses are not retransmitted by timer');
  tx.retransmission();
  t.equal(sent.at(-1)?.data, '200', 'but re-sent on a request retransmission');
  tx.respond(500, buf('500'));
  t.equal(sent.at(-1)?.data, '200', 'later finals ignored');
  timers.advance(TIMEOUT_64T1 - 10000 - 1);
  t.equal(tx.state, 'completed');
  timers.advance(1);
  t.equal(tx.state, 'terminated', 'Timer J (64*T1 on UDP)');
  t.same(ended, ['server:r']);
});

t.test('non-INVITE server over TCP: Timer J is zero', async (t) => {
  const { env } = harness();
  const tx = new ServerTransaction(env, 'r', request('OPTIONS'), TCP, false);
  tx.respond(200, buf('200'));
  t.equal(tx.state, 'terminated');
});

// ------------------------------------------------------------------------------------------
// Client transactions

function user(): ClientUser & { responses: number[]; failures: number[] } {
  const u = {
    responses: [] as number[],
    failures: [] as number[],
    onResponse(res: SipMessage) {
      u.responses.push(res.status);
    },
    onFailure(status: 408 | 503) {
      u.failures.push(status);
    },
  };
  return u;
}

t.test('INVITE client over UDP: Timer A doubles without cap, Timer B gives 408', async (t) => {
  const { timers, env, sent, ended } = harness();
  const u = user();
  const tx = new ClientTransaction(env, 'c', true, UDP, buf('INVITE'), u, () => buf('ACK'));
  t.equal(tx.state, 'calling');
  tx.start();
  timers.advance(TIMEOUT_64T1 - 1);
  t.same(sent.map((s) => s.at), [0, 500, 1500, 3500, 7500, 15500, 31500], 'sent at 0 and after T1, 2T1, 4T1, 8T1, 16T1, 32T1');
  t.same(u.failures, []);
  timers.advance(1);
  t.same(u.failures, [408], 'Timer B: the user acts as on a 408');
  t.equal(tx.state, 'terminated');
  t.same(ended, ['client:c']);
  timers.advance(60000);
  t.equal(sent.length, 7, 'nothing after termination');
  tx.receive(response(200));
  t.same(u.responses, [], 'a response after termination is not passed up');
  t.equal(timers.pending, 0);
});

t.test('INVITE client: a provisional response stops Timer A', async (t) => {
  const { timers, env, sent } = harness();
  const u = user();
  const tx = new ClientTransaction(env, 'c', true, UDP, buf('INVITE'), u, () => buf('ACK'));
  tx.start();
  timers.advance(600);
  t.equal(sent.length, 2);
  tx.receive(response(100));
  t.equal(tx.state, 'proceeding');
  tx.receive(response(180));
  t.same(u.responses, [100, 180], 'provisionals go to the user (the fork drops 100)');
  timers.advance(10000);
  t.equal(sent.length, 2, 'no retransmission in Proceeding');
});

t.test('INVITE client: Timer B does not fire in Proceeding (RFC 3261 §17.1.1.2)', async (t) => {
  const { timers, env } = harness();
  const u = user();
  const tx = new ClientTransaction(env, 'c', true, UDP, buf('INVITE'), u, () => buf('ACK'));
  tx.start();
  tx.receive(response(180));
  timers.advance(TIMEOUT_64T1 + 30000);
  t.same(u.failures, [], 'still ringing after 62 s: only Timer C (the proxy) may end it');
  t.equal(tx.state, 'proceeding', 'still Proceeding');
  tx.receive(response(200));
  t.same(u.responses, [180, 200], 'a late answer still arrives');
});

t.test('INVITE client: non-2xx final is ACKed by the transaction, Timer D', async (t) => {
  const { timers, env, sent } = harness();
  const u = user();
  let acks = 0;
  const tx = new ClientTransaction(env, 'c', true, UDP, buf('INVITE'), u, (res) => {
    acks++;
    return buf(`ACK for ${res.status}`);
  });
  tx.start();
  tx.receive(response(180));
  tx.receive(response(486));
  t.equal(tx.state, 'completed');
  t.same(u.responses, [180, 486]);
  t.equal(sent.at(-1)?.data, 'ACK for 486', '§17.1.1.3: ACK sent to the same destination');
  t.same(sent.at(-1)?.dest, UDP);
  tx.receive(response(486));
  t.equal(sent.at(-1)?.data, 'ACK for 486', 'retransmitted final: ACK re-sent');
  t.equal(sent.filter((s) => s.data.startsWith('ACK')).length, 2);
  t.equal(acks, 1, 'the ACK is built once');
  t.same(u.responses, [180, 486], 'the retransmission is not passed up');
  tx.receive(response(180));
  t.same(u.responses, [180, 486], 'late provisional ignored');
  timers.advance(31999);
  t.equal(tx.state, 'completed');
  timers.advance(1);
  t.equal(tx.state, 'terminated', 'Timer D (32 s on UDP)');
});

t.test('INVITE client over TCP: no Timer A, completed ends at once', async (t) => {
  const { timers, env, sent } = harness();
  const u = user();
  const tx = new ClientTransaction(env, 'c', true, TCP, buf('INVITE'), u, () => buf('ACK'));
  tx.start();
  timers.advance(5000);
  t.equal(sent.length, 1, 'reliable: no retransmission');
  tx.receive(response(603));
  t.equal(tx.state, 'terminated', 'Timer D is zero on TCP');
  t.equal(sent.at(-1)?.data, 'ACK');
  t.equal(timers.pending, 0);
});

t.test('INVITE client: every 2xx reaches the user (Accepted, RFC 6026), Timer M', async (t) => {
  const { timers, env, sent } = harness();
  const u = user();
  const tx = new ClientTransaction(env, 'c', true, UDP, buf('INVITE'), u, () => buf('ACK'));
  tx.start();
  tx.receive(response(200));
  t.equal(tx.state, 'accepted');
  tx.receive(response(200));
  tx.receive(response(486));
  tx.receive(response(180));
  t.same(u.responses, [200, 200], 'both 2xx passed up, later non-2xx and 1xx not');
  t.equal(sent.length, 1, 'the transaction never ACKs a 2xx');
  timers.advance(TIMEOUT_64T1 * 2);
  t.equal(tx.state, 'terminated', 'Timer M');
  t.equal(sent.length, 1, 'no retransmission after the 2xx');
});

t.test('non-INVITE client over UDP: Timer E, Timer F', async (t) => {
  const { timers, env, sent } = harness();
  const u = user();
  const tx = new ClientTransaction(env, 'n', false, UDP, buf('OPTIONS'), u, undefined);
  t.equal(tx.state, 'trying');
  tx.start();
  timers.advance(TIMEOUT_64T1 - 1);
  t.same(
    sent.map((s) => s.at),
    [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500],
    'Timer E: T1, 2T1, 4T1, then T2',
  );
  timers.advance(1);
  t.same(u.failures, [408], 'Timer F');
  t.equal(tx.state, 'terminated');
});

t.test('non-INVITE client: in Proceeding retransmit every T2; Timer F still applies', async (t) => {
  const { timers, env, sent } = harness();
  const u = user();
  const tx = new ClientTransaction(env, 'n', false, UDP, buf('BYE'), u, undefined);
  tx.start();
  timers.advance(600); // sends at 0 and 500; next due at 1500
  tx.receive(response(100, 'BYE'));
  t.equal(tx.state, 'proceeding');
  t.same(u.responses, [100]);
  timers.advance(20000);
  const gaps = sent.slice(1).map((s, i) => s.at - sent[i]!.at);
  t.same(gaps.slice(2), gaps.slice(2).map(() => T2), `gaps after the 1xx are T2: ${gaps.join(', ')}`);
  timers.advance(TIMEOUT_64T1);
  t.same(u.failures, [408], 'Timer F fires in Proceeding for non-INVITE');
});

t.test('non-INVITE client: final response, Timer K', async (t) => {
  const { timers, env, sent } = harness();
  const u = user();
  const tx = new ClientTransaction(env, 'n', false, UDP, buf('CANCEL'), u, undefined);
  tx.start();
  tx.receive(response(200, 'CANCEL'));
  t.equal(tx.state, 'completed');
  t.same(u.responses, [200]);
  tx.receive(response(200, 'CANCEL'));
  t.same(u.responses, [200], 'retransmitted final absorbed');
  timers.advance(10000);
  t.equal(sent.length, 1, 'no retransmission after the final');
  t.equal(tx.state, 'terminated', 'Timer K (T4)');
  const tcp = new ClientTransaction(env, 'n2', false, TCP, buf('CANCEL'), user(), undefined);
  tcp.start();
  tcp.receive(response(200, 'CANCEL'));
  t.equal(tcp.state, 'terminated', 'Timer K is zero on TCP');
});

t.test('client: a transport error is a 503 for the user (§8.1.3.1)', async (t) => {
  const { env, failSends } = harness();
  failSends.on = true;
  const u = user();
  const tx = new ClientTransaction(env, 'c', true, TCP, buf('INVITE'), u, () => buf('ACK'));
  tx.start();
  t.same(u.failures, [503]);
  t.equal(tx.state, 'terminated');
});

// ------------------------------------------------------------------------------------------
// Matching (§17.1.3, §17.2.3) and the layer

t.test('lingering transactions keep neither the request nor their user alive', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const { env } = harness();
  // Server: after the final response only the response bytes stay (for retransmissions).
  const srv = new ServerTransaction(env, 's', request('BYE'), UDP, false);
  t.ok(srv.request, 'the request is there while the transaction is in progress');
  srv.respond(200, buf('SIP/2.0 200 OK'));
  t.equal(srv.state, 'completed');
  t.equal(srv.request, undefined, 'Completed (Timer J, 32 s) does not hold the request');
  const inv = new ServerTransaction(env, 'i', request('INVITE'), UDP, true);
  inv.respond(200, buf('SIP/2.0 200 OK'));
  t.equal(inv.request, undefined, 'nor does Accepted (Timer L)');

  // Client: in Completed (Timer D, 32 s) the user, a whole fork in the proxy, can be collected.
  let refs: WeakRef<object>[] = [];
  const clients: ClientTransaction[] = [];
  for (let i = 0; i < 2; i++) {
    (() => {
      const u = { onResponse: () => {}, onFailure: () => {}, big: new Array(1000).fill(i) };
      refs.push(new WeakRef(u));
      const tx = new ClientTransaction(env, `c${i}`, true, UDP, buf('INVITE'), u, () => buf('ACK'));
      tx.start();
      tx.receive(response(180));
      tx.receive(response(i === 0 ? 486 : 200));
      clients.push(tx);
    })();
  }
  t.same(
    clients.map((c) => c.state),
    ['completed', 'accepted'],
  );
  await new Promise((r) => setImmediate(r));
  gc();
  t.equal(refs[0]!.deref(), undefined, 'Completed: user released');
  t.ok(refs[1]!.deref(), 'Accepted: user kept, a late 2xx of a forking race must still reach it');
  // The fork, once settled, hands the Accepted transaction to a small relay and goes.
  const relay = user();
  clients[1]!.handOver(relay);
  await new Promise((r) => setImmediate(r));
  gc();
  t.equal(refs[1]!.deref(), undefined, 'handed over: the old user can be collected');
  clients[1]!.receive(response(200));
  t.same(relay.responses, [200], 'and 2xx retransmissions reach the new one');
  refs = [];
});

t.test('serverKey / clientKey', async (t) => {
  const inv = request('INVITE', 'z9hG4bK-abc');
  const via = parseVia(inv.values('via')[0]!)!;
  const k = serverKey(inv, via, 1, 'f');
  t.equal(k, 'z9hG4bK-abc\n127.0.0.21:5060\nINVITE');
  const ack = request('ACK', 'z9hG4bK-abc');
  t.equal(serverKey(ack, parseVia(ack.values('via')[0]!)!, 1, 'f'), k, 'ACK matches its INVITE');
  const cancel = request('CANCEL', 'z9hG4bK-abc');
  t.not(serverKey(cancel, parseVia(cancel.values('via')[0]!)!, 1, 'f'), k, 'CANCEL is its own transaction');
  // Another sent-by with the same branch is another transaction.
  const other = parse(inv.raw.toString().replace('127.0.0.21:5060', '127.0.0.22:5060'));
  t.not(serverKey(other, parseVia(other.values('via')[0]!)!, 1, 'f'), k);
  // RFC 2543 peers (no magic cookie, or the bare cookie): Call-ID, CSeq, From tag, Via.
  for (const branch of ['old-style', 'z9hG4bK']) {
    const old = request('INVITE', branch);
    const key = serverKey(old, parseVia(old.values('via')[0]!)!, 1, 'f');
    t.match(key, /^2543\ncid\n1\nf\n/, `fallback key for branch ${branch}`);
  }
  t.equal(clientKey('z9hG4bK-x', 'ACK'), clientKey('z9hG4bK-x', 'INVITE'));
  t.not(clientKey('z9hG4bK-x', 'CANCEL'), clientKey('z9hG4bK-x', 'INVITE'));
});

t.test('TransactionLayer keeps and forgets transactions', async (t) => {
  const sent: string[] = [];
  const layer = new TransactionLayer((_d, data) => sent.push(data.toString()));
  try {
    const req = request('OPTIONS');
    const tx = layer.createServer({ key: 'key1', req, replyTo: TCP });
    t.equal(layer.findServer('key1'), tx);
    t.equal(layer.inFlight, 1);
    tx.respond(200, buf('200'));
    t.equal(layer.findServer('key1'), undefined, 'terminated: forgotten');
    const u = user();
    const ct = layer.sendRequest('z9hG4bK-c1', 'INVITE', TCP, buf('INVITE'), u, () => buf('ACK'));
    t.equal(layer.findClient('z9hG4bK-c1', 'INVITE'), ct);
    t.equal(layer.findClient('z9hG4bK-c1', 'ACK'), ct);
    t.equal(layer.findClient('z9hG4bK-c1', 'CANCEL'), undefined);
    t.same(sent, ['200', 'INVITE']);
    ct.receive(response(486));
    t.equal(layer.findClient('z9hG4bK-c1', 'INVITE'), undefined);
    t.equal(layer.inFlight, 0);
  } finally {
    layer.close();
  }
});

// ------------------------------------------------------------------------------------------
// The real timer queue

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

t.test('TimerQueue: deadline order, cancel, pending, errors contained', async (t) => {
  const q = new TimerQueue();
  const order: number[] = [];
  q.schedule(60, () => order.push(60));
  q.schedule(20, () => order.push(20));
  const c = q.schedule(30, () => order.push(30));
  q.schedule(40, () => {
    throw new Error('boom');
  });
  q.schedule(50, () => order.push(50));
  q.schedule(0, () => order.push(0));
  t.equal(q.pending, 6);
  q.cancel(c);
  q.cancel(c);
  t.equal(q.pending, 5, 'double cancel counted once');
  const warnings: Error[] = [];
  const onWarn = (w: Error) => warnings.push(w);
  process.on('warning', onWarn);
  await sleep(60 + 2 * TICK);
  process.off('warning', onWarn);
  t.same(order, [0, 20, 50, 60], 'in deadline order, cancelled one skipped, after a throwing callback');
  t.equal(q.pending, 0);
  t.ok(warnings.some((w) => w.message === 'boom'), 'the error is reported as a warning');
  // A timer scheduled from a callback for "now" runs, and clear() drops everything.
  const late: string[] = [];
  q.schedule(5, () => q.schedule(0, () => late.push('nested')));
  q.schedule(10_000, () => late.push('never'));
  await sleep(5 + 3 * TICK);
  t.same(late, ['nested']);
  q.clear();
  t.equal(q.pending, 0);
});

t.test('TimerQueue: many timers, earliest re-arms correctly', async (t) => {
  const q = new TimerQueue();
  const fired: number[] = [];
  const delays = Array.from({ length: 200 }, (_, i) => (i * 37) % 50);
  // Deadlines, not delays: scheduling 200 timers takes wall time of its own, so a later
  // timer with a shorter delay may rightly be due after an earlier one with a longer delay.
  for (const d of delays) {
    const timer = q.schedule(d, () => fired.push(timer.at));
  }
  await sleep(50 + 2 * TICK);
  t.equal(fired.length, 200);
  t.same(fired, [...fired].sort((a, b) => a - b), 'fired in non-decreasing deadline order');
  q.clear();
});

t.test('TimerQueue: cancelled timers release their callback and leave the heap at once', async (t) => {
  const q = new TimerQueue();
  const fired: number[] = [];
  const timers: Timer[] = [];
  // Like Timer C: long deadlines, nearly all cancelled early.
  for (let i = 0; i < 5000; i++) timers.push(q.schedule(i % 10 === 0 ? 20 + (i % 7) : 180_000, (n) => fired.push(n), i));
  const big = { payload: 'x' };
  const holder = q.schedule(180_000, (b) => fired.push(b.payload.length), big);
  q.cancel(holder);
  t.equal(holder.fn, undefined, 'the cancelled callback is let go');
  t.equal(holder.arg, undefined, 'and its argument');
  // Cancel in an order unlike the heap's, so removals from the middle are exercised.
  for (let i = 4999; i >= 0; i -= 2) if (i % 10 !== 0) q.cancel(timers[i]);
  for (let i = 0; i < 5000; i += 2) if (i % 10 !== 0) q.cancel(timers[i]);
  t.equal(q.pending, 500);
  t.ok(
    timers.every((x, i) => i % 10 === 0 || x.index === -1),
    'every cancelled entry has left the heap',
  );
  await sleep(26 + 2 * TICK);
  t.equal(fired.length, 500, 'the live ones all fire');
  t.ok(fired.every((i) => i % 10 === 0), 'no cancelled one fires');
  t.equal(q.pending, 0);
  q.clear();
});

t.test('TimerQueue: random cancels keep the heap in order', async (t) => {
  const q = new TimerQueue();
  const fired: number[] = [];
  const all: Timer[] = [];
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  for (let i = 0; i < 2000; i++) all.push(q.schedule(rnd(60), (timer) => fired.push(timer.at), undefined as unknown as Timer));
  for (const timer of all) timer.arg = timer; // each callback gets its own timer
  const kept = new Set(all);
  for (let i = 0; i < 1000; i++) {
    const victim = all[rnd(all.length)]!;
    q.cancel(victim);
    kept.delete(victim);
  }
  t.equal(q.pending, kept.size);
  await sleep(60 + 2 * TICK);
  t.equal(fired.length, kept.size, 'every timer not cancelled fired, none of the cancelled');
  t.same(fired, [...fired].sort((a, b) => a - b), 'in deadline order');
  q.clear();
});

t.test('TimerQueue: a timer fires at its deadline, at most a tick late; an empty queue stops ticking', async (t) => {
  let reads = 0;
  const q = new TimerQueue(() => {
    reads++;
    return Date.now();
  });
  const start = performance.now();
  let firedAfter = -1;
  q.schedule(120, () => (firedAfter = performance.now() - start));
  await sleep(120 + 3 * TICK);
  t.ok(firedAfter >= 119, `not early (${firedAfter.toFixed(0)} ms)`);
  t.ok(firedAfter <= 120 + TICK + 30, `at most a tick late (${firedAfter.toFixed(0)} ms)`);
  t.equal(q.pending, 0);
  const afterFire = reads;
  await sleep(4 * TICK);
  t.equal(reads, afterFire, 'no tick ran once the queue was empty');
  // Cancelling the only timer also ends the ticking (at the next tick).
  const c = q.schedule(10_000, () => {});
  q.cancel(c);
  await sleep(2 * TICK);
  const afterCancel = reads;
  await sleep(4 * TICK);
  t.equal(reads, afterCancel, 'no tick after the last timer was cancelled');
});

t.test('TimerQueue: deadlines stay small integers, rebased before 2^30 ms', async (t) => {
  let now = 1_795_000_000_000; // a Date.now() of 2026: far beyond V8's small-integer range
  const q = new TimerQueue(() => now);
  const order: string[] = [];
  const a = q.schedule(10, (s) => order.push(s), 'a');
  t.equal(a.at, 10, 'counted from the queue\'s epoch');
  now += 2 ** 29 + 1000; // six days later, nothing fired in between (the clock is fake)
  const b = q.schedule(5, (s) => order.push(s), 'b');
  t.ok(b.at < 2 ** 30 && Number.isInteger(b.at), `rebased (b.at=${b.at})`);
  t.ok(a.at < b.at, 'the old deadline moved with the epoch');
  now += 5; // b falls due as well
  await sleep(2 * TICK);
  t.same(order, ['a', 'b'], 'both fire, in deadline order');
  q.clear();
});

t.test('Timer A on the real queue: sends at about 0, T1 and 3*T1', async (t) => {
  const layer = new TransactionLayer(() => {}, new TimerQueue());
  const times: number[] = [];
  const start = performance.now();
  const env: TxEnv = {
    timers: layer.timers,
    send: () => times.push(performance.now() - start),
    terminated: () => {},
  };
  const tx = new ClientTransaction(env, 'a', true, UDP, buf('INVITE'), user(), () => buf('ACK'));
  tx.start();
  await sleep(1700);
  tx.terminate();
  layer.close();
  t.equal(times.length, 3, `sends at ${times.map((x) => x.toFixed(0)).join(', ')} ms`);
  t.ok(times[0]! < 50);
  t.ok(Math.abs(times[1]! - T1) < 150, 'first retransmission after T1');
  t.ok(Math.abs(times[2]! - 3 * T1) < 200, 'second after 2*T1 more');
  t.equal(layer.timers.pending, 0, 'terminate cancelled Timer A and B');
});
