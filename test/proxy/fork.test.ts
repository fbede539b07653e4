/**
 * The fork (RFC 3261 §16 response context) through its seam: a fake ForkHost whose messages
 * are short readable strings, over a real TransactionLayer with a fake send and a fake clock.
 * Responses from the branches are parsed SIP text fed to layer.receiveResponse, as the
 * dispatcher would.
 */
import t from 'tap';
import { tagOf } from '../../src/sip/headers.js';
import type { SipMessage } from '../../src/sip/message.js';
import { Fork, type BranchReport, type BranchTarget, type CallOutcomeName, type ForkHost } from '../../src/proxy/fork.js';
import { TransactionLayer } from '../../src/transaction/layer.js';
import type { ServerTransaction } from '../../src/transaction/server.js';
import { T1, TIMER_C, TIMER_M } from '../../src/transaction/timer-values.js';
import { CALLER, FakeTimers, incoming, sip, type Sent } from '../support/sip.js';

const DEVICES = ['anna', 'bob', 'carl'];
const COMPLETED_ELSEWHERE = 'Reason: SIP;cause=200;text="Call completed elsewhere"';

interface RigOptions {
  targets?: number;
  ringTimeoutMs?: number;
  declineEndsCall?: boolean;
}

interface Done {
  outcome: CallOutcomeName;
  status: number;
  branches: BranchReport[];
}

function rig(o: RigOptions = {}) {
  const timers = new FakeTimers();
  const sent: Sent[] = [];
  const layer = new TransactionLayer((dest, data) => sent.push({ at: timers.now, dest, data: data.toString() }), timers.queue);
  const stray: number[] = [];
  let serverTx: ServerTransaction | undefined;
  layer.setUser({
    request: (inc) => {
      serverTx = layer.createServer(inc);
    },
    ack: () => {},
    // The proxy's CANCEL handling, reduced to what the fork sees (§9.2).
    cancel: (_inc, invite) => invite?.cancellable?.cancel(),
    strayInvite2xx: (res) => stray.push(res.status),
  });
  const invite = sip(`INVITE sip:200@pbx.example SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-caller1
Max-Forwards: 70
From: <sip:100@pbx.example>;tag=from1
To: <sip:200@pbx.example>
Call-ID: fork-call-1
CSeq: 1 INVITE
Content-Length: 0

`);
  layer.receiveRequest(incoming(invite));
  const tx = serverTx!;
  let n = 0;
  const host: ForkHost = {
    layer,
    newBranchId: () => `z9hG4bK-br${++n}`,
    buildBranchRequest: (target, id) => Buffer.from(`INVITE ${target.device} ${id}`),
    buildBranchAux: (method, target, id, to, extra) => Buffer.from([`${method} ${target.device} ${id} To=${to}`, ...extra].join(' | ')),
    upstream: (res) => Buffer.from(`UP ${res.status} ${tagOf(res.header('to'))}`),
    localResponse: (status, reason) => Buffer.from(`LOCAL ${status} ${reason}`),
  };
  const targets: BranchTarget[] = DEVICES.slice(0, o.targets ?? 2).map((device, i) => ({
    uri: `sip:${device}@192.0.2.${21 + i}:5062`,
    dest: { transport: 'udp', address: `192.0.2.${21 + i}`, port: 5062 },
    device,
    extension: '200',
  }));
  const answers: string[] = [];
  const done: Done[] = [];
  const fork = new Fork(host, tx, '<sip:200@pbx.example>', targets, {
    ringTimeoutMs: o.ringTimeoutMs ?? 0,
    declineEndsCall: o.declineEndsCall ?? false,
    onAnswer: (target, res) => answers.push(`${target.device} ${res.status}`),
    onDone: (outcome, status, branches) => done.push({ outcome, status, branches }),
  });
  fork.start();

  /** A response from a device's branch (branch ids are handed out in target order). */
  const reply = (device: string, status: number): void => {
    const i = DEVICES.indexOf(device);
    const res: SipMessage = sip(`SIP/2.0 ${status} Reason
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-br${i + 1};rport
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-caller1
From: <sip:100@pbx.example>;tag=from1
To: <sip:200@pbx.example>${status > 100 ? `;tag=${device}-tag` : ''}
Call-ID: fork-call-1
CSeq: 1 INVITE
Content-Length: 0

`);
    layer.receiveResponse(res);
  };
  /** What went upstream to the caller, in order. */
  const upstream = (): string[] => sent.filter((s) => s.dest.address === CALLER.address).map((s) => s.data);
  /** What went to one device, first word (method) and all. */
  const toDevice = (device: string, method: string): string[] =>
    sent.filter((s) => s.dest.address === `192.0.2.${21 + DEVICES.indexOf(device)}` && s.data.startsWith(method + ' ')).map((s) => s.data);
  /** A CANCEL sent from the caller, through the layer, as the dispatcher would hand it on. */
  const callerCancel = (): void =>
    layer.receiveRequest(
      incoming(
        sip(`CANCEL sip:200@pbx.example SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-caller1
Max-Forwards: 70
From: <sip:100@pbx.example>;tag=from1
To: <sip:200@pbx.example>
Call-ID: fork-call-1
CSeq: 1 CANCEL
Content-Length: 0

`),
      ),
    );
  return { timers, sent, layer, fork, tx, reply, upstream, toDevice, answers, done, stray, callerCancel };
}

