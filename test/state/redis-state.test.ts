/**
 * RedisState against a real redis-server (Debian's): two or three "instances" in one process,
 * each with its own stores, sharing one Redis. What one instance changes, the others mirror;
 * a dead instance is reaped; Redis gone and back is caught up.
 */
import { Redis } from 'ioredis';
import pino from 'pino';
import t, { type Test } from 'tap';
import { CallTracker } from '../../src/calls/tracker.js';
import type { Config } from '../../src/config/types.js';
import { Directory } from '../../src/directory/directory.js';
import { LocationService } from '../../src/location/location.js';
import { persistStores, restoreStores, type Stores } from '../../src/state/persist-stores.js';
import { RedisState, type SharedHooks } from '../../src/state/redis/redis-state.js';
import type { Loaded } from '../../src/state/types.js';
import { binding } from '../location/fixtures.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

const PORT = 26401;
const URL_ = `redis://127.0.0.1:${PORT}/0`;
const config = {
  extensions: [
    { number: '200', name: 'Anna', busyOnBusy: true, declineEndsCall: false, devices: [{ username: 'anna', password: 'pw' }, { username: 'anna2', password: 'pw' }] },
    { number: '100', name: 'Hotline', busyOnBusy: false, declineEndsCall: false, devices: [{ username: 'desk', password: 'pw' }] },
  ],
} as unknown as Config;
const log = pino({ level: 'silent' });

/** A throwaway redis-server (test/support/redis-server.ts): nothing saved, killed at exit. */
let server: RedisServer;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until_(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await sleep(20);
  }
}

interface Instance extends Stores {
  state: RedisState;
}

async function instance(name: string, host: string, leaseMs = 30_000, hooks: SharedHooks = {}): Promise<Instance> {
  const state = new RedisState({ url: URL_, instance: name, address: { transport: 'udp', address: host, port: 5060 }, leaseMs, maxBindingMs: 3_600_000, log, connectWaitMs: 1000, commandTimeoutMs: 500 });
  const s: Instance = { location: new LocationService(), calls: new CallTracker(), directory: new Directory(config), state };
  persistStores(s, state);
  restoreStores(s, await state.load(), state);
  state.attach(s, hooks);
  return s;
}

/** A and B on a Redis emptied for the test; both closed, and the raw client, at its end. */
async function pair(t: Test, leaseMs = 30_000): Promise<{ raw: Redis; a: Instance; b: Instance }> {
  const raw = new Redis(URL_);
  await raw.flushall();
  const a = await instance('a', '127.0.3.101', leaseMs);
  const b = await instance('b', '127.0.3.102', leaseMs);
  t.teardown(async () => {
    await a.state.close();
    await b.state.close();
    raw.disconnect();
  });
  return { raw, a, b };
}

const anna = (port: number, extra = {}) => binding('anna', port, Date.now() + 600_000, extra);
const call = (id: string, ext = '200') => ({ callId: id, fromTag: 'f', toTag: 't', parties: [{ extension: ext, device: 'anna', direction: 'inbound' as const }], ends: null, sessionExpires: 0 });

t.before(async () => {
  server = await startRedis({ port: PORT });
});
t.teardown(() => server.close());

