/**
 * Issue 14, "How it is checked": Redis stopped and restarted during traffic, and a Redis that
 * hangs, end to end with two instances sip-a and sip-b (a third, sip-c, joins afterwards)
 * sharing one redis-server (cluster-kit.ts), calls.keepalive 2 s (lease 6 s).
 * - (d) Redis stopped: /healthz of both says {"redis":"down"} (and stays 200: the instance
 *   serves), /metrics says so; calls keep working on each instance (devices registered there
 *   answer); REGISTERs made while it is down are answered at once. Down for longer than a
 *   lease, then restarted EMPTY (nothing is saved): /healthz no longer says down, each
 *   instance lists the registration made at the other while Redis was down, nobody's bindings
 *   are reaped for the leases that could not be refreshed, a new instance sip-c loads every
 *   binding from Redis, and Busy on Busy works across the instances again.
 * - Redis that keeps its data (saved) down past a lease while a call is up through B: once it
 *   is back, A still counts B's call (486 at A) and lists B's bindings (leases that ran out
 *   during the outage do not get live instances reaped for good).
 * - A Redis that hangs (SIGSTOP): REGISTER and calls through A still complete at once (the
 *   SIP path never waits on Redis); A's commands give up while it still hangs (bounded command
 *   time: sipbob_redis_errors_total rises); after it resumes, B lists what A registered meanwhile.
 * Port block 25, Redis 26382.
 */
import t, { type Test } from 'tap';
import { assertExit, call, callerOptions, phone, portBlock, portCounter, register, sippStart } from './harness.js';
import { doneWithin } from './operator-kit.js';
import { CLUSTER_HOSTS as H, PW, assertRang, contactsIn, losingPhone, onAll, startCluster, within, type Cluster, type ClusterUser, type InstanceName } from './cluster-kit.js';

const P = portBlock(25);
const port = portCounter(P.base + 20);
const KEEPALIVE_S = 2;
const LEASE_MS = 3 * KEEPALIVE_S * 1000;
const BOTH: InstanceName[] = ['sip-a', 'sip-b'];

const cl: Cluster = await startCluster(t, { block: 25, redisPort: 26382, calls: { keepalive: KEEPALIVE_S, keepaliveFailures: 2 } });

const HOME: Record<ClusterUser, { local: string; localPort: number }> = {
  'anna-desk': { local: H.annaDesk, localPort: P.base + 1 },
  'anna-soft': { local: H.annaSoft, localPort: P.base + 2 },
  'anna-mobile': { local: H.annaMobile, localPort: P.base + 3 },
  'hotline-desk-1': { local: H.hotline1, localPort: P.base + 4 },
  'hotline-desk-2': { local: H.hotline2, localPort: P.base + 5 },
};
const dev = (u: ClusterUser, via: InstanceName) => ({ username: u, password: PW[u], ...HOME[u], remote: cl.remote(via) });
const fromTrunk = (via: InstanceName) => ({ local: H.trunkIn, localPort: port(), remote: cl.remote(via), from: 'carrier' });
const logs = (names: InstanceName[] = BOTH) => names.map((n) => `--- ${n}\n${cl.proxy(n).output(3000)}`).join('\n');

/** REGISTER through `via`; it must succeed and be answered at once (SIPp start-up included). */
async function quickRegister(t: Test, u: ClusterUser, via: InstanceName, why: string): Promise<void> {
  const started = Date.now();
  const r = await register(dev(u, via));
  const ms = Date.now() - started;
  assertExit(t, r, 0, `${why}: ${u} registers through ${via}`);
  t.ok(ms < 2000, `${why}: the REGISTER of ${u} is answered at once (${ms} ms)`);
}

/** A call from the trunk through `via` to `number`; `u` (registered through `via`) answers. */
async function callAnswered(t: Test, via: InstanceName, number: string, u: ClusterUser, why: string): Promise<void> {
  const p = await phone({ ...dev(u, via), scenario: 'phone-answer.xml', register: false, ringMs: 200, timeoutSec: 15 });
  cl.procs.push(p);
  const started = Date.now();
  const r = await call({ ...fromTrunk(via), to: number, pauseMs: 300, timeoutSec: 10 });
  const ms = Date.now() - started;
  assertExit(t, r, 0, `${why}: a call through ${via} to ${number} is answered`);
  t.ok(ms < 4000, `${why}: the call through ${via} completes without waiting on Redis (${ms} ms for 200 ms ring + 300 ms talk)`);
  assertRang(t, await doneWithin(p, 5000), `${why}: ${u} rang and answered`);
}