/** Upstream with Timer G's retransmissions of a final response left out. */
const distinct = (a: string[]): string[] => [...new Set(a)];

t.test('one branch fails, one answers, one is silent: 200 upstream, never the 486; the CANCEL waits for a provisional', async (t) => {
  const r = rig({ targets: 3 });
  t.equal(r.tx.cancellable, r.fork, 'a CANCEL finds the fork through the INVITE\'s transaction');
  t.same(r.toDevice('anna', 'INVITE'), ['INVITE anna z9hG4bK-br1']);
  t.same(r.toDevice('bob', 'INVITE'), ['INVITE bob z9hG4bK-br2']);
  t.same(r.toDevice('carl', 'INVITE'), ['INVITE carl z9hG4bK-br3']);

  r.reply('bob', 100);
  t.same(r.upstream(), [], '100 Trying is hop by hop (§16.7 step 5)');
  r.reply('bob', 180);
  t.same(r.upstream(), ['UP 180 bob-tag'], 'a provisional response goes upstream');
  r.reply('anna', 486);
  t.same(r.toDevice('anna', 'ACK'), ['ACK anna z9hG4bK-br1 To=<sip:200@pbx.example>;tag=anna-tag'], 'the 486 is ACKed by its transaction, To of the response');
  t.same(r.upstream(), ['UP 180 bob-tag'], 'the 486 is not sent upstream while others are pending');
  t.same(r.done, []);

  r.reply('bob', 200);
  t.same(r.upstream(), ['UP 180 bob-tag', 'UP 200 bob-tag'], 'the 200 goes upstream');
  t.same(r.answers, ['bob 200']);
  t.equal(r.done.length, 1);
  t.same(r.done[0], {
    outcome: 'answered',
    status: 200,
    branches: [
      { device: 'anna', status: 486, cancelled: false },
      { device: 'bob', status: 200, cancelled: false },
      { device: 'carl', status: 0, cancelled: true },
    ],
  });
  t.same(r.toDevice('carl', 'CANCEL'), [], 'no CANCEL to a branch without a provisional response (§9.1)');
  t.same(r.toDevice('anna', 'CANCEL'), [], 'nor to the branch that already failed');
  r.timers.advance(2 * T1);
  t.same(r.toDevice('carl', 'CANCEL'), [], 'not later either');
  t.ok(r.toDevice('carl', 'INVITE').length > 1, 'carl\'s INVITE transaction goes on (Timer A)');

  r.reply('carl', 180);
  t.same(r.toDevice('carl', 'CANCEL'), [`CANCEL carl z9hG4bK-br3 To=<sip:200@pbx.example> | ${COMPLETED_ELSEWHERE}`], 'CANCEL with Reason once carl rings');
  t.same(r.upstream(), ['UP 180 bob-tag', 'UP 200 bob-tag'], 'carl\'s 180 is not relayed');
  r.reply('carl', 487);
  t.same(r.toDevice('carl', 'ACK').length, 1, 'carl\'s 487 is ACKed');
  t.same(r.upstream(), ['UP 180 bob-tag', 'UP 200 bob-tag'], 'and not relayed');
  t.equal(r.tx.cancellable, undefined, 'settled: nothing left for a CANCEL to stop');
  t.equal(r.done.length, 1, 'onDone once');
});