t.test('bindings, calls and settings of one instance are mirrored by the other, counted once in Redis', async (t) => {
  const raw = new Redis(URL_);
  await raw.flushall();
  const endAsked: string[] = [];
  const a = await instance('a', '127.0.3.101', 30_000, { endCall: (id) => endAsked.push(id) });
  const b = await instance('b', '127.0.3.102');
  t.teardown(async () => {
    await a.state.close();
    await b.state.close();
    raw.disconnect();
  });

  a.location.upsert(anna(5062));
  await until_('B mirrors the binding', () => b.location.lookup('anna').length === 1);
  const mirrored = b.location.lookup('anna')[0]!;
  t.equal(mirrored.owner, 'a', 'owned by A');
  t.strictSame(mirrored.path, { transport: 'udp', address: '127.0.3.101', port: 5060 }, 'reached through A');
  t.equal(a.location.lookup('anna')[0]!.owner, undefined, 'A keeps it as its own');
  t.ok(b.state.isPeer({ transport: 'udp', address: '127.0.3.101', port: 5060 }), 'A is a peer of B');
  t.notOk(b.state.isPeer({ transport: 'udp', address: '127.0.3.102', port: 5060 }), 'B is no peer of itself');

  const c = a.calls.confirmed(call('c1'), 600)!;
  await until_('B counts the call', () => b.calls.activeFor('200') === 1);
  t.equal(await raw.hget('sipbob:busy', '200'), '1', 'the atomic count in Redis');
  t.equal(b.calls.byId(c.id)?.owner, 'a');

  // Concurrent calls of one extension through both instances: each counted once everywhere.
  a.calls.confirmed(call('c2', '100'), 600);
  b.calls.confirmed(call('c3', '100'), 600);
  await until_('both count two calls of 100', () => a.calls.activeFor('100') === 2 && b.calls.activeFor('100') === 2);
  t.equal(await raw.hget('sipbob:busy', '100'), '2');

  // DELETE /api/calls/{id} on B: A, the owner, is asked to end it.
  b.state.askToEnd(b.calls.byId(c.id)!);
  await until_('A is asked to end the call', () => endAsked.length === 1);
  t.strictSame(endAsked, [c.id]);

  a.calls.end(c, 'bye');
  await until_('B uncounts the call', () => b.calls.activeFor('200') === 0);
  t.equal(await raw.hget('sipbob:busy', '200'), null, 'the count goes when it reaches 0');

  b.directory.setBusyOnBusy('200', false);
  await until_('A sees the setting', () => a.directory.busyOnBusy('200') === false);

  // Un-registered through B: A, the owner, removes it (and says so).
  b.location.remove('anna', anna(5062).contact, 'unregistered');
  await until_('A removed its binding', () => a.location.lookup('anna').length === 0);
  t.equal(await raw.hlen('sipbob:bindings:a'), 0);

  // Bans: made on one instance, in force on all; lifted on one, lifted on all.
  const until = Date.now() + 60_000;
  a.state.bans.put({ address: '127.0.9.9', reason: 'flood', until });
  await until_('B has the ban', () => b.state.bans.get('127.0.9.9')?.until === until);
  t.equal(await raw.hexists('sipbob:bans', '127.0.9.9'), 1);
  b.state.bans.remove('127.0.9.9');
  await until_('A lifted it', () => a.state.bans.get('127.0.9.9') === undefined);
  t.equal(await raw.hexists('sipbob:bans', '127.0.9.9'), 0);

  // Nonces: one key for all.
  const [ka, kb] = [await a.state.nonceSecret(), await b.state.nonceSecret()];
  t.ok(ka && kb && ka.equals(kb), 'both instances use the same nonce key');
});

t.test('a device moves to B with the same contact while its old flow closes at A: B keeps its binding', async (t) => {
  const { raw, a, b } = await pair(t);
  const tcp = (address: string, port: number) => ({ source: { transport: 'tcp' as const, address, port } });
  const flow = { instance: '<urn:uuid:0000-roam>', regId: 1 };
  a.location.upsert(anna(5062, { ...tcp('127.0.3.50', 40001), ...flow }));
  await until_('B mirrors the binding', () => b.location.lookup('anna')[0]?.owner === 'a');

  // In one tick, before either hears the other: the device registers the same contact through
  // B (a new connection), and its old connection to A closes there.
  b.location.upsert(anna(5062, { ...tcp('127.0.3.60', 40002), ...flow, callId: 'cid-roamed' }));
  t.equal(a.location.removeFlow({ transport: 'tcp', address: '127.0.3.50', port: 40001 }), 1, 'A removes its own binding');
  await until_('A mirrors B\'s binding', () => a.location.lookup('anna')[0]?.owner === 'b');
  await sleep(200); // A's removal reached B as well
  const kept = b.location.lookup('anna');
  t.equal(kept.length, 1, 'B keeps its binding');
  t.equal(kept[0]?.owner, undefined, 'as its own');
  t.equal(kept[0]?.callId, 'cid-roamed');
  t.same(Object.keys(await raw.hgetall('sipbob:bindings:b')), [`anna\n${anna(5062).contact}`], 'Redis has it under B');
  t.equal(await raw.hlen('sipbob:bindings:a'), 0, 'and nothing under A');

  // A removal for B's binding through A (an un-REGISTER there) still takes it everywhere.
  a.location.remove('anna', anna(5062).contact, 'unregistered');
  await until_('B removed its binding', () => b.location.lookup('anna').length === 0);
  t.equal(await raw.hlen('sipbob:bindings:b'), 0);
});

