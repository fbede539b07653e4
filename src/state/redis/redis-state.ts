/**
 * State shared by several instances through Redis (storage.redis). Memory stays the read path:
 * every instance mirrors every binding, call and setting in its own stores. This class is the
 * stores' subscriber, like the embedded journal: it writes this instance's changes to Redis
 * behind the SIP path (never awaited there) and applies the other instances' changes, announced
 * on one pub/sub channel, to the stores without events.
 *
 * Ownership: an instance owns the bindings registered through it (it holds the device's NAT
 * flow or connection) and the calls it forked (it probes and ends them). What it owns is
 * leased: it renews its lease in `instances`; an instance whose lease ran out is reaped by the
 * first other instance that notices, atomically (scripts.ts), so a dead instance leaves no
 * extension busy.
 *
 * Redis down: writes fail at once (no offline queue, bounded command time), the instance keeps
 * serving from memory, and when Redis is back it makes Redis hold exactly what it owns and
 * reloads what the others own (resync).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ActiveCall } from '../../calls/active-call.js';
import type { ExtensionSetting } from '../../directory/setting.js';
import { jsonString } from '../../lib/json-text.js';
import type { Binding } from '../../location/binding.js';
import { formatEndpoint, parseEndpoint, type Endpoint } from '../../transport/endpoint.js';
import { bindingKey, type Stores } from '../persist-stores.js';
import { storedCodecs } from '../records.js';
import type { Kind, Loaded, Persistence, StoredKinds } from '../types.js';
import { CALL_DOWN, CALL_UP, REAP, SYNC_OWN_CALLS } from './scripts.js';
import { decodeBan, SharedBans } from './shared-bans.js';
import type { Ban } from '../../security/bans.js';

export interface RedisStateOptions {
  url: string;
  /** This instance's name (cluster.instance). */
  instance: string;
  /** Where the other instances reach this one over SIP (cluster.address, UDP). */
  address: Endpoint;
  /** How long what this instance owns outlives its last lease renewal, ms. */
  leaseMs: number;
  /** The longest registration (registrar.maxExpires), ms: a dead instance's bindings live no longer. */
  maxBindingMs: number;
  log: Logger;
  /** How long start waits for Redis before serving from memory alone, ms. Default 5000. */
  connectWaitMs?: number;
  /** Bound on one Redis command, so a hanging Redis is noticed, ms. Default 2000. */
  commandTimeoutMs?: number;
  now?: () => number;
}

/** Changes announced on the channel: [instance, its address, kind, key, value JSON or null]. */
type Change = [string, string, ChangeKind, string, unknown];
type ChangeKind = Kind | 'ban' | 'reaped' | 'end-call' | 'resynced';

/** What else hears the other instances' changes. */
export interface SharedHooks {
  /** A ban was made or lifted by another instance (the guard refreshes that address). */
  banChanged?(address: string): void;
  /** The shared nonce key, read when Redis answered only after start (nonceSecret() found none). */
  nonceSecret?(secret: Buffer): void;
  /** Another instance asks this one, the call's owner, to end a call (DELETE /api/calls there). */
  endCall?(id: string): void;
  /** The live instances other than this one changed: their addresses (to trust them like trunks). */
  peersChanged?(addresses: readonly string[]): void;
}

export type RedisStatus = 'up' | 'down';

export interface RedisStats {
  /** Commands that failed (Redis down, slow or refusing). */
  errors: number;
  /** Times this instance re-wrote what it owns and reloaded the others' state. */
  resyncs: number;
  /** Dead instances this instance reaped. */
  reaped: number;
}

const EMPTY_SET = new Set<string>();

/** The Lua scripts as commands: ioredis sends each by its SHA1 (EVALSHA), the text only once. */
interface ScriptCommands {
  callUp(...args: Array<string | number>): Promise<number>;
  callDown(...args: Array<string | number>): Promise<number>;
  reap(...args: Array<string | number>): Promise<number>;
  syncOwnCalls(...args: Array<string | number>): Promise<number>;
}