t.test('an answer CANCELs every ringing branch with Reason, at once', async (t) => {
  const r = rig({ targets: 3 });
  for (const d of DEVICES) r.reply(d, 180);
  r.reply('carl', 200);
  t.same(r.toDevice('anna', 'CANCEL'), [`CANCEL anna z9hG4bK-br1 To=<sip:200@pbx.example> | ${COMPLETED_ELSEWHERE}`]);
  t.same(r.toDevice('bob', 'CANCEL'), [`CANCEL bob z9hG4bK-br2 To=<sip:200@pbx.example> | ${COMPLETED_ELSEWHERE}`]);
  t.same(r.toDevice('carl', 'CANCEL'), []);
  r.reply('anna', 180);
  t.equal(r.toDevice('anna', 'CANCEL').length, 1, 'one CANCEL per branch');
  t.same(r.upstream(), ['UP 180 anna-tag', 'UP 180 bob-tag', 'UP 180 carl-tag', 'UP 200 carl-tag'], 'no provisional upstream after the answer');
});

interface BestCase {
  name: string;
  finals: [string, number | 'timeout'][];
  up: string;
  outcome: CallOutcomeName;
}

const BEST: BestCase[] = [
  { name: '486, 603, 404: the 6xx', finals: [['anna', 486], ['bob', 603], ['carl', 404]], up: 'UP 603 bob-tag', outcome: 'declined' },
  { name: '404, 500: the lowest class', finals: [['anna', 404], ['bob', 500]], up: 'UP 404 anna-tag', outcome: 'unavailable' },
  { name: '480, 486: busy over unavailable', finals: [['anna', 480], ['bob', 486]], up: 'UP 486 bob-tag', outcome: 'declined' },
  { name: '404, 480: unavailable over other 4xx', finals: [['anna', 404], ['bob', 480]], up: 'UP 480 bob-tag', outcome: 'declined' },
  { name: '486, 407: the challenge', finals: [['anna', 486], ['bob', 407]], up: 'UP 407 bob-tag', outcome: 'unavailable' },
  { name: '600 alone', finals: [['anna', 600]], up: 'UP 600 anna-tag', outcome: 'declined' },
  { name: '503: never forwarded as such', finals: [['anna', 503]], up: 'LOCAL 500 Server Error', outcome: 'unavailable' },
  { name: '503, 502: 500 generated here', finals: [['anna', 503], ['bob', 502]], up: 'LOCAL 500 Server Error', outcome: 'unavailable' },
  { name: 'a timeout and a 480', finals: [['anna', 'timeout'], ['bob', 480]], up: 'UP 480 bob-tag', outcome: 'declined' },
  { name: 'every branch timed out (Timer B)', finals: [['anna', 'timeout'], ['bob', 'timeout']], up: 'LOCAL 408 Request Timeout', outcome: 'no-answer' },
];

t.test('every branch fails: the §16.7 best response goes upstream, once, and onDone names the outcome', async (t) => {
  for (const c of BEST) {
    const r = rig({ targets: c.finals.length });
    const statuses = c.finals.filter(([, s]) => s !== 'timeout');
    for (let i = 0; i < statuses.length; i++) {
      const [dev, s] = statuses[i]!;
      r.reply(dev, s as number);
      if (i < c.finals.length - 1) t.same(r.upstream(), [], `${c.name}: nothing upstream while a branch is pending`);
    }
    // Timer B (64*T1) ends a branch that never answered: a 408 for the fork (§17.1.1.2, §16.7 step 6).
    if (statuses.length < c.finals.length) r.timers.advance(64 * T1);
    t.same(r.upstream().slice(0, 1), [c.up], `${c.name}: ${c.up}`);
    t.same([...new Set(r.upstream())], [c.up], `${c.name}: nothing else (Timer G may re-send it)`);
    t.equal(r.done.length, 1, `${c.name}: onDone once`);
    t.equal(r.done[0]?.outcome, c.outcome, `${c.name}: outcome ${c.outcome}`);
    t.same(
      r.done[0]?.branches.map((b) => b.status),
      c.finals.map(([, s]) => (s === 'timeout' ? 408 : s)),
      `${c.name}: each branch's status in the report`,
    );
    t.same(r.answers, []);
  }
});

