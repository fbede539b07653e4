/**
 * Issue 14, "How it is checked", end to end: two instances sip-a (127.0.3.1) and sip-b
 * (127.0.3.2) sharing one redis-server, SIPp as phones and trunks (cluster-kit.ts).
 * - Bindings made through one instance are listed by the other.
 * - (a) Busy on Busy across instances, both ways: a call confirmed through A (a device
 *   registered through A answers) makes an INVITE to the same extension at B get 486 at once,
 *   with no device ringing; Redis' `sipbob:busy` count is 1; after the BYE through A, B rings
 *   again (its own device answers). Then the same with A and B swapped.
 * - (b) Concurrent calls of one shared extension (100, busyOnBusy false) through A and B at
 *   once (its two devices call out through the trunk, two calls each): activeCalls 4 on
 *   both instances and in Redis' busy count; 0 on both after the BYEs.
 * - (g) A setting changed through the API of A (PATCH busyOnBusy) is seen by B's API and
 *   applied by B's SIP side (486 there), and back.
 * Port block 23, Redis 26380. Default calls.keepalive (30 s): no call here lasts that long.
 */
import t, { type Test } from 'tap';
import { assertExit, assertNotRung, call, countReceived, idlePhone, phone, portBlock, portCounter, register, sippServer } from './harness.js';
import { doneWithin, holdCall } from './operator-kit.js';
import { CLUSTER_HOSTS as H, PW, assertRang, busyCount, losingPhone, contactsIn, ownersIn, onAll, startCluster, type Cluster, type ClusterUser, type InstanceName } from './cluster-kit.js';

const P = portBlock(23);
const port = portCounter(P.base + 20);
const TRUNK_OUT_PORT = P.base + 199;
const BOTH: InstanceName[] = ['sip-a', 'sip-b'];

/** Where each device registered: anna-desk and hotline-desk-1 through A, the others through B. */
const DEVICES: Record<Exclude<ClusterUser, 'anna-mobile'>, { local: string; localPort: number; via: InstanceName }> = {
  'anna-desk': { local: H.annaDesk, localPort: P.base + 1, via: 'sip-a' },
  'anna-soft': { local: H.annaSoft, localPort: P.base + 2, via: 'sip-b' },
  'hotline-desk-1': { local: H.hotline1, localPort: P.base + 3, via: 'sip-a' },
  'hotline-desk-2': { local: H.hotline2, localPort: P.base + 4, via: 'sip-b' },
};
type User = keyof typeof DEVICES;
/** The device of 200 registered through each instance. */
const ANNA_AT: Record<InstanceName, User> = { 'sip-a': 'anna-desk', 'sip-b': 'anna-soft', 'sip-c': 'anna-desk' };
const other = (n: InstanceName): InstanceName => (n === 'sip-a' ? 'sip-b' : 'sip-a');

const cl: Cluster = await startCluster(t, { block: 23, redisPort: 26380, trunkOutPort: TRUNK_OUT_PORT });
const dev = (u: User) => ({ username: u, password: PW[u], local: DEVICES[u].local, localPort: DEVICES[u].localPort, remote: cl.remote(DEVICES[u].via) });
const fromTrunk = (via: InstanceName) => ({ local: H.trunkIn, localPort: port(), remote: cl.remote(via), from: 'carrier' });
const logs = () => BOTH.map((n) => `--- ${n}\n${cl.proxy(n).output(3000)}`).join('\n');

t.test('bindings made through one instance are listed by both', async (t) => {
  for (const u of Object.keys(DEVICES) as User[]) assertExit(t, await register(dev(u)), 0, `${u} registered through ${DEVICES[u].via}`);
  const seen = await onAll(
    BOTH,
    'every binding on both instances',
    async (n) => {
      const [e200, e100] = await Promise.all([cl.ext(n, '200'), cl.ext(n, '100')]);
      return (Object.keys(DEVICES) as User[]).every((u) => contactsIn(u.startsWith('anna') ? e200 : e100, u).length === 1);
    },
    5000,
  );
  t.equal(seen, true, 'A and B each list the four bindings (one contact each)', {
    details: seen === true ? undefined : `${JSON.stringify(await Promise.all(BOTH.map((n) => cl.ext(n, '200'))))}\n${logs()}`,
  });
  for (const n of BOTH) {
    const [e200, e100] = await Promise.all([cl.ext(n, '200'), cl.ext(n, '100')]);
    const owners = (Object.keys(DEVICES) as User[]).map((u) => `${u}: ${ownersIn(u.startsWith('anna') ? e200 : e100, u).join(',')}`);
    t.same(owners, (Object.keys(DEVICES) as User[]).map((u) => `${u}: ${DEVICES[u].via}`), `${n}'s API names the instance each device registered through`);
  }
  const keys = await cl.db.keys('sipbob:bindings:*');
  t.same(keys.sort(), ['sipbob:bindings:sip-a', 'sipbob:bindings:sip-b'], 'Redis holds the bindings per owning instance');
});

