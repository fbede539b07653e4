/**
 * Issue 14, an instance stopped on purpose (SIGTERM) in Redis mode, end to end with two
 * instances sip-a and sip-b sharing one redis-server (cluster-kit.ts), the default
 * calls.keepalive (30 s: lease 3 x 30 = 90 s, so waiting for the lease would take 30 to 60 s
 * after the stop and cannot pass for the prompt leave).
 * - A Busy-on-Busy call to 200 confirmed through A (486 through B); SIGTERM to A: within
 *   LEAVE_MS of the signal B stops counting it (activeCalls 0, /api/calls no longer lists it),
 *   Redis' busy count is 0 and sip-a is no longer in sipbob:instances (redis-state.ts close():
 *   the lease ends at once); a new call to 200 through B rings the device registered through B.
 * - A's bindings (README "When an instance dies"): B forgets them (the device is unreachable
 *   through a stopped instance until it registers elsewhere), Redis keeps them expiring with
 *   registrar.maxExpires, and A started again under the same name takes them up: A and B list
 *   the device again without it registering again.
 * Port block 28, Redis 26387.
 */
import t from 'tap';
import { assertExit, call, phone, portBlock, portCounter, register } from './harness.js';
import { doneWithin, holdCall } from './operator-kit.js';
import { CLUSTER_HOSTS as H, PW, assertRang, busyCount, contactsIn, losingPhone, onAll, ownersIn, startCluster, within, type Cluster, type InstanceName } from './cluster-kit.js';

const P = portBlock(28);
const port = portCounter(P.base + 20);
/** The lease is 90 s; the leave must be seen at once (the reaper ticks every second). */
const LEAVE_MS = 2000;
const MAX_EXPIRES_MS = 3600 * 1000;
const BOTH: InstanceName[] = ['sip-a', 'sip-b'];

const cl: Cluster = await startCluster(t, { block: 28, redisPort: 26387 });

const DESK = { username: 'anna-desk', password: PW['anna-desk'], local: H.annaDesk, localPort: P.base + 1, remote: cl.remote('sip-a') };
const SOFT = { username: 'anna-soft', password: PW['anna-soft'], local: H.annaSoft, localPort: P.base + 2, remote: cl.remote('sip-b') };
const fromTrunk = (via: InstanceName) => ({ local: H.trunkIn, localPort: port(), remote: cl.remote(via), from: 'carrier' });
const logs = () => BOTH.map((n) => `--- ${n}\n${cl.proxy(n).output(3000)}`).join('\n');
const callsOn = (n: InstanceName) => cl.proxy(n).apiJson<Array<{ id: string; extension: string; instance?: string }>>('/api/calls');

t.test('SIGTERM of A: B stops counting its call at once, forgets its bindings; A restarted takes them up', async (t) => {
  assertExit(t, await register(DESK), 0, 'anna-desk registered through A');
  assertExit(t, await register(SOFT), 0, 'anna-soft registered through B');
  const listed = await onAll(['sip-b'], 'B lists anna-desk', async (n) => contactsIn(await cl.ext(n, '200'), 'anna-desk').length === 1, 5000);
  t.equal(listed, true, "B lists anna-desk's binding made through A");

  const answering = await phone({ ...DESK, scenario: 'phone-answer.xml', register: false, ringMs: 200, timeoutSec: 30 });
  const losing = await losingPhone(SOFT);
  cl.procs.push(answering, losing);
  const held = holdCall({ callIdPrefix: 'cl-stop', trigger: H.trigger, ...fromTrunk('sip-a'), to: '200', timeoutSec: 30, label: 'held call trunk -> sip-a -> 200' });
  cl.procs.push(held.proc);
  const up = await onAll(BOTH, 'activeCalls 1 on 200 on both', async (n) => (await cl.ext(n, '200')).activeCalls === 1, 8000);
  t.equal(up, true, 'the call through A is up: activeCalls 1 on 200 at A and at B', { details: up === true ? undefined : logs() });
  const listedCall = (await callsOn('sip-b')).find((c) => c.extension === '200');
  t.equal(listedCall?.instance, 'sip-a', "B's /api/calls lists the call, owned by sip-a");
  await doneWithin(losing, 3000);
  const busy = await call({ ...fromTrunk('sip-b'), to: '200', expect: 486, timeoutSec: 8 });
  assertExit(t, busy, 0, 'while it is up, a call to 200 through B gets 486');

  const sigterm = Date.now();
  await cl.proxy('sip-a').stop();
  const exitMs = Date.now() - sigterm;
  const freed = await within(
    "B: activeCalls 0 on 200 and /api/calls without A's call",
    async () => (await cl.ext('sip-b', '200')).activeCalls === 0 && (await callsOn('sip-b')).length === 0,
    LEAVE_MS,
    25,
  );
  const ms = Date.now() - sigterm;
  t.type(freed, 'number', `B stopped counting A's call ${ms} ms after SIGTERM (A exited after ${exitMs} ms; the lease is 90 s)`, {
    details: typeof freed === 'string' ? `${freed}\n${cl.proxy('sip-b').output(4000)}` : undefined,
  });
  t.ok(ms < LEAVE_MS, `within ${LEAVE_MS} ms of SIGTERM (${ms} ms)`);
  t.equal(await busyCount(cl.db, '200'), 0, 'Redis sipbob:busy 200 = 0');
  t.notOk((await cl.db.zrange('sipbob:instances', 0, -1)).includes('sip-a'), 'sip-a is no longer in sipbob:instances');
  t.equal(await cl.db.hlen('sipbob:calls'), 0, 'Redis sipbob:calls is empty');

  // Its bindings: forgotten by B, kept in Redis for A to take up again, expiring meanwhile.
  t.same(contactsIn(await cl.ext('sip-b', '200'), 'anna-desk'), [], 'B no longer lists anna-desk (registered through the stopped A)');
  t.equal(await cl.db.hlen('sipbob:bindings:sip-a'), 1, "Redis keeps A's binding");
  const pttl = await cl.db.pttl('sipbob:bindings:sip-a');
  t.ok(pttl > 0 && pttl <= MAX_EXPIRES_MS, `...expiring with registrar.maxExpires (PTTL ${pttl} ms)`);

  // The ends of the orphaned call: the dialog went through A, which is gone.
  await Promise.all([held.proc.stop(), answering.stop()]);

  const soft = await phone({ ...SOFT, scenario: 'phone-answer.xml', register: false, ringMs: 200, timeoutSec: 15 });
  cl.procs.push(soft);
  const r = await call({ ...fromTrunk('sip-b'), to: '200', pauseMs: 300, timeoutSec: 12 });
  assertExit(t, r, 0, 'a new call to 200 through B is not busy (no 486) and is answered');
  assertRang(t, await doneWithin(soft, 5000), 'anna-soft rang and answered');

  // Started again under the same name: its binding is its own again, without a new REGISTER.
  await cl.start('sip-a');
  const back = await within('A and B list anna-desk, owned by sip-a', async () => {
    const [ea, eb] = await Promise.all([cl.ext('sip-a', '200'), cl.ext('sip-b', '200')]);
    return contactsIn(ea, 'anna-desk').length === 1 && ownersIn(eb, 'anna-desk')[0] === 'sip-a';
  }, 3000);
  t.type(back, 'number', 'A restarted lists anna-desk, and B lists it again through A, without anna-desk registering again', {
    details: typeof back === 'string' ? logs() : undefined,
  });
  t.equal(await cl.db.pttl('sipbob:bindings:sip-a'), -1, "A's bindings in Redis no longer expire");
});