t.test('a device moves to another flow through B while Redis is down: after the resync only the later flow remains', async (t) => {
  let raw = new Redis(URL_);
  await raw.flushall();
  raw.disconnect();
  const a = await instance('a', '127.0.3.101');
  const b = await instance('b', '127.0.3.102');
  t.teardown(async () => {
    await a.state.close();
    await b.state.close();
  });
  const flow = { instance: '<urn:uuid:0000-roam-down>', regId: 1 };
  const old = anna(5062, { ...flow, expiresAt: Date.now() + 600_000 });
  a.location.upsert(old);
  await until_('B mirrors the binding', () => b.location.lookup('anna')[0]?.owner === 'a');

  await server.kill9();
  await until_('both see Redis down', () => a.state.status === 'down' && b.state.status === 'down');
  // The registrar of B: the flow's old binding (A's) is replaced, the new one is B's. A hears nothing.
  b.location.remove('anna', old.contact, 'replaced');
  const roamed = anna(5064, { ...flow, expiresAt: Date.now() + 600_000, callId: 'cid-roamed' });
  b.location.upsert(roamed);

  await server.restart(); // empty: each instance writes again what it owns
  raw = new Redis(URL_);
  t.teardown(() => raw.disconnect());
  const only = (s: Instance) => s.location.lookup('anna').map((x) => `${x.contact} ${x.owner ?? 'own'}`);
  await until_('only the later flow remains', async () =>
    only(a).join() === `${roamed.contact} b` && only(b).join() === `${roamed.contact} own` && (await raw.hlen('sipbob:bindings:a')) === 0 && (await raw.hlen('sipbob:bindings:b')) === 1,
  8000).catch(() => undefined);
  t.same(only(a), [`${roamed.contact} b`], 'A dropped its own binding of the old flow and mirrors B\'s');
  t.same(only(b), [`${roamed.contact} own`], 'B keeps its own only');
  t.same(Object.keys(await raw.hgetall('sipbob:bindings:a')), [], 'nothing under A in Redis');
  t.same(Object.keys(await raw.hgetall('sipbob:bindings:b')), [`anna\n${roamed.contact}`], 'the later flow under B');
});

t.test('a new instance loads everything; a dead instance is reaped within its lease', async (t) => {
  const raw = new Redis(URL_);
  await raw.flushall();
  const a = await instance('a', '127.0.3.101', 3000);
  a.location.upsert(anna(5062));
  a.calls.confirmed(call('c1'), 600);
  const b = await instance('b', '127.0.3.102', 3000);
  await until_('A wrote its call', async () => (await raw.hget('sipbob:busy', '200')) === '1');
  const c = await instance('c', '127.0.3.103', 3000);
  t.teardown(async () => {
    await b.state.close();
    await c.state.close();
    raw.disconnect();
  });
  t.equal(c.location.lookup('anna')[0]?.owner, 'a', 'C loaded the binding at start');
  await until_('B and C count the call', () => b.calls.activeFor('200') === 1 && c.calls.activeFor('200') === 1);

  // A dies: its connection drops without leaving (as kill -9 would).
  const died = Date.now();
  (a.state as unknown as { redis: Redis; sub: Redis; timers: NodeJS.Timeout[] }).timers.forEach(clearInterval);
  (a.state as unknown as { redis: Redis }).redis.disconnect();
  (a.state as unknown as { sub: Redis }).sub.disconnect();
  await until_('B and C stop counting the dead instance\'s call', () => b.calls.activeFor('200') === 0 && c.calls.activeFor('200') === 0, 6000);
  t.ok(Date.now() - died <= 3000 + 500, `reaped within the lease (${Date.now() - died} ms)`);
  t.equal(b.location.lookup('anna').length, 0, 'its bindings are gone');
  t.equal(await raw.hget('sipbob:busy', '200'), null, 'the count in Redis is 0');
  t.equal(await raw.hlen('sipbob:bindings:a'), 1, 'kept for A to take up again');
  t.ok((await raw.pttl('sipbob:bindings:a')) > 3_000_000, 'expiring with the longest registration');

  // A restarts: its bindings are its own again, the others reach them through it.
  const a2 = await instance('a', '127.0.3.101', 3000);
  t.teardown(() => a2.state.close());
  t.equal(a2.location.lookup('anna')[0]?.owner, undefined, 'A took its binding up again');
  t.equal(await raw.pttl('sipbob:bindings:a'), -1, 'no longer expiring');
  await until_('B mirrors it again, without a new REGISTER', () => b.location.lookup('anna')[0]?.owner === 'a');
});