/** Whether every (extension, user) pair has one contact on instance n. */
async function lists(n: InstanceName, users: ClusterUser[]): Promise<boolean> {
  const [e200, e100] = await Promise.all([cl.ext(n, '200'), cl.ext(n, '100')]);
  return users.every((u) => contactsIn(u.startsWith('anna') ? e200 : e100, u).length === 1);
}

t.test('(d) Redis stopped and restarted during traffic', async (t) => {
  await quickRegister(t, 'anna-desk', 'sip-a', 'Redis up');
  await quickRegister(t, 'hotline-desk-2', 'sip-b', 'Redis up');
  const before = await onAll(BOTH, 'both list anna-desk and hotline-desk-2', (n) => lists(n, ['anna-desk', 'hotline-desk-2']), 5000);
  t.equal(before, true, 'with Redis up, both instances list both bindings', { details: before === true ? undefined : logs() });
  for (const n of BOTH) {
    const h = await cl.health(n);
    t.not(h?.body.redis, 'down', `${n} /healthz does not say redis down while it is up (${JSON.stringify(h)})`);
  }

  // A setting changed through the API before the outage: the restarted Redis loses it.
  const patch = await cl.proxy('sip-a').api('/api/extensions/100', { method: 'PATCH', body: JSON.stringify({ busyOnBusy: true }) });
  t.equal(patch.status, 200, 'PATCH 100 {busyOnBusy: true} on A before the outage');
  const patched = await onAll(['sip-b'], 'B sees 100 busyOnBusy true', async (n) => (await cl.ext(n, '100')).busyOnBusy, 3000);
  t.equal(patched, true, 'B sees the setting');

  await cl.redis.stop();
  const downAt = Date.now();
  const reported = await onAll(BOTH, '/healthz {"redis":"down"} on both', async (n) => (await cl.health(n))?.body.redis === 'down', 5000);
  t.equal(reported, true, 'Redis stopped: /healthz of A and B says {"redis":"down"}', {
    details: reported === true ? undefined : JSON.stringify(await Promise.all(BOTH.map((n) => cl.health(n)))),
  });
  for (const n of BOTH) {
    const h = await cl.health(n);
    t.equal(h?.status, 200, `${n} /healthz stays 200 while Redis is down: the instance keeps serving, a load balancer must not drop it`);
    const metrics = await (await cl.proxy(n).api('/metrics')).text();
    t.match(metrics, /^sipbob_redis_up 0$/m, `${n} /metrics: sipbob_redis_up 0`);
  }

  // Traffic while Redis is down: each instance routes with what it holds.
  await callAnswered(t, 'sip-a', '200', 'anna-desk', 'Redis down');
  await callAnswered(t, 'sip-b', '100', 'hotline-desk-2', 'Redis down');
  await quickRegister(t, 'anna-mobile', 'sip-a', 'Redis down');
  await quickRegister(t, 'hotline-desk-1', 'sip-b', 'Redis down');
  t.ok(await lists('sip-a', ['anna-mobile']), 'A lists the registration it took while Redis is down');

  // Down past a whole lease, so no instance could refresh its own; then back, empty.
  const wait = downAt + LEASE_MS + 1000 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  await cl.redis.restart();
  const back = await onAll(BOTH, '/healthz no longer says redis down', async (n) => {
    const h = await cl.health(n);
    return h !== undefined && h.body.redis !== 'down';
  }, 8000);
  t.equal(back, true, 'Redis restarted: /healthz of A and B no longer says down', {
    details: back === true ? undefined : JSON.stringify(await Promise.all(BOTH.map((n) => cl.health(n)))),
  });

  for (const n of BOTH) t.match(await (await cl.proxy(n).api('/metrics')).text(), /^sipbob_redis_up 1$/m, `${n} /metrics: sipbob_redis_up 1 again`);

  const ALL: ClusterUser[] = ['anna-desk', 'anna-mobile', 'hotline-desk-1', 'hotline-desk-2'];
  const converged = await onAll(BOTH, 'both list all four bindings', (n) => lists(n, ALL), 8000);
  t.equal(converged, true, 'converged: A lists hotline-desk-1 (registered at B while Redis was down), B lists anna-mobile (at A), nothing reaped', {
    details: converged === true ? undefined : `${JSON.stringify(await Promise.all(BOTH.map(async (n) => [n, await cl.ext(n, '200'), await cl.ext(n, '100')])))}\n${logs()}`,
  });
  const stable = await new Promise((r) => setTimeout(r, KEEPALIVE_S * 1000 + 500)).then(() => Promise.all(BOTH.map((n) => lists(n, ALL))));
  t.same(stable, [true, true], 'a keepalive later, still all four on both (no late reaping of the leases that lapsed during the outage)');
  const live = await within('both in sipbob:instances again', async () => {
    const z = await cl.db.zrange('sipbob:instances', 0, -1).catch(() => [] as string[]);
    return z.includes('sip-a') && z.includes('sip-b');
  }, 5000);
  t.type(live, 'number', 'both instances renewed their lease in the restarted Redis');

  // A new instance knows only what Redis holds: the restarted (empty) Redis must have been refilled.
  await cl.start('sip-c');
  const cKnows = await onAll(['sip-c'], 'sip-c lists all four bindings', (n) => lists(n, ALL), 5000);
  t.equal(cKnows, true, 'sip-c, started after the outage, loads all four bindings from Redis', {
    details: cKnows === true ? undefined : JSON.stringify([await cl.ext('sip-c', '200'), await cl.ext('sip-c', '100')]),
  });
  const c100 = await cl.ext('sip-c', '100');
  t.equal(c100.busyOnBusy, true, "sip-c has the setting PATCHed before the outage (YAML says false): the empty Redis got it back", {
    details: JSON.stringify(await cl.db.hgetall('sipbob:settings')),
  });

  // Busy on Busy across instances again: a call through A makes 200 busy at B and C.
  const answering = await phone({
    ...dev('anna-desk', 'sip-a'),
    scenario: 'ka-phone.xml',
    register: false,
    ringMs: 200,
    timeoutSec: 20,
    vars: { session: 'X-Session-Timer: none' },
    globals: { probe: '200', hangup: '0' },
  });
  cl.procs.push(answering);
  // The caller hangs up by itself after 2 probes (about 4 s).
  const caller = sippStart({ ...callerOptions({ scenario: 'ka-caller.xml', ...fromTrunk('sip-a'), to: '200', timeoutSec: 20 }), globals: { probe: '200', hangup: '2' } });
  cl.procs.push(caller);
  const up = await onAll(['sip-a', 'sip-b', 'sip-c'], 'activeCalls 1 on 200 on A, B and C', async (n) => (await cl.ext(n, '200')).activeCalls === 1, 3000);
  t.equal(up, true, 'after the outage, a call through A counts on A, B and C', { details: up === true ? undefined : logs(['sip-a', 'sip-b', 'sip-c']) });
  for (const n of ['sip-b', 'sip-c'] as const) {
    const r = await call({ ...fromTrunk(n), to: '200', expect: 486, timeoutSec: 8 });
    assertExit(t, r, 0, `after the outage, a call to 200 through ${n} gets 486`);
  }
  const [rc, ra] = await Promise.all([doneWithin(caller, 10000), doneWithin(answering, 10000)]);
  assertExit(t, rc, 0, 'the caller answered the probes and hung up');
  assertRang(t, ra, 'anna-desk answered and got the BYE');
  await cl.proxy('sip-c').stop();
});

