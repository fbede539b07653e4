/**
 * Issue 14, "How it is checked": dead and restarted instances, end to end with two instances
 * sip-a and sip-b sharing one redis-server (cluster-kit.ts), calls.keepalive 2 s (lease
 * 3 x 2 = 6 s; BOUND_MS), keepaliveFailures 2.
 * - (c) kill -9 of A during a call A forked (a device registered through A answered): B
 *   counts the call until A's lease runs out, then stops counting it within 3 x keepalive +
 *   SLACK_MS of the kill (activeCalls on B, Redis' busy count, A gone from sipbob:instances);
 *   B forgets A's bindings; 200 rings again through B; the device of A re-registers through
 *   B and is listed there.
 * - (e) A restarted rejoins: started again it is in sipbob:instances, and after a kill -9
 *   and a prompt restart (within its lease) it lists its own bindings and B's without any
 *   device registering again, and a call through A rings its device; B restarted (SIGTERM)
 *   lists every binding it loads from Redis and rings its own device without re-registration.
 * Port block 24, Redis 26381.
 */
import t from 'tap';
import { assertExit, call, callerOptions, phone, portBlock, portCounter, register, sippStart } from './harness.js';
import { doneWithin } from './operator-kit.js';
import { CLUSTER_HOSTS as H, PW, assertRang, busyCount, losingPhone, contactsIn, onAll, startCluster, within, type Cluster, type ClusterUser, type InstanceName } from './cluster-kit.js';

const P = portBlock(24);
const port = portCounter(P.base + 20);
const KEEPALIVE_S = 2;
/** The lease bound of the issue: 3 x calls.keepalive. */
const BOUND_MS = 3 * KEEPALIVE_S * 1000;
/** SIPp, polling and a loaded machine. */
const SLACK_MS = 3000;
const BOTH: InstanceName[] = ['sip-a', 'sip-b'];

const cl: Cluster = await startCluster(t, { block: 24, redisPort: 26381, calls: { keepalive: KEEPALIVE_S, keepaliveFailures: 2 } });

const HOME: Record<ClusterUser, string> = {
  'anna-desk': H.annaDesk,
  'anna-soft': H.annaSoft,
  'anna-mobile': H.annaMobile,
  'hotline-desk-1': H.hotline1,
  'hotline-desk-2': H.hotline2,
};
/** Device u at a fixed port of its host, registering through `via`. */
const dev = (u: ClusterUser, via: InstanceName, localPort: number) => ({ username: u, password: PW[u], local: HOME[u], localPort, remote: cl.remote(via) });
const logs = () => BOTH.map((n) => `--- ${n}\n${cl.proxy(n).output(3000)}`).join('\n');
const fromTrunk = (via: InstanceName) => ({ local: H.trunkIn, localPort: port(), remote: cl.remote(via), from: 'carrier' });

const DESK_PORT = P.base + 1;
const SOFT_PORT = P.base + 2;
const HOT1_PORT = P.base + 3;
const MOBILE_PORT = P.base + 4;