t.test('a 6xx does not CANCEL the other branches unless declineEndsCall', async (t) => {
  const r = rig();
  r.reply('anna', 180);
  r.reply('bob', 180);
  r.reply('anna', 603);
  t.same(r.toDevice('bob', 'CANCEL'), [], 'bob keeps ringing (RFC 3261 §16.7 step 5 is not applied)');
  t.same(r.upstream(), ['UP 180 anna-tag', 'UP 180 bob-tag'], 'no final yet');
  r.reply('bob', 200);
  t.same(r.upstream().at(-1), 'UP 200 bob-tag', 'bob can still answer');
  t.equal(r.done[0]?.outcome, 'answered');

  const d = rig({ declineEndsCall: true });
  d.reply('anna', 180);
  d.reply('bob', 180);
  d.reply('anna', 603);
  t.same(d.toDevice('bob', 'CANCEL'), ['CANCEL bob z9hG4bK-br2 To=<sip:200@pbx.example>'], 'declineEndsCall: bob is CANCELled, without Reason');
  t.same(d.upstream(), ['UP 180 anna-tag', 'UP 180 bob-tag'], 'the 603 waits for bob\'s final response');
  d.reply('bob', 487);
  t.same(d.upstream().at(-1), 'UP 603 anna-tag', 'then the 603 goes upstream');
  t.same(d.done[0], {
    outcome: 'declined',
    status: 603,
    branches: [
      { device: 'anna', status: 603, cancelled: false },
      { device: 'bob', status: 487, cancelled: true },
    ],
  });

  const s = rig({ declineEndsCall: true });
  s.reply('anna', 180);
  s.reply('anna', 603);
  t.same(s.upstream(), ['UP 180 anna-tag', 'UP 603 anna-tag'], 'a silent bob does not hold the 603 back');
  t.same(s.toDevice('bob', 'CANCEL'), []);
  s.reply('bob', 180);
  t.same(s.toDevice('bob', 'CANCEL'), ['CANCEL bob z9hG4bK-br2 To=<sip:200@pbx.example>'], 'bob is CANCELled when it rings');
});

t.test('the caller\'s CANCEL: every ringing branch CANCELled, 487 upstream once they are final, outcome cancelled', async (t) => {
  const r = rig({ targets: 3 });
  r.reply('anna', 180);
  r.reply('bob', 183);
  r.callerCancel();
  t.same(r.toDevice('anna', 'CANCEL'), ['CANCEL anna z9hG4bK-br1 To=<sip:200@pbx.example>'], 'anna CANCELled, no Reason');
  t.same(r.toDevice('bob', 'CANCEL'), ['CANCEL bob z9hG4bK-br2 To=<sip:200@pbx.example>']);
  t.same(r.toDevice('carl', 'CANCEL'), [], 'carl has not rung: no CANCEL yet');
  t.same(r.upstream(), ['UP 180 anna-tag', 'UP 183 bob-tag'], 'no 487 before the branches are final');
  r.reply('anna', 487);
  t.same(r.done, []);
  r.reply('bob', 487);
  t.same(r.upstream().at(-1), 'LOCAL 487 Request Terminated', '487 generated here');
  t.same(r.done[0], {
    outcome: 'cancelled',
    status: 487,
    branches: [
      { device: 'anna', status: 487, cancelled: true },
      { device: 'bob', status: 487, cancelled: true },
      { device: 'carl', status: 0, cancelled: true },
    ],
  });
  r.fork.cancel();
  r.callerCancel();
  t.equal(r.sent.filter((s) => s.data.startsWith('CANCEL')).length, 2, 'a second CANCEL changes nothing');
  r.reply('carl', 180);
  t.same(r.toDevice('carl', 'CANCEL'), ['CANCEL carl z9hG4bK-br3 To=<sip:200@pbx.example>'], 'carl CANCELled when it rings');
  t.equal(r.upstream().filter((u) => u.includes('487')).length, 1, 'one 487 upstream');
});