t.test('Redis gone and back: each instance serves from memory and catches up', async (t) => {
  let raw = new Redis(URL_);
  await raw.flushall();
  raw.disconnect();
  const a = await instance('a', '127.0.3.101');
  const b = await instance('b', '127.0.3.102');
  t.teardown(async () => {
    await a.state.close();
    await b.state.close();
  });
  a.location.upsert(anna(5062));
  await until_('B mirrors', () => b.location.lookup('anna').length === 1);
  t.equal(a.state.status, 'up');

  a.directory.setBusyOnBusy('100', true);
  await until_('B has the setting', () => b.directory.busyOnBusy('100'));
  const secret = await a.state.nonceSecret();

  await server.kill9();
  await until_('A sees Redis down', () => a.state.status === 'down');
  // An instance started while Redis is down gets the shared nonce key when Redis is back.
  const secrets: Buffer[] = [];
  const c3 = await instance('c', '127.0.3.103', 30_000, { nonceSecret: (k) => secrets.push(k) });
  t.teardown(() => c3.state.close());
  t.equal(await c3.state.nonceSecret(), undefined, 'no key while Redis is down');
  // Changes while Redis is away: they stay in memory.
  a.location.upsert(anna(5064));
  const c = a.calls.confirmed(call('c9'), 600)!;
  b.location.upsert(binding('desk', 5070, Date.now() + 600_000, { extension: '100' }));
  t.equal(a.location.lookup('anna').length, 2, 'A keeps serving from memory');

  await server.restart(); // empty: as a Redis restarted without persistence
  await until_('both caught up', () => b.location.lookup('anna').length === 2 && b.calls.activeFor('200') === 1 && a.location.lookup('desk').length === 1, 8000);
  raw = new Redis(URL_);
  t.teardown(() => raw.disconnect());
  t.equal(await raw.hget('sipbob:busy', '200'), '1', 'the call is counted again in Redis');
  t.equal(await raw.hget('sipbob:settings', '100'), '{"busyOnBusy":true}', 'a setting made before Redis restarted empty is written again');
  await until_('C got the shared nonce key', () => secrets.length > 0);
  const shared = Buffer.from((await raw.get('sipbob:nonce-secret'))!, 'hex');
  t.ok(secrets.at(-1)!.equals(shared), 'C uses the key in Redis');
  t.ok((await a.state.nonceSecret())!.equals(shared), 'and so does A (whichever offered its key back first)');
  t.ok(secret, 'A had a key before');
  t.ok(a.state.stats.resyncs >= 1 && a.state.stats.errors >= 1);
  a.calls.end(c, 'bye');
  await until_('B uncounts it', () => b.calls.activeFor('200') === 0);

  // C, started while Redis was down, hears the others' changes now: it loaded A's bindings (A is
  // live for it, so its reaper tick reads nothing more of A's), and a new one comes on the channel.
  await until_("C loaded A's bindings", () => c3.location.lookup('anna').length === 2);
  a.location.upsert(anna(5066));
  await until_("C mirrors A's new binding, heard on the channel", () => c3.location.lookup('anna').length === 3, 3000).catch((e: Error) =>
    t.fail(e.message, { c: c3.location.lookup('anna').map((x) => x.contact) }),
  );
});