t.test('Redis that keeps its data, down past a lease while a call is up through B: live instances stay counted', async (t) => {
  // 100 is Busy on Busy since (d) (PATCH). hotline-desk-2 (through B) takes a call through B.
  const answering = await phone({
    ...dev('hotline-desk-2', 'sip-b'),
    scenario: 'ka-phone.xml',
    register: false,
    ringMs: 200,
    timeoutSec: 40,
    vars: { session: 'X-Session-Timer: none' },
    globals: { probe: '200', hangup: '0' },
  });
  const losing = await losingPhone(dev('hotline-desk-1', 'sip-b'));
  cl.procs.push(answering, losing);
  const caller = sippStart({ ...callerOptions({ scenario: 'ka-caller.xml', ...fromTrunk('sip-b'), to: '100', timeoutSec: 40 }), globals: { probe: '200', hangup: '0' } });
  cl.procs.push(caller);
  const up = await onAll(BOTH, 'activeCalls 1 on 100 on both', async (n) => (await cl.ext(n, '100')).activeCalls === 1, 5000);
  t.equal(up, true, 'the call through B counts on A and B', { details: up === true ? undefined : logs() });
  await doneWithin(losing, 3000);

  // Persisted (as with AOF or snapshots), so the leases come back expired.
  await cl.redis.save();
  await cl.redis.stop();
  await new Promise((r) => setTimeout(r, LEASE_MS + 1000));
  await cl.redis.restart();
  const back = await onAll(BOTH, '/healthz no longer says redis down', async (n) => (await cl.health(n))?.body.redis === 'up', 8000);
  t.equal(back, true, 'Redis is back for both');
  const counted = async (n: InstanceName) => (await cl.ext(n, '100')).activeCalls === 1 && (await lists(n, ['hotline-desk-2']));
  const healed = await onAll(BOTH, 'activeCalls 1 on 100 and the binding of hotline-desk-2 on both', counted, 5000);
  t.equal(healed, true, "after Redis returns with leases that ran out meanwhile, A still counts B's call and lists B's binding", {
    details: healed === true ? undefined : `${JSON.stringify(await Promise.all(BOTH.map((n) => cl.ext(n, '100'))))}\n${logs()}`,
  });
  await new Promise((r) => setTimeout(r, KEEPALIVE_S * 1000 + 500));
  t.same(await Promise.all(BOTH.map(counted)), [true, true], 'a keepalive later, still so on both');
  t.equal(Number((await cl.db.hget('sipbob:busy', '100')) ?? 0), 1, 'Redis sipbob:busy 100 = 1');
  const r = await call({ ...fromTrunk('sip-a'), to: '100', expect: 486, timeoutSec: 8 });
  assertExit(t, r, 0, "a call to 100 through A gets 486: B's call still counts there");

  const calls = await cl.proxy('sip-b').apiJson<Array<{ id: string; extension: string }>>('/api/calls');
  const id = calls.find((c) => c.extension === '100')?.id;
  if (t.ok(id, 'B lists the call') && id) {
    t.equal((await cl.proxy('sip-b').api(`/api/calls/${encodeURIComponent(id)}`, { method: 'DELETE' })).status, 204, 'DELETE /api/calls/{id} on B ends it');
  }
  const [rc, ra] = await Promise.all([doneWithin(caller, 8000), doneWithin(answering, 8000)]);
  assertExit(t, rc, 0, 'the caller got the BYE');
  assertRang(t, ra, 'hotline-desk-2 answered and got the BYE');
  const free = await onAll(BOTH, 'activeCalls 0 on 100 on both', async (n) => (await cl.ext(n, '100')).activeCalls === 0, 5000);
  t.equal(free, true, '100 is free on both');
});