t.test('(c) kill -9 of A during a call: B stops counting it within 3 x keepalive', async (t) => {
  for (const [u, via, p] of [['anna-desk', 'sip-a', DESK_PORT], ['anna-soft', 'sip-b', SOFT_PORT]] as const) {
    assertExit(t, await register(dev(u, via, p)), 0, `${u} registered through ${via}`);
  }
  const listed = await onAll(['sip-b'], 'B lists anna-desk', async (n) => contactsIn(await cl.ext(n, '200'), 'anna-desk').length === 1, 5000);
  t.equal(listed, true, "B lists anna-desk's binding made through A");

  // A call A forks and tracks: ka-phone/ka-caller answer A's probes, so only A's death ends it.
  const answering = await phone({
    ...dev('anna-desk', 'sip-a', DESK_PORT),
    scenario: 'ka-phone.xml',
    register: false,
    ringMs: 200,
    timeoutSec: 40,
    vars: { session: 'X-Session-Timer: none' },
    globals: { probe: '200', hangup: '0' },
  });
  const losing = await losingPhone(dev('anna-soft', 'sip-b', SOFT_PORT));
  cl.procs.push(answering, losing);
  const caller = sippStart({ ...callerOptions({ scenario: 'ka-caller.xml', ...fromTrunk('sip-a'), to: '200', timeoutSec: 40 }), globals: { probe: '200', hangup: '0' } });
  cl.procs.push(caller);
  const up = await onAll(BOTH, 'activeCalls 1 on 200 on both', async (n) => (await cl.ext(n, '200')).activeCalls === 1, 8000);
  t.equal(up, true, 'the call through A is up: activeCalls 1 on A and on B', { details: up === true ? undefined : logs() });
  t.equal(await busyCount(cl.db, '200'), 1, 'Redis sipbob:busy 200 = 1');
  await doneWithin(losing, 3000);

  await cl.proxy('sip-a').kill9();
  const killedAt = Date.now();
  // Still counted right after the kill: B cannot tell a dead instance from a slow one before the lease ends.
  t.equal((await cl.ext('sip-b', '200')).activeCalls, 1, 'B still counts the call right after the kill (the lease has not run out)');

  const freed = await within('B: activeCalls 0 on 200', async () => (await cl.ext('sip-b', '200')).activeCalls === 0, BOUND_MS + SLACK_MS);
  const ms = Date.now() - killedAt;
  t.type(freed, 'number', `B stopped counting the call ${ms} ms after the kill (bound ${BOUND_MS} + ${SLACK_MS} ms)`, {
    details: typeof freed === 'string' ? cl.proxy('sip-b').output(6000) : undefined,
  });
  t.ok(ms <= BOUND_MS + SLACK_MS, `within 3 x keepalive + slack (${ms} ms)`);
  const cleared = await within('Redis: busy 200 = 0 and sip-a not in sipbob:instances', async () => {
    const live = await cl.db.zrange('sipbob:instances', 0, -1);
    return (await busyCount(cl.db, '200')) === 0 && !live.includes('sip-a');
  }, 2000);
  t.type(cleared, 'number', `Redis: busy count of 200 back to 0, sip-a reaped from sipbob:instances (${JSON.stringify(await cl.db.zrange('sipbob:instances', 0, -1))})`);
  const forgotten = await within("B forgets anna-desk's binding owned by A", async () => contactsIn(await cl.ext('sip-b', '200'), 'anna-desk').length === 0, 2000);
  t.type(forgotten, 'number', "B no longer lists the binding of the dead instance (the device is unreachable until it registers elsewhere)");

  // The ends of the orphaned call: the caller's dialog went through A, which is gone.
  await Promise.all([caller.stop(), answering.stop()]);

  // 200 is not stuck: a call through B rings anna-soft (registered through B), which answers.
  const soft = await phone({ ...dev('anna-soft', 'sip-b', SOFT_PORT), scenario: 'phone-answer.xml', register: false, ringMs: 200, timeoutSec: 15 });
  cl.procs.push(soft);
  const r = await call({ ...fromTrunk('sip-b'), to: '200', pauseMs: 300, timeoutSec: 12 });
  assertExit(t, r, 0, 'a new call to 200 through B is not busy and is answered');
  assertRang(t, await doneWithin(soft, 5000), 'anna-soft rang and answered');

  // The phone of the dead instance registers elsewhere (what a phone does on a failed REGISTER refresh).
  assertExit(t, await register(dev('anna-desk', 'sip-b', DESK_PORT)), 0, 'anna-desk re-registers through B');
  t.equal(contactsIn(await cl.ext('sip-b', '200'), 'anna-desk').length, 1, 'B lists anna-desk again');
});