export class RedisState implements Persistence {
  readonly stats: RedisStats = { errors: 0, resyncs: 0, reaped: 0 };
  /** The ban store for the security guard: shared with every instance. */
  readonly bans: SharedBans;
  private hooks: SharedHooks = {};
  private readonly redis: Redis & ScriptCommands;
  private readonly sub: Redis;
  private readonly me: string;
  private readonly myAddress: string;
  /** How every change this instance publishes begins (change()): its name, then its address. */
  private readonly echoPrefix: string;
  private readonly changePrefix: string;
  /** A stored call record's first member: the instance that owns it. */
  private readonly ownerMember: string;
  private readonly now: () => number;
  private readonly k: ReturnType<typeof keys>;
  private stores: Stores | undefined;
  /** The live instances (this one included) and their SIP addresses. */
  private live = new Map<string, Endpoint>();
  private peerHosts = EMPTY_SET;
  /** Set when a write failed: what we own is re-written when Redis answers again. */
  private dirty = false;
  /** Settings changed here while Redis was unreachable (the others' must not be written back). */
  private dirtySettings = new Set<string>();
  private resyncing: Promise<void> | undefined;
  /**
   * Removals heard on the channel while a read of Redis is under way (goneKey). The read's
   * answer and the removal come over different connections, so what it returns of them may be
   * older than the removal and must not bring them back. Undefined when no read is under way.
   */
  private goneDuringRead: Set<string> | undefined;
  private reads = 0;
  private timers: NodeJS.Timeout[] = [];
  private closed = false;
  private wasReady = false;
  /** The shared nonce key as this instance uses it, once Redis gave it. */
  private secret: Buffer | undefined;
  /** The shared nonce key was asked for but Redis did not answer. */
  private secretWanted = false;

  constructor(private readonly o: RedisStateOptions) {
    this.me = o.instance;
    this.myAddress = formatEndpoint(o.address);
    this.echoPrefix = `[${jsonString(this.me)},`;
    this.changePrefix = `${this.echoPrefix}${jsonString(this.myAddress)},`;
    this.ownerMember = `{"owner":${jsonString(this.me)},`;
    this.now = o.now ?? Date.now;
    this.k = keys();
    this.bans = new SharedBans({
      put: (ban) => {
        const json = banJson(ban);
        this.run(this.redis.multi().hset(this.k.bans, ban.address, json).publish(this.k.changes, this.change('ban', ban.address, json)).exec());
      },
      remove: (address) => this.run(this.redis.multi().hdel(this.k.bans, address).publish(this.k.changes, this.change('ban', address, 'null')).exec()),
    });
    const options = {
      lazyConnect: true,
      // A command while disconnected fails at once instead of piling up behind the SIP path.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: o.commandTimeoutMs ?? 2000,
      connectTimeout: 2000,
      retryStrategy: (times: number) => Math.min(100 * times, 1000),
    };
    const redis = new Redis(o.url, options);
    redis.defineCommand('callUp', { numberOfKeys: 4, lua: CALL_UP });
    redis.defineCommand('callDown', { numberOfKeys: 4, lua: CALL_DOWN });
    redis.defineCommand('reap', { numberOfKeys: 7, lua: REAP });
    redis.defineCommand('syncOwnCalls', { numberOfKeys: 3, lua: SYNC_OWN_CALLS });
    this.redis = redis as Redis & ScriptCommands;
    // The subscriber keeps its subscription across reconnects (ioredis re-subscribes itself).
    // Its SUBSCRIBE waits for a connection however long Redis is away: with the commands' retry
    // limit (0) it would be dropped at the first failed connect, and an instance started while
    // Redis is down would never hear the others' changes.
    this.sub = new Redis(o.url, { ...options, enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined });
    for (const [name, conn] of [['redis', this.redis], ['subscriber', this.sub]] as const) {
      conn.on('error', (err: Error) => this.failed(`${name}: ${err.message}`));
    }
    // ioredis reports every failed reconnect: the outage is logged once, its end by resync().
    let outage = false;
    this.redis.on('close', () => {
      if (!this.closed && this.wasReady && !outage) o.log.warn('redis unreachable: serving from memory');
      outage = true;
      this.dirty = true;
    });
    this.redis.on('ready', () => {
      outage = false;
      if (this.wasReady && !this.closed) void this.resync('reconnected');
      this.wasReady = true;
    });
    // Changes published while the subscriber was away are lost: reload after it is back.
    let subReady = false;
    this.sub.on('ready', () => {
      if (subReady && !this.closed) void this.resync('subscriber reconnected');
      subReady = true;
    });
    this.sub.on('message', (_channel: string, message: string) => this.apply(message));
  }