t.test('an instance reaped while alive (a stall outlasted its lease) writes its state again and the others take it back', async (t) => {
  const { raw, a, b } = await pair(t);
  a.location.upsert(anna(5062));
  a.calls.confirmed(call('s1'), 600);
  await until_('B mirrors both', () => b.calls.activeFor('200') === 1 && b.location.lookup('anna').length === 1);
  await raw.zadd('sipbob:instances', 1, 'a'); // A's lease "ran out"
  await until_('B reaped A', () => b.state.stats.reaped === 1);
  await until_('A wrote its call and binding again, and B took them back', () => b.calls.activeFor('200') === 1 && b.location.lookup('anna')[0]?.owner === 'a', 5000);
  t.equal(await raw.hget('sipbob:busy', '200'), '1', 'counted once in Redis again');
  t.ok(a.state.stats.resyncs >= 1, 'A resynchronised');
});

t.test('Redis lost its data without dropping a connection (FLUSHALL, eviction): each instance writes its state again at its next lease renewal', async (t) => {
  // Lease 3 s: renewed every second.
  const { raw, a, b } = await pair(t, 3000);
  a.location.upsert(anna(5062));
  a.calls.confirmed(call('f1'), 600);
  b.location.upsert(binding('desk', 5070, Date.now() + 600_000));
  await until_('each mirrors the other', () => b.calls.activeFor('200') === 1 && b.location.lookup('anna').length === 1 && a.location.lookup('desk').length === 1);
  const resyncs = [a.state.stats.resyncs, b.state.stats.resyncs];

  await raw.flushall();
  await until_(
    'Redis holds both instances, their bindings and the call again',
    async () =>
      (await raw.zcard('sipbob:instances')) === 2 &&
      (await raw.hlen('sipbob:bindings:a')) === 1 &&
      (await raw.hlen('sipbob:bindings:b')) === 1 &&
      (await raw.hget('sipbob:busy', '200')) === '1',
    4000,
  );
  t.pass('A and B wrote what they own again');
  t.ok(a.state.stats.resyncs > resyncs[0]! && b.state.stats.resyncs > resyncs[1]!, 'each resynchronised');
  await until_('each still lists the other\'s binding and counts the call', () => b.calls.activeFor('200') === 1 && b.location.lookup('anna')[0]?.owner === 'a' && a.location.lookup('desk')[0]?.owner === 'b');
  t.pass('the mirrors converge');

  // And it keeps working: a call A confirms now is counted by B as before.
  a.calls.confirmed(call('f2', '100'), 600);
  await until_('B counts the new call', () => b.calls.activeFor('100') === 1);
  t.equal(await raw.hget('sipbob:busy', '100'), '1');
});

t.test("the 'resynced' announcement: an instance that lost only its own connection for a moment tells the others what changed meanwhile", async (t) => {
  // Nothing but the announcement can tell B here: A's lease never lapses (B never sees A leave
  // and rejoin, so its reaper tick reads nothing of A's), and B's own connections stay up (B
  // does not resync). Redis keeps its data; only A's command connection is dropped.
  const { raw, a, b } = await pair(t);
  a.location.upsert(anna(5062));
  a.location.upsert(binding('desk', 5070, Date.now() + 600_000, { extension: '100' }));
  const s1 = a.calls.confirmed(call('s1'), 600)!;
  await until_('B mirrors both bindings and the call', () => b.location.lookup('anna').length === 1 && b.location.lookup('desk').length === 1 && b.calls.activeFor('200') === 1);

  // The server drops A's command connection (a network blip between A and Redis alone). A's
  // writes fail at once while it reconnects (about 100 ms): these changes stay in A's memory.
  const aRedis = (a.state as unknown as { redis: Redis }).redis;
  const changed = new Promise<void>((resolve) =>
    aRedis.once('close', () => {
      a.location.upsert(anna(5064));
      a.location.remove('desk', binding('desk', 5070).contact, 'unregistered');
      a.calls.confirmed(call('s2', '100'), 600);
      a.calls.end(s1, 'bye');
      resolve();
    }),
  );
  const errors = a.state.stats.errors;
  await raw.client('KILL', 'ID', String(await aRedis.client('ID')));
  await changed;
  await until_("A's writes during the blip failed", () => a.state.stats.errors > errors, 1000);
  await until_('A resynchronised', () => a.state.stats.resyncs >= 1 && a.state.status === 'up');

  await until_(
    "B took A's state from the announcement",
    () =>
      b.location.lookup('anna').length === 2 &&
      b.calls.activeFor('100') === 1 &&
      b.calls.activeFor('200') === 0 &&
      b.location.lookup('desk').length === 0,
    3000,
  ).catch((e: Error) => t.fail(e.message, { anna: b.location.lookup('anna').map((x) => x.contact), desk: b.location.lookup('desk').length, calls: [...b.calls.all()].map((c) => c.id) }));
  t.equal(b.location.lookup('anna').find((x) => x.contact === anna(5064).contact)?.owner, 'a', 'B mirrors the binding A took during the blip, owned by A');
  t.equal(b.calls.activeFor('100'), 1, 'B counts the call A confirmed during the blip');
  t.equal(b.calls.activeFor('200'), 0, 'B no longer counts the call A ended during the blip (200 is not left busy on B)');
  t.equal(b.location.lookup('desk').length, 0, 'B no longer lists the binding removed through A during the blip');
  t.equal(b.state.stats.resyncs, 0, 'B did not resynchronise itself: the announcement told it');
  t.equal(await raw.hget('sipbob:busy', '200'), null, 'Redis: 200 uncounted by A\'s resync');
  t.equal(await raw.hget('sipbob:busy', '100'), '1');
});