t.test('(e) a restarted instance rejoins without losing bindings', async (t) => {
  await cl.start('sip-a');
  const rejoined = await within('sip-a back in sipbob:instances', async () => (await cl.db.zrange('sipbob:instances', 0, -1)).includes('sip-a'), 3000);
  t.type(rejoined, 'number', 'A started again is in sipbob:instances');
  const loaded = await within('A lists anna-desk and anna-soft (registered through B)', async () => {
    const e = await cl.ext('sip-a', '200');
    return contactsIn(e, 'anna-desk').length === 1 && contactsIn(e, 'anna-soft').length === 1;
  }, 3000);
  t.type(loaded, 'number', "A, started again, loads B's bindings from Redis");

  for (const [u, p] of [['hotline-desk-1', HOT1_PORT], ['anna-mobile', MOBILE_PORT]] as const) {
    assertExit(t, await register(dev(u, 'sip-a', p)), 0, `${u} registered through A`);
  }
  const mirrored = await within('B lists the two new bindings of A', async () => {
    const [e100, e200] = await Promise.all([cl.ext('sip-b', '100'), cl.ext('sip-b', '200')]);
    return contactsIn(e100, 'hotline-desk-1').length === 1 && contactsIn(e200, 'anna-mobile').length === 1;
  }, 5000);
  t.type(mirrored, 'number', 'B lists the bindings made through the rejoined A');

  // kill -9 and a prompt restart, well within the lease: nothing is lost, nobody re-registers.
  await cl.proxy('sip-a').kill9();
  await cl.start('sip-a');
  const e100 = await cl.ext('sip-a', '100');
  const e200 = await cl.ext('sip-a', '200');
  t.equal(contactsIn(e100, 'hotline-desk-1').length, 1, "A restarted after kill -9 lists its own binding hotline-desk-1", { details: JSON.stringify(e100) });
  t.equal(contactsIn(e200, 'anna-mobile').length, 1, "...and anna-mobile", { details: JSON.stringify(e200) });
  t.equal(contactsIn(e200, 'anna-desk').length, 1, "...and B's bindings (anna-desk, anna-soft)");
  t.equal(contactsIn(e200, 'anna-soft').length, 1);
  // Past the old A's lease: B must not reap the bindings of the A that came back.
  await new Promise((r) => setTimeout(r, BOUND_MS + 1000));
  const b100 = await cl.ext('sip-b', '100');
  t.equal(contactsIn(b100, 'hotline-desk-1').length, 1, "past the lease of the killed A, B still lists A's binding (the new A refreshes it)", { details: JSON.stringify(b100) });

  const hot1 = await phone({ ...dev('hotline-desk-1', 'sip-a', HOT1_PORT), scenario: 'phone-answer.xml', register: false, ringMs: 200, timeoutSec: 15 });
  cl.procs.push(hot1);
  const r = await call({ ...fromTrunk('sip-a'), to: '100', pauseMs: 300, timeoutSec: 12 });
  assertExit(t, r, 0, 'a call to 100 through the restarted A is answered');
  assertRang(t, await doneWithin(hot1, 5000), 'hotline-desk-1 rang without registering again');

  // B restarted gracefully: it loads every binding from Redis and rings its own devices.
  await cl.proxy('sip-b').stop();
  await cl.start('sip-b');
  const [b1, b2] = await Promise.all([cl.ext('sip-b', '100'), cl.ext('sip-b', '200')]);
  t.equal(contactsIn(b1, 'hotline-desk-1').length, 1, 'B restarted lists hotline-desk-1 (through A)', { details: JSON.stringify(b1) });
  for (const u of ['anna-desk', 'anna-soft', 'anna-mobile']) t.equal(contactsIn(b2, u).length, 1, `B restarted lists ${u}`, { details: JSON.stringify(b2) });
  const soft = await phone({ ...dev('anna-soft', 'sip-b', SOFT_PORT), scenario: 'phone-answer.xml', register: false, ringMs: 200, timeoutSec: 15 });
  cl.procs.push(soft);
  // anna-desk (through B since (c)) rings too and loses.
  const desk = await losingPhone(dev('anna-desk', 'sip-b', DESK_PORT));
  cl.procs.push(desk);
  const r2 = await call({ ...fromTrunk('sip-b'), to: '200', pauseMs: 300, timeoutSec: 12 });
  assertExit(t, r2, 0, 'a call to 200 through the restarted B is answered');
  assertRang(t, await doneWithin(soft, 5000), 'anna-soft rang without registering again');
  assertRang(t, await doneWithin(desk, 3000), 'anna-desk (registered through B before the restart) rang and was cancelled');
});