/** A call from the trunk through `via` to 200 must get 486 at once; `idle` must not ring. */
async function expectBusy(t: Test, via: InstanceName, number: string, idle: User[], why: string): Promise<void> {
  const phones = await Promise.all(idle.map((u) => idlePhone({ ...dev(u), timeoutSec: 3 })));
  cl.procs.push(...phones);
  const started = Date.now();
  const r = await call({ ...fromTrunk(via), to: number, expect: 486, timeoutSec: 10 });
  const ms = Date.now() - started;
  assertExit(t, r, 0, `${why}: a call to ${number} through ${via} gets 486`);
  t.ok(ms < 2500, `${why}: the 486 comes at once (${ms} ms including SIPp start-up)`);
  t.notMatch(r.messages, /SIP\/2\.0 180 /, `${why}: no ringing`);
  for (const p of phones) assertNotRung(t, await p.done, `${why}: ${p.label} does not ring`);
}

for (const owner of BOTH) {
  const peer = other(owner);
  t.test(`(a) a call confirmed through ${owner} makes 200 busy at ${peer}; after the BYE through ${owner}, ${peer} rings again`, async (t) => {
    const answering = await phone({ ...dev(ANNA_AT[owner]), scenario: 'phone-answer.xml', register: false, ringMs: 200, timeoutSec: 30 });
    // The device of the other instance rings too (relayed by its instance) and loses.
    const losing = await losingPhone(dev(ANNA_AT[peer]));
    cl.procs.push(answering, losing);
    const held = holdCall({ callIdPrefix: `cl-busy-${owner}`, trigger: H.trigger, ...fromTrunk(owner), to: '200', timeoutSec: 30, label: `held call trunk -> ${owner} -> 200` });
    cl.procs.push(held.proc);
    const up = await onAll(BOTH, 'activeCalls 1 on 200 on both instances', async (n) => (await cl.ext(n, '200')).activeCalls === 1, 8000);
    t.equal(up, true, `the call is up through ${owner}: activeCalls 1 on 200 at A and at B`, { details: up === true ? undefined : logs() });
    t.equal(await busyCount(cl.db, '200'), 1, 'Redis sipbob:busy 200 = 1');
    const lost = await doneWithin(losing, 3000);
    t.comment(`${ANNA_AT[peer]} (through ${peer}) got ${countReceived(lost.messages, 'INVITE')} INVITE(s) and ${countReceived(lost.messages, 'CANCEL')} CANCEL(s) for the call through ${owner}`);

    // The device registered through the other instance listens: it must not ring.
    await expectBusy(t, peer, '200', [ANNA_AT[peer]], `200 in a call through ${owner}`);

    await held.hangup();
    const [rh, ra] = await Promise.all([doneWithin(held.proc, 8000), doneWithin(answering, 8000)]);
    assertExit(t, rh, 0, `the caller hung up through ${owner} (BYE, 200)`);
    assertRang(t, ra, `${ANNA_AT[owner]} answered and got the BYE`);
    const free = await onAll(BOTH, 'activeCalls 0 on 200 on both instances', async (n) => (await cl.ext(n, '200')).activeCalls === 0, 5000);
    t.equal(free, true, 'after the BYE, 200 is free at A and at B', { details: free === true ? undefined : logs() });
    t.equal(await busyCount(cl.db, '200'), 0, 'Redis sipbob:busy 200 = 0');

    // It rings again at the other instance: the device registered there answers.
    const answers = await phone({ ...dev(ANNA_AT[peer]), scenario: 'phone-answer.xml', register: false, ringMs: 200, timeoutSec: 15 });
    const loses = await losingPhone(dev(ANNA_AT[owner]));
    cl.procs.push(answers, loses);
    const r = await call({ ...fromTrunk(peer), to: '200', pauseMs: 300, timeoutSec: 12 });
    assertExit(t, r, 0, `a new call through ${peer} to 200 rings and is answered`);
    assertRang(t, await doneWithin(answers, 5000), `${ANNA_AT[peer]} rang and answered`);
    await doneWithin(loses, 3000);
    const idle = await onAll(BOTH, 'activeCalls 0 on 200 on both', async (n) => (await cl.ext(n, '200')).activeCalls === 0, 5000);
    t.equal(idle, true, 'no call left on 200');
  });
}