t.test('a CANCEL is never sent before a provisional response (§9.1), and goes when the 1xx comes', async (t) => {
  const r = rig({ targets: 1 });
  r.fork.cancel();
  t.same(r.upstream(), ['LOCAL 487 Request Terminated'], 'the caller is not kept waiting for a silent branch');
  t.equal(r.done[0]?.outcome, 'cancelled');
  r.timers.advance(4 * T1);
  t.same(r.toDevice('anna', 'CANCEL'), [], 'no CANCEL while anna is silent');
  t.equal(r.toDevice('anna', 'INVITE').length, 3, 'the INVITE is still retransmitted (at 0, T1, 3T1)');
  r.reply('anna', 180);
  t.same(r.toDevice('anna', 'CANCEL'), ['CANCEL anna z9hG4bK-br1 To=<sip:200@pbx.example>'], 'the 180 lets the CANCEL go');
  t.same(distinct(r.upstream()), ['LOCAL 487 Request Terminated'], 'and is not relayed (the 487 is re-sent by Timer G)');
  r.reply('anna', 487);
  t.equal(r.toDevice('anna', 'ACK').length, 1, 'the 487 is ACKed');
  t.same(distinct(r.upstream()), ['LOCAL 487 Request Terminated']);
});

t.test('a 100 Trying is a provisional response: the CANCEL may go after it (§9.1)', async (t) => {
  const r = rig({ targets: 1 });
  r.reply('anna', 100);
  r.fork.cancel();
  t.same(r.toDevice('anna', 'CANCEL'), ['CANCEL anna z9hG4bK-br1 To=<sip:200@pbx.example>']);
});

t.test('ring timeout: CANCELs, then 480 upstream, outcome no-answer', async (t) => {
  const r = rig({ ringTimeoutMs: 20_000 });
  r.reply('anna', 180);
  r.reply('bob', 180);
  r.timers.advance(19_999);
  t.same(r.sent.filter((s) => s.data.startsWith('CANCEL')), [], 'nothing before the ring timeout');
  r.timers.advance(1);
  t.same(r.toDevice('anna', 'CANCEL'), ['CANCEL anna z9hG4bK-br1 To=<sip:200@pbx.example>']);
  t.same(r.toDevice('bob', 'CANCEL'), ['CANCEL bob z9hG4bK-br2 To=<sip:200@pbx.example>']);
  r.reply('anna', 487);
  r.reply('bob', 487);
  t.same(r.upstream().at(-1), 'LOCAL 480 Temporarily Unavailable (no answer)');
  t.same(r.done[0]?.outcome, 'no-answer');
  t.same(r.done[0]?.status, 480);
  r.callerCancel();
  t.equal(r.sent.filter((s) => s.data.startsWith('CANCEL')).length, 2, 'a late caller CANCEL changes nothing');

  const a = rig({ ringTimeoutMs: 20_000 });
  a.reply('anna', 180);
  a.reply('anna', 200);
  a.timers.advance(60_000);
  t.equal(a.sent.filter((s) => s.data.startsWith('CANCEL')).length, 0, 'an answer stops the ring timer (bob never rang)');
  t.equal(a.done.length, 1);
});

t.test('Timer C: a branch that rings too long is CANCELled; each provisional re-arms it', async (t) => {
  const r = rig({ targets: 1 });
  r.reply('anna', 180);
  r.timers.advance(100_000);
  r.reply('anna', 183);
  r.timers.advance(TIMER_C - 1);
  t.same(r.toDevice('anna', 'CANCEL'), [], 'the 183 re-armed Timer C');
  r.timers.advance(1);
  t.same(r.toDevice('anna', 'CANCEL'), ['CANCEL anna z9hG4bK-br1 To=<sip:200@pbx.example>'], 'Timer C fired: CANCEL');
  r.reply('anna', 487);
  t.same(r.upstream().at(-1), 'UP 487 anna-tag', 'the branch\'s 487 is the best (only) response');
  t.equal(r.done[0]?.outcome, 'unavailable');
});

t.test('a branch that ignores its CANCEL is given up after 64*T1 (§9.1) and the caller gets a final response', async (t) => {
  const r = rig({ targets: 1, ringTimeoutMs: 20_000 });
  r.reply('anna', 180);
  r.timers.advance(20_000);
  t.equal(r.toDevice('anna', 'CANCEL').length, 1);
  r.timers.advance(TIMER_C + 64 * T1);
  t.same(r.upstream().at(-1), 'LOCAL 480 Temporarily Unavailable (no answer)', 'the caller hears an answer');
  t.equal(r.layer.inFlight, 0, 'nothing left in the layer');
});