  get status(): RedisStatus {
    return this.redis.status === 'ready' ? 'up' : 'down';
  }

  /** Instances other than this one that are alive, by address: they relay branches to us. */
  isPeer(source: Endpoint): boolean {
    return this.peerHosts.has(source.address);
  }

  /** Connects (bounded), renews the lease, reaps the dead, and reads everything the live instances own. */
  async load(): Promise<Loaded> {
    const empty: Loaded = { binding: new Map(), call: new Map(), setting: new Map() };
    // Queued until the subscriber connects, and renewed by ioredis after every reconnect.
    this.sub.subscribe(this.k.changes).catch((err: Error) => this.failed(`subscribe: ${err.message}`));
    this.sub.connect().catch(() => undefined); // reconnects by itself; errors are logged by 'error'
    try {
      await withTimeout(this.redis.connect(), this.o.connectWaitMs ?? 5000);
      await this.renewLease();
      // Reaped while we were down: our bindings were left to expire; they are ours again.
      await this.redis.persist(this.k.bindings(this.me));
      await this.reapDead();
      return await this.readAll();
    } catch (err) {
      this.o.log.error({ error: (err as Error).message }, 'redis unreachable at start: serving from memory until it answers');
      this.dirty = true;
      // The first 'ready' from now on is a return, to be resynchronised.
      this.wasReady = true;
      return empty;
    }
  }

  /** After the stores took what load() returned: apply the others' changes from now on, renew the lease. */
  attach(stores: Stores, hooks: SharedHooks = {}): void {
    this.stores = stores;
    this.hooks = hooks;
    // Restarted with a flow the device has since registered through another instance.
    this.dropSuperseded(stores, [...stores.location.all()]);
    if (this.peerHosts.size) hooks.peersChanged?.([...this.peerHosts]);
    const tick = Math.max(1000, Math.floor(this.o.leaseMs / 3));
    this.timers.push(
      setInterval(() => {
        // A write failed while connected (a slow Redis, a timeout): re-write what we own.
        if (this.dirty && this.status === 'up') void this.resync('writes failed');
        else {
          void this.renewLease()
            .then((present) => {
              // Our lease was gone though nobody said so: Redis lost its data without dropping
              // the connection (FLUSHALL, eviction under maxmemory, a failover to an empty
              // replica). What we own is gone with it and the others forgot it: write it again.
              if (!present && this.status === 'up') void this.resync('our lease was missing from redis');
            })
            .catch((e: Error) => this.failed(e.message));
        }
      }, tick),
      setInterval(() => void this.reapDead().catch((e: Error) => this.failed(e.message)), 1000),
    );
    for (const t of this.timers) t.unref();
  }

  /** The digest nonce key shared by every instance: the first one to start makes it. */
  async nonceSecret(): Promise<Buffer | undefined> {
    try {
      // Ours is offered back, so a Redis that came back empty keeps the key the phones hold.
      await this.redis.set(this.k.nonceSecret, (this.secret ?? randomBytes(32)).toString('hex'), 'NX');
      const hex = await this.redis.get(this.k.nonceSecret);
      if (hex) this.secret = Buffer.from(hex, 'hex');
      return this.secret;
    } catch {
      // Redis is down: resync() asks again when Redis answers and hands it to the nonceSecret hook.
      this.secretWanted = true;
      return undefined;
    }
  }