t.test('(b) concurrent calls of 100 through A and B at once are counted on both and in Redis', async (t) => {
  const trunk = await sippServer({
    scenario: 'phone-answer.xml',
    local: H.trunkOut,
    localPort: TRUNK_OUT_PORT,
    calls: 4,
    pauseMs: 100,
    timeoutSec: 40,
    label: 'carrier trunk (phone-answer.xml x4)',
  });
  cl.procs.push(trunk);
  // hotline-desk-1 calls out twice through A, hotline-desk-2 twice through B, all at once.
  const callers: Array<{ user: User; via: InstanceName }> = [
    { user: 'hotline-desk-1', via: 'sip-a' },
    { user: 'hotline-desk-1', via: 'sip-a' },
    { user: 'hotline-desk-2', via: 'sip-b' },
    { user: 'hotline-desk-2', via: 'sip-b' },
  ];
  const held = callers.map(({ user, via }, i) =>
    holdCall({
      callIdPrefix: `cl-conc-${i}`,
      trigger: H.trigger,
      local: DEVICES[user].local,
      localPort: port(),
      remote: cl.remote(via),
      to: `00493055510${i}`,
      from: user,
      password: PW[user],
      timeoutSec: 30,
      label: `held call ${user} -> ${via} -> trunk (${i})`,
    }),
  );
  cl.procs.push(...held.map((h) => h.proc));
  const up = await onAll(BOTH, 'activeCalls 4 on 100 on both instances', async (n) => (await cl.ext(n, '100')).activeCalls === 4, 10000);
  const counts = await Promise.all(BOTH.map(async (n) => `${n}: ${(await cl.ext(n, '100')).activeCalls}`));
  t.equal(up, true, `4 calls of 100 (2 through A, 2 through B): activeCalls 4 on both (${counts.join(', ')})`, { details: up === true ? undefined : logs() });
  t.equal(await busyCount(cl.db, '100'), 4, 'Redis sipbob:busy 100 = 4');
  t.equal(await busyCount(cl.db, '200'), 0, '...and 200 untouched');

  for (const h of held) await h.hangup();
  const results = await Promise.all(held.map((h) => doneWithin(h.proc, 8000)));
  for (const r of results) assertExit(t, r, 0, 'the call was answered by the trunk and hung up');
  assertRang(t, await doneWithin(trunk, 5000), 'the trunk answered 4 calls and got 4 BYEs');
  const free = await onAll(BOTH, 'activeCalls 0 on 100 on both instances', async (n) => (await cl.ext(n, '100')).activeCalls === 0, 5000);
  t.equal(free, true, 'after the BYEs, 100 has no call at A nor at B', { details: free === true ? undefined : logs() });
  t.equal(await busyCount(cl.db, '100'), 0, 'Redis sipbob:busy 100 = 0');
});

t.test('(g) busyOnBusy changed through the API of A is seen and applied by B, and back through B', async (t) => {
  const patch = await cl.proxy('sip-a').api('/api/extensions/100', { method: 'PATCH', body: JSON.stringify({ busyOnBusy: true }) });
  t.equal(patch.status, 200, 'PATCH 100 {busyOnBusy: true} on A');
  const seen = await onAll(['sip-b'], 'B lists 100 busyOnBusy true', async (n) => (await cl.ext(n, '100')).busyOnBusy === true, 3000);
  t.equal(seen, true, "B's API shows the setting made on A");

  // hotline-desk-1 (through A) takes a call through A; B must now answer 486 for 100.
  const answering = await phone({ ...dev('hotline-desk-1'), scenario: 'phone-answer.xml', register: false, ringMs: 200, timeoutSec: 30 });
  const losing = await losingPhone(dev('hotline-desk-2'));
  cl.procs.push(answering, losing);
  const held = holdCall({ callIdPrefix: 'cl-setting', trigger: H.trigger, ...fromTrunk('sip-a'), to: '100', timeoutSec: 30, label: 'held call trunk -> sip-a -> 100' });
  cl.procs.push(held.proc);
  const up = await onAll(BOTH, 'activeCalls 1 on 100 on both', async (n) => (await cl.ext(n, '100')).activeCalls === 1, 8000);
  t.equal(up, true, 'the call of 100 through A is up on both');
  await doneWithin(losing, 3000);
  await expectBusy(t, 'sip-b', '100', ['hotline-desk-2'], '100 (Busy on Busy set through A) in a call through A');
  await held.hangup();
  await Promise.all([doneWithin(held.proc, 8000), doneWithin(answering, 8000)]);

  const back = await cl.proxy('sip-b').api('/api/extensions/100', { method: 'PATCH', body: JSON.stringify({ busyOnBusy: false }) });
  t.equal(back.status, 200, 'PATCH 100 {busyOnBusy: false} on B');
  const seenA = await onAll(['sip-a'], 'A lists 100 busyOnBusy false', async (n) => (await cl.ext(n, '100')).busyOnBusy === false, 3000);
  t.equal(seenA, true, "A's API shows the setting made on B");
  const stored = await cl.db.hgetall('sipbob:settings');
  t.ok(Object.keys(stored).length > 0, `the setting is in Redis (sipbob:settings: ${JSON.stringify(stored)})`);
});

t.test('the Redis keys of the design', async (t) => {
  const instances = await cl.db.zrange('sipbob:instances', 0, -1);
  t.same(instances.sort(), ['sip-a', 'sip-b'], 'sipbob:instances lists both live instances');
  const addresses = await cl.db.hgetall('sipbob:instance-address');
  t.match(addresses, { 'sip-a': /127\.0\.3\.1/, 'sip-b': /127\.0\.3\.2/ }, 'sipbob:instance-address names their cluster.address');
  t.comment(`Redis keys: ${(await cl.db.keys('sipbob:*')).sort().join(' ')}`);
});