t.test('a second 2xx from another branch is relayed too (RFC 6026); onAnswer once per branch', async (t) => {
  const r = rig();
  r.reply('anna', 180);
  r.reply('bob', 180);
  r.reply('anna', 200);
  t.same(r.toDevice('bob', 'CANCEL'), [`CANCEL bob z9hG4bK-br2 To=<sip:200@pbx.example> | ${COMPLETED_ELSEWHERE}`]);
  r.reply('anna', 200); // a retransmission, while the fork still waits for bob
  t.equal(r.tx.cancellable, r.fork, 'not settled yet: bob has no final response');
  r.reply('bob', 200); // the race: bob answered before the CANCEL reached it
  t.same(r.upstream(), ['UP 180 anna-tag', 'UP 180 bob-tag', 'UP 200 anna-tag', 'UP 200 anna-tag', 'UP 200 bob-tag'], 'every 2xx goes upstream');
  t.same(r.answers, ['anna 200', 'bob 200'], 'onAnswer for each branch\'s first 2xx, not the retransmission');
  t.equal(r.done.length, 1, 'onDone once, for the first');
  t.equal(r.done[0]?.outcome, 'answered');
  t.equal(r.tx.state, 'accepted');
  t.equal(r.tx.cancellable, undefined, 'settled');

  // Settled: the transactions relay 2xx retransmissions until Timer M ends them.
  r.reply('bob', 200);
  t.equal(r.upstream().at(-1), 'UP 200 bob-tag', 'after settling, a retransmitted 2xx still goes upstream');
  t.same(r.answers, ['anna 200', 'bob 200']);
  r.timers.advance(TIMER_M);
  r.reply('bob', 200);
  t.same(r.stray, [200], 'after Timer M the 2xx is the proxy\'s stray 2xx');
  t.same(r.toDevice('anna', 'ACK'), [], 'the proxy never ACKs a 2xx (the caller does, §13.2.2.4)');
});

t.test('a non-INVITE fork: one branch, its final response upstream, no Timer C', async (t) => {
  // The in-dialog route forks a BYE to one target, with no ring timeout.
  const timers = new FakeTimers();
  const sent: Sent[] = [];
  const layer = new TransactionLayer((dest, data) => sent.push({ at: timers.now, dest, data: data.toString() }), timers.queue);
  let tx: ServerTransaction | undefined;
  layer.setUser({ request: (inc) => (tx = layer.createServer(inc)), ack: () => {}, cancel: () => {}, strayInvite2xx: () => {} });
  layer.receiveRequest(
    incoming(sip('BYE sip:anna@192.0.2.21 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-bye\nFrom: <sip:a@b>;tag=1\nTo: <sip:c@d>;tag=2\nCall-ID: c\nCSeq: 2 BYE\nContent-Length: 0\n\n')),
  );
  const done: string[] = [];
  const host: ForkHost = {
    layer,
    newBranchId: () => 'z9hG4bK-bye1',
    buildBranchRequest: () => Buffer.from('BYE out'),
    buildBranchAux: () => Buffer.from('AUX'),
    upstream: (res) => Buffer.from(`UP ${res.status}`),
    localResponse: (s) => Buffer.from(`LOCAL ${s}`),
  };
  new Fork(host, tx!, '<sip:c@d>;tag=2', [{ uri: 'sip:anna@192.0.2.21', dest: { transport: 'udp', address: '192.0.2.21', port: 5060 }, device: '', extension: '' }], {
    ringTimeoutMs: 0,
    declineEndsCall: false,
    onDone: (o, s) => done.push(`${o} ${s}`),
  }).start();
  timers.advance(64 * T1 - 1);
  t.same(sent.filter((s) => s.data === 'AUX'), [], 'no CANCEL or ACK for a BYE');
  layer.receiveResponse(sip('SIP/2.0 481 Gone\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-bye1\nFrom: <sip:a@b>;tag=1\nTo: <sip:c@d>;tag=2\nCall-ID: c\nCSeq: 2 BYE\nContent-Length: 0\n\n'));
  t.same(sent.filter((s) => s.data.startsWith('UP') || s.data.startsWith('LOCAL')).map((s) => s.data), ['UP 481']);
  t.same(done, ['unavailable 481']);
});