/** sipbob_redis_errors_total of an instance's /metrics. */
async function redisErrors(n: InstanceName): Promise<number> {
  const text = await (await cl.proxy(n).api('/metrics')).text();
  return Number(/^sipbob_redis_errors_total (\d+)$/m.exec(text)?.[1] ?? NaN);
}

t.test('a Redis that hangs never holds up the SIP path', async (t) => {
  const errorsBefore = await redisErrors('sip-a');
  cl.redis.pause();
  const pausedAt = Date.now();
  t.teardown(() => cl.redis.resume());
  await quickRegister(t, 'anna-soft', 'sip-a', 'Redis hanging');
  await callAnswered(t, 'sip-a', '200', 'anna-soft', 'Redis hanging');
  await quickRegister(t, 'anna-soft', 'sip-a', 'Redis hanging, again');
  // The bounded command time (about 2 s): A's commands to the hanging Redis give up and count
  // as failed while it still hangs, rather than waiting for it (then A re-writes what it owns).
  const gaveUp = await within('A counts failed Redis commands while Redis still hangs', async () => (await redisErrors('sip-a')) > errorsBefore, 4000, 100);
  t.type(gaveUp, 'number', `Redis hanging: A's commands gave up (sipbob_redis_errors_total ${errorsBefore} -> ${await redisErrors('sip-a')}, ${Date.now() - pausedAt} ms after the pause)`);
  cl.redis.resume();
  const seen = await onAll(['sip-b'], 'B lists anna-soft', (n) => lists(n, ['anna-soft']), 8000);
  t.equal(seen, true, 'after Redis resumes, B lists the binding A took while it hung', { details: seen === true ? undefined : logs() });
});