t.test('a change heard on the channel while an instance resyncs is kept: it is newer than what the resync read', async (t) => {
  const { raw, a, b } = await pair(t);
  a.location.upsert(anna(5062));
  await until_('B mirrors the binding', () => b.location.lookup('anna').length === 1);

  // B's resync reads Redis; A registers a device and confirms a call just after that read, and
  // B hears both on the channel before the resync replaces what it mirrored with what it read.
  const inner = b.state as unknown as { readAll(): Promise<Loaded>; resyncing: Promise<void> | undefined };
  const readAll = inner.readAll.bind(b.state);
  let during = false;
  inner.readAll = async () => {
    const loaded = await readAll();
    if (!during) {
      during = true;
      a.location.upsert(anna(5064));
      a.calls.confirmed(call('r1', '100'), 600);
      await until_('B heard them while resyncing', () => b.location.lookup('anna').length === 2 && b.calls.activeFor('100') === 1);
    }
    return loaded;
  };
  // What B hears when another instance reaped it: it writes what it owns again and reloads.
  await raw.publish('sipbob:changes', JSON.stringify(['x', null, 'reaped', 'b', null]));
  await until_('B resynced', () => during && b.state.stats.resyncs === 1 && inner.resyncing === undefined);
  t.same(b.location.lookup('anna').map((x) => `${x.contact} ${x.owner}`).sort(), [`${anna(5062).contact} a`, `${anna(5064).contact} a`], "B lists both of A's bindings");
  t.equal(b.calls.activeFor('100'), 1, "B counts A's call");
});

t.test('a removal heard on the channel while an instance resyncs stays removed: what the resync read of it is older', async (t) => {
  const { raw, a, b } = await pair(t);
  a.location.upsert(anna(5062));
  const c = a.calls.confirmed(call('g1'), 600)!;
  await until_('B mirrors the binding and counts the call', () => b.location.lookup('anna').length === 1 && b.calls.activeFor('200') === 1);

  // B's resync has read Redis; A un-registers the device and ends the call just after that
  // read, and B hears both on the channel before the resync applies what it read.
  const inner = b.state as unknown as { readAll(): Promise<Loaded>; resyncing: Promise<void> | undefined };
  const readAll = inner.readAll.bind(b.state);
  let during = false;
  inner.readAll = async () => {
    const loaded = await readAll();
    if (!during) {
      during = true;
      a.location.remove('anna', anna(5062).contact, 'unregistered');
      a.calls.end(c, 'bye');
      await until_('B heard both while resyncing', () => b.location.lookup('anna').length === 0 && b.calls.activeFor('200') === 0);
    }
    return loaded;
  };
  await raw.publish('sipbob:changes', JSON.stringify(['x', null, 'reaped', 'b', null]));
  await until_('B resynced', () => during && b.state.stats.resyncs === 1 && inner.resyncing === undefined);
  t.equal(b.location.lookup('anna').length, 0, "the binding A removed does not come back at B");
  t.equal(b.calls.activeFor('200'), 0, 'the call A ended is not counted again at B (200 is not left busy)');
  t.equal(await raw.hget('sipbob:busy', '200'), null, 'nor in Redis');
});