  put<K extends Kind>(kind: K, key: string, value: StoredKinds[K]): void {
    if (kind === 'binding') {
      const json = storedCodecs.binding.json(value as Binding);
      this.run(this.redis.multi().hset(this.k.bindings(this.me), key, json).publish(this.k.changes, this.change('binding', key, json)).exec());
    } else if (kind === 'call') {
      const call = value as ActiveCall;
      const owned = this.ownerMember + storedCodecs.call.json(call).slice(1);
      const exts = [...new Set(call.parties.map((p) => p.extension))];
      // The script publishes the message as change() would write it, the record appended there.
      this.run(this.redis.callUp(this.k.calls, this.k.callsOf(this.me), this.k.busy, this.k.changes, key, owned, this.me, this.changeHead('call', key), ...exts));
    } else {
      const json = storedCodecs.setting.json(value as ExtensionSetting);
      if (this.status === 'down') this.dirtySettings.add(key);
      this.run(this.redis.multi().hset(this.k.settings, key, json).publish(this.k.changes, this.change('setting', key, json)).exec());
    }
  }

  del<K extends Kind>(kind: K, key: string, value?: StoredKinds[K]): void {
    if (kind === 'binding') {
      // The value announced is whose binding went (ours, or another instance's we removed for
      // it: an un-REGISTER or a replaced flow through us), so that a removal of our own stale
      // binding cannot take the one another instance now holds under the same key (applyBinding).
      const owner = (value as Binding | undefined)?.owner ?? this.me;
      this.run(this.redis.multi().hdel(this.k.bindings(this.me), key).publish(this.k.changes, this.change('binding', key, jsonString(owner))).exec());
    } else if (kind === 'call') {
      this.run(this.redis.callDown(this.k.calls, this.k.callsOf(this.me), this.k.busy, this.k.changes, key, this.change('call', key, 'null')));
    } else {
      this.run(this.redis.multi().hdel(this.k.settings, key).publish(this.k.changes, this.change('setting', key, 'null')).exec());
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    // Leaving on purpose: the others need not wait for the lease to run out.
    try {
      if (this.status === 'up') {
        await this.resyncing;
        await this.redis.zadd(this.k.instances, this.now(), this.me);
      }
    } catch {
      // Redis went away as well: the lease runs out by itself.
    }
    this.sub.disconnect();
    this.redis.disconnect();
  }

  // -------------------------------------------------------------------------------------------

  /** The API asked to end another instance's call: its owner sends the BYEs and ends it. */
  askToEnd(call: ActiveCall): void {
    this.run(this.redis.publish(this.k.changes, this.change('end-call', call.id, jsonString(call.owner ?? this.me))));
  }

  private change(kind: ChangeKind, key: string, valueJson: string): string {
    return `${this.changeHead(kind, key)}${valueJson}]`;
  }

  /** A change up to its value (CALL_UP appends the value and the closing bracket itself). */
  private changeHead(kind: ChangeKind, key: string): string {
    return `${this.changePrefix}"${kind}",${jsonString(key)},`;
  }

  private run(p: Promise<unknown>): void {
    p.catch((err: Error) => this.failed(err.message));
  }

  private failed(message: string): void {
    this.stats.errors++;
    this.dirty = true;
    this.o.log.debug({ error: message }, 'redis command failed');
  }

  /** Another instance's change, heard on the channel. */
  private apply(message: string): void {
    const stores = this.stores;
    if (stores === undefined) return;
    // Our own changes come back on the channel too: known by their first member, not parsed.
    if (message.startsWith(this.echoPrefix)) return;
    let c: Change;
    try {
      c = JSON.parse(message) as Change;
    } catch {
      return;
    }
    if (!Array.isArray(c) || c.length !== 5) return;
    const [instance, address, kind, key, value] = c;
    if (instance === this.me || typeof key !== 'string') return;
    const path = typeof address === 'string' ? parseEndpoint(address) : undefined;
    if (path && !this.live.has(instance)) this.learnPeer(instance, path);
    switch (kind) {
      case 'binding':
        return this.applyBinding(stores, instance, path, key, value);
      case 'call':
        if (value === null) {
          this.goneDuringRead?.add(goneKey('call', '', key));
          stores.calls.forget(key);
          return;
        }
        {
          const call = storedCodecs.call.decode(value);
          if (call) stores.calls.mirror({ ...call, owner: instance });
        }
        return;
      case 'setting':
        if (value !== null) {
          const s = storedCodecs.setting.decode(value);
          if (s) stores.directory.restore(key, s);
        }
        return;
      case 'ban': {
        const ban = value === null ? undefined : decodeBan(value);
        if (ban) this.bans.mirror(ban);
        else this.bans.forget(key);
        this.hooks.banChanged?.(key);
        return;
      }
      case 'resynced':
        // It wrote its bindings and calls again without announcing each (after an outage, or
        // after it was reaped while alive): read them.
        void this.mirrorInstance(stores, instance, path, true).catch((e: Error) => this.failed(e.message));
        return;
      case 'end-call':
        if (value === this.me) this.hooks.endCall?.(key);
        return;
      case 'reaped':
        // Reaped ourselves (a partition or a stall outlasted the lease): write what we own again.
        if (key === this.me) void this.resync('reaped by another instance');
        else this.forgetInstance(key);
        return;
    }
  }

  private applyBinding(stores: Stores, instance: string, path: Endpoint | undefined, key: string, value: unknown): void {
    const nl = key.indexOf('\n');
    if (nl < 0) return;
    const username = key.slice(0, nl);
    const contact = key.slice(nl + 1);
    const mine = stores.location.lookup(username).find((b) => b.contact === contact && b.owner === undefined);
    if (value === null || typeof value === 'string') {
      // A binding went; value names its owner (null: not said, whoever holds it). A device that
      // moved to us (a roaming phone, the same Contact) may have its old connection close at
      // the instance it left just as it registers here: that instance removes its own stale
      // binding, and must not take ours, which it has not heard of yet.
      const owner = value ?? undefined;
      this.goneDuringRead?.add(goneKey('binding', owner ?? '', key));
      // Removed for us through another instance (un-REGISTER there, the API, a flow replaced
      // there): ours goes as well, announced.
      if (mine) {
        if (owner === undefined || owner === this.me) stores.location.remove(username, contact, 'unregistered');
      } else stores.location.forget(username, contact, owner);
      return;
    }
    const b = storedCodecs.binding.decode(value);
    if (!b || !path) return;
    // The device registered the same contact through another instance: that one owns it now.
    if (mine) this.run(this.redis.hdel(this.k.bindings(this.me), key));
    const theirs: Binding = { ...b, owner: instance, path };
    stores.location.mirror(theirs);
    this.dropSuperseded(stores, [theirs]);
  }

  /**
   * RFC 5626 outbound across instances: a device has one flow per +sip.instance and reg-id, and
   * the instance that takes a REGISTER for it over a new flow (a phone that roamed to it) removes
   * the old binding through the instance that owns it. When that removal was lost (Redis was
   * unreachable meanwhile), each instance keeps a binding of the flow, its own, and every resync
   * wrote the dead one back: it would ring until it expired. Of the two, the one that expires
   * later was registered later (the device asks for the same interval again), as readAll decides
   * for one contact; on a tie the owner whose name sorts last wins, so that both agree. Ours
   * goes, announced; theirs is left to its owner, which applies the same rule.
   */
  private dropSuperseded(stores: Stores, others: Iterable<Binding>): void {
    for (const b of others) {
      if (b.owner === undefined || b.instance === undefined) continue;
      for (const own of stores.location.lookup(b.username)) {
        if (own.owner !== undefined || own.instance !== b.instance || own.regId !== b.regId || own.contact === b.contact) continue;
        if (own.expiresAt < b.expiresAt || (own.expiresAt === b.expiresAt && this.me < b.owner)) {
          stores.location.remove(own.username, own.contact, 'replaced');
        }
      }
    }
  }

  private learnPeer(instance: string, address: Endpoint): void {
    this.live.set(instance, address);
    this.updatePeers();
  }

  private updatePeers(): void {
    const hosts = new Set<string>();
    for (const [name, a] of this.live) if (name !== this.me) hosts.add(a.address);
    const same = hosts.size === this.peerHosts.size && [...hosts].every((h) => this.peerHosts.has(h));
    this.peerHosts = hosts;
    if (!same) this.hooks.peersChanged?.([...hosts]);
  }

  private forgetInstance(instance: string): void {
    if (instance === this.me) return;
    this.live.delete(instance);
    this.updatePeers();
    const stores = this.stores;
    if (!stores) return;
    stores.location.forgetOwner(instance);
    for (const c of [...stores.calls.all()]) if (c.owner === instance) stores.calls.forget(c.id);
  }

  /**
   * The lease ends two thirds of a lease period after each renewal, renewed every third: a
   * renewal may be late by a third without the instance counting as dead, and a dead instance
   * is reaped within a lease period (plus the one-second reaper tick, which the lease covers
   * from three seconds up).
   */
  /** Whether our lease was still there (ZADD added no new member). */
  private async renewLease(): Promise<boolean> {
    const until = this.now() + Math.floor((this.o.leaseMs * 2) / 3);
    const r = await this.redis.multi().zadd(this.k.instances, until, this.me).hset(this.k.addresses, this.me, this.myAddress).exec();
    return r?.[0]?.[1] === 0;
  }

  /** Reaps instances whose lease ran out and refreshes the list of live ones. */
  private async reapDead(): Promise<void> {
    const now = this.now();
    const dead = await this.redis.zrangebyscore(this.k.instances, '-inf', now);
    for (const instance of dead) {
      if (instance === this.me) continue;
      const n = await this.redis.reap(
        this.k.instances,
        this.k.addresses,
        this.k.callsOf(instance),
        this.k.calls,
        this.k.busy,
        this.k.bindings(instance),
        this.k.changes,
        instance,
        now,
        this.change('reaped', instance, 'null'),
        this.o.maxBindingMs,
      );
      if (n >= 0) {
        this.stats.reaped++;
        this.o.log.warn({ dead: instance, calls: n }, 'instance lease ran out: its calls stop counting, its devices are unreachable until they register again');
        this.forgetInstance(instance);
      }
    }
    await this.refreshLive();
  }

  private async refreshLive(): Promise<void> {
    const names = await this.redis.zrangebyscore(this.k.instances, this.now(), '+inf');
    const addresses = names.length ? await this.redis.hmget(this.k.addresses, ...names) : [];
    const live = new Map<string, Endpoint>();
    names.forEach((name, i) => {
      const a = addresses[i] ? parseEndpoint(addresses[i]) : undefined;
      if (a) live.set(name, a);
    });
    for (const name of this.live.keys()) if (!live.has(name)) this.forgetInstance(name);
    const joined = [...live.keys()].filter((name) => name !== this.me && !this.live.has(name));
    this.live = live;
    this.updatePeers();
    // An instance that (re)started took up its bindings without announcing each: read them.
    const stores = this.stores;
    if (stores) for (const name of joined) await this.mirrorInstance(stores, name, live.get(name)!);
  }

  /**
   * What an instance owns, as Redis has it, into our stores. With `replace` (its 'resynced'
   * announcement) what we mirrored of it that Redis no longer holds goes too: it ended those
   * calls or lost those bindings while its own writes failed (a blip of its connection alone),
   * and nothing else tells us (its lease never lapsed), so the extension would stay busy here
   * until maxCallDuration. What changed on the channel while we read is newer and stays.
   */
  private async mirrorInstance(stores: Stores, owner: string, path: Endpoint | undefined, replace = false): Promise<void> {
    if (path === undefined || owner === this.me) return;
    const held = replace ? mirrored(stores, (o) => o === owner) : { bindings: [], calls: [] };
    const { read, gone } = await this.whileReading(() => this.readInstance(owner, path));
    this.applyRead(stores, held, read, gone);
  }

  /** What one other instance owns, as Redis has it. */
  private async readInstance(owner: string, path: Endpoint): Promise<Pick<Loaded, 'binding' | 'call'>> {
    const out: Pick<Loaded, 'binding' | 'call'> = { binding: new Map(), call: new Map() };
    for (const [key, json] of Object.entries(await this.redis.hgetall(this.k.bindings(owner)))) {
      const b = storedCodecs.binding.decode(parseJson(json));
      if (b && b.expiresAt > this.now()) out.binding.set(key, { ...b, owner, path });
    }
    const ids = await this.redis.smembers(this.k.callsOf(owner));
    const records = ids.length ? await this.redis.hmget(this.k.calls, ...ids) : [];
    for (const json of records) {
      const call = json ? storedCodecs.call.decode(parseJson(json)) : undefined;
      if (call) out.call.set(call.id, { ...call, owner });
    }
    return out;
  }

  /** Runs a read of Redis, recording the removals heard on the channel meanwhile (goneDuringRead). */
  private async whileReading<T>(readRedis: () => Promise<T>): Promise<{ read: T; gone: ReadonlySet<string> }> {
    this.reads++;
    const gone = (this.goneDuringRead ??= new Set());
    try {
      return { read: await readRedis(), gone };
    } finally {
      if (--this.reads === 0) this.goneDuringRead = undefined;
    }
  }

  /**
   * What a read of Redis returned of the other instances replaces what we mirrored of them
   * (held, taken before the read). A change heard on the channel during the read is newer than
   * the read: a held entry replaced meanwhile stays, and what a removal heard meanwhile took
   * does not come back. Our own entries in the read (owner undefined) are left alone.
   */
  private applyRead(stores: Stores, held: Mirrored, read: Pick<Loaded, 'binding' | 'call'>, gone: ReadonlySet<string>): void {
    for (const [key, b] of read.binding) if (b.owner === undefined || wasGone(gone, 'binding', b.owner, key)) read.binding.delete(key);
    for (const [id, c] of read.call) if (c.owner === undefined || wasGone(gone, 'call', c.owner, id)) read.call.delete(id);
    for (const b of held.bindings) {
      const now = stores.location.lookup(b.username).find((x) => x.contact === b.contact);
      if (now === b && read.binding.get(bindingKey(b))?.owner !== b.owner) stores.location.forget(b.username, b.contact, b.owner);
    }
    for (const b of read.binding.values()) stores.location.mirror(b);
    this.dropSuperseded(stores, read.binding.values());
    for (const c of held.calls) if (stores.calls.byId(c.id) === c && !read.call.has(c.id)) stores.calls.forget(c.id);
    for (const c of read.call.values()) stores.calls.mirror(c);
  }

  /** Everything the live instances own (and what this one owned before it restarted). */
  private async readAll(): Promise<Loaded> {
    await this.refreshLive();
    const out: Loaded = { binding: new Map(), call: new Map(), setting: new Map() };
    const owners = new Set([...this.live.keys(), this.me]);
    for (const owner of owners) {
      const path = owner === this.me ? undefined : this.live.get(owner);
      const all = await this.redis.hgetall(this.k.bindings(owner));
      for (const [key, json] of Object.entries(all)) {
        const b = storedCodecs.binding.decode(parseJson(json));
        if (!b) continue;
        // The device registered the contact again through another instance while its old owner
        // was dead: the later registration wins, and ours, if stale, goes.
        const other = out.binding.get(key);
        if (other !== undefined && other.expiresAt >= b.expiresAt) {
          if (owner === this.me) void this.redis.hdel(this.k.bindings(this.me), key).catch(() => undefined);
          continue;
        }
        if (other !== undefined && other.owner === undefined) void this.redis.hdel(this.k.bindings(this.me), key).catch(() => undefined);
        out.binding.set(key, path ? { ...b, owner, path } : b);
      }
    }
    for (const [id, json] of Object.entries(await this.redis.hgetall(this.k.calls))) {
      const raw = parseJson(json);
      const call = storedCodecs.call.decode(raw);
      const owner = (raw as { owner?: unknown } | undefined)?.owner;
      if (!call || typeof owner !== 'string' || !owners.has(owner)) continue;
      out.call.set(id, owner === this.me ? call : { ...call, owner });
    }
    for (const [ext, json] of Object.entries(await this.redis.hgetall(this.k.settings))) {
      const s = storedCodecs.setting.decode(parseJson(json));
      if (s) out.setting.set(ext, s);
    }
    const now = this.now();
    for (const [address, json] of Object.entries(await this.redis.hgetall(this.k.bans))) {
      const ban = decodeBan(parseJson(json));
      if (ban && ban.until > now) {
        this.bans.mirror(ban);
        this.hooks.banChanged?.(address);
      } else void this.redis.hdel(this.k.bans, address).catch(() => undefined);
    }
    return out;
  }

  /**
   * Redis answers again: make it hold exactly what this instance owns (it may have been reaped
   * meanwhile, and its writes failed), then reload what the others own.
   */
  private resync(why: string): Promise<void> {
    if (this.resyncing) return this.resyncing;
    const run = async () => {
      const stores = this.stores;
      if (!stores) return;
      this.stats.resyncs++;
      await this.renewLease();
      const own: Binding[] = [];
      for (const b of stores.location.all()) if (b.owner === undefined) own.push(b);
      const m = this.redis.multi().del(this.k.bindings(this.me));
      for (const b of own) m.hset(this.k.bindings(this.me), bindingKey(b), storedCodecs.binding.json(b));
      await m.exec();
      const args: string[] = [];
      for (const c of stores.calls.all()) {
        if (c.owner === undefined) args.push(c.id, this.ownerMember + storedCodecs.call.json(c).slice(1));
      }
      await this.redis.syncOwnCalls(this.k.calls, this.k.callsOf(this.me), this.k.busy, ...args);
      for (const ext of this.dirtySettings) {
        await this.redis.hset(this.k.settings, ext, storedCodecs.setting.json({ busyOnBusy: stores.directory.busyOnBusy(ext) }));
      }
      // A Redis that came back empty (restarted without persistence) lost every setting: what
      // Redis lacks is written again; what it has (maybe changed meanwhile elsewhere) wins.
      for (const [ext, setting] of stores.directory.settings()) {
        await this.redis.hsetnx(this.k.settings, ext, storedCodecs.setting.json(setting));
      }
      this.dirtySettings.clear();
      await this.reapDead();
      const held = mirrored(stores, (owner) => owner !== undefined);
      const { read: loaded, gone } = await this.whileReading(() => this.readAll());
      this.applyRead(stores, held, loaded, gone);
      for (const [ext, s] of loaded.setting) if (!this.dirtySettings.has(ext)) stores.directory.restore(ext, s);
      if (this.secretWanted || this.secret) {
        const before = this.secret;
        const secret = await this.nonceSecret();
        if (secret && !(before && before.equals(secret))) {
          this.secretWanted = false;
          this.hooks.nonceSecret?.(secret);
        }
      }
      this.dirty = false;
      await this.redis.publish(this.k.changes, this.change('resynced', this.me, 'null'));
      this.o.log.info({ why, bindings: own.length }, 'redis state resynchronised');
    };
    this.resyncing = run()
      .catch((err: Error) => this.failed(`resync: ${err.message}`))
      .finally(() => (this.resyncing = undefined));
    return this.resyncing;
  }
}

/** What we mirror of other instances at one moment. */
interface Mirrored {
  bindings: Binding[];
  calls: ActiveCall[];
}

/** The bindings and calls whose owner matches (undefined: our own). */
function mirrored(stores: Stores, owner: (o: string | undefined) => boolean): Mirrored {
  return {
    bindings: [...stores.location.all()].filter((b) => owner(b.owner)),
    calls: [...stores.calls.all()].filter((c) => owner(c.owner)),
  };
}

/** A removal heard on the channel: of whose (owner; '' when the announcement does not say) and what. */
function goneKey(kind: 'binding' | 'call', owner: string, key: string): string {
  return `${kind}\n${owner}\n${key}`;
}

/** Whether a removal of owner's key (or of that key, whoever's) was heard during the read. */
function wasGone(gone: ReadonlySet<string>, kind: 'binding' | 'call', owner: string, key: string): boolean {
  return gone.size !== 0 && (gone.has(goneKey(kind, owner, key)) || gone.has(goneKey(kind, '', key)));
}

function keys() {
  const p = 'sipbob:';
  return {
    changes: `${p}changes`,
    instances: `${p}instances`,
    addresses: `${p}instance-address`,
    calls: `${p}calls`,
    busy: `${p}busy`,
    settings: `${p}settings`,
    nonceSecret: `${p}nonce-secret`,
    bans: `${p}bans`,
    bindings: (owner: string) => `${p}bindings:${owner}`,
    callsOf: (owner: string) => `${p}calls:${owner}`,
  };
}

function banJson(b: Ban): string {
  return `{"address":${jsonString(b.address)},"reason":"${b.reason}","until":${b.until}}`;
}

function parseJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
