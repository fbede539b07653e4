/**
 * The kit of the tests of several instances (issue 14, test/e2e/cluster-*.test.ts): one
 * throwaway redis-server (test/support/redis-server.ts) and two or three sipbob processes
 * sharing it, each on its own loopback address with the same ports:
 *   sip-a 127.0.3.1, sip-b 127.0.3.2, sip-c 127.0.3.3 (SIP UDP+TCP portBlock(k).sip, HTTP portBlock(k).http),
 * each with `storage: {redis: <url>}` and `cluster: {instance, address: <host>:<sip port>}`.
 * Phones, trunks and the hang-up trigger are other 127.0.3.x addresses (CLUSTER_HOSTS); each
 * file keeps its own port block (23..28) and Redis port (26380..26389), so files may run at once.
 * The extensions are those of the other e2e tests: 200 "Anna Schmidt" (busyOnBusy true) and
 * 100 "Service Hotline" (busyOnBusy false, shared use).
 */
import type { Test } from 'tap';
import type { Redis } from 'ioredis';
import { connected, startRedis, type RedisServer } from '../support/redis-server.js';
import { countReceived, describe, phone, portBlock, startProxy, waitFor, type ApiExtension, type Proxy, type ProxyOptions, type SippProcess, type SippResult } from './harness.js';

export const INSTANCES = { 'sip-a': '127.0.3.1', 'sip-b': '127.0.3.2', 'sip-c': '127.0.3.3' } as const;
export type InstanceName = keyof typeof INSTANCES;

/** The other roles on loopback (told apart by port within a file, as in harness.ts HOSTS). */
export const CLUSTER_HOSTS = {
  annaDesk: '127.0.3.11',
  annaSoft: '127.0.3.12',
  annaMobile: '127.0.3.13',
  hotline1: '127.0.3.14',
  hotline2: '127.0.3.15',
  /** Outbound trunk: calls to non-local numbers go there (the first trunk of the config). */
  trunkOut: '127.0.3.31',
  /** Inbound trunk, trusted by address (any port). */
  trunkIn: '127.0.3.32',
  /** Source of the "hang up now" INFO of op-caller-hold.xml (operator-kit holdCall). */
  trigger: '127.0.3.39',
} as const;

export const PW = {
  'anna-desk': 'cl-pw-anna-desk',
  'anna-soft': 'cl-pw-anna-soft',
  'anna-mobile': 'cl-pw-anna-mobile',
  'hotline-desk-1': 'cl-pw-hotline-1',
  'hotline-desk-2': 'cl-pw-hotline-2',
} as const;
export type ClusterUser = keyof typeof PW;

export const EXTENSIONS = [
  {
    number: '200',
    name: 'Anna Schmidt',
    busyOnBusy: true,
    devices: (['anna-desk', 'anna-soft', 'anna-mobile'] as const).map((username) => ({ username, password: PW[username] })),
  },
  {
    number: '100',
    name: 'Service Hotline',
    busyOnBusy: false,
    devices: (['hotline-desk-1', 'hotline-desk-2'] as const).map((username) => ({ username, password: PW[username] })),
  },
];

export interface ClusterOptions {
  /** portBlock(k) of the file: 23 to 28. */
  block: number;
  redisPort: number;
  /** The instances to start now (default sip-a and sip-b). */
  instances?: InstanceName[];
  /** config calls (e.g. {keepalive: 2, keepaliveFailures: 2}); default the config's. */
  calls?: object;
  /** config auth; default {algorithms: [MD5]}. */
  auth?: object;
  /** config trunks; default carrier-out at trunkOut:<trunkOutPort>, carrier-in at trunkIn. */
  trunks?: object[];
  trunkOutPort?: number;
  registrar?: object;
}

export interface Cluster {
  redis: RedisServer;
  /** A raw client on the shared Redis. */
  db: Redis;
  /** The running process of an instance (the latest one after a restart). */
  proxy(name: InstanceName): Proxy;
  /** Starts an instance (again, after stop/kill9) with the same config. */
  start(name: InstanceName): Promise<Proxy>;
  /** The proxy options of an instance (for a test that starts it itself). */
  options(name: InstanceName): ProxyOptions;
  /** SIPp processes of the test, stopped at its teardown before the proxies. */
  procs: SippProcess[];
  /** GET /api/extensions/{n} on an instance. */
  ext(name: InstanceName, number: string): Promise<ApiExtension>;
  /** GET /healthz on an instance: status and parsed body (undefined when it does not answer). */
  health(name: InstanceName): Promise<{ status: number; body: Record<string, unknown> } | undefined>;
  /** '<host>:<sip port>' of an instance, for SIPp's remote. */
  remote(name: InstanceName): string;
}

/** Starts Redis and the instances; everything is stopped at the end of `t`. */
export async function startCluster(t: Test, o: ClusterOptions): Promise<Cluster> {
  const P = portBlock(o.block);
  const redis = await startRedis({ port: o.redisPort });
  const running = new Map<InstanceName, Proxy>();
  const procs: SippProcess[] = [];
  t.teardown(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await Promise.all([...running.values()].map((p) => p.stop()));
    await redis.close();
  });

  const options = (name: InstanceName): ProxyOptions => ({
    host: INSTANCES[name],
    sipPort: P.sip,
    httpPort: P.http,
    extensions: EXTENSIONS,
    trunks: o.trunks ?? [
      { name: 'carrier-out', address: `${CLUSTER_HOSTS.trunkOut}:${o.trunkOutPort ?? P.base + 199}` },
      { name: 'carrier-in', address: CLUSTER_HOSTS.trunkIn },
    ],
    ...(o.calls ? { calls: o.calls } : {}),
    ...(o.auth ? { auth: o.auth } : {}),
    ...(o.registrar ? { registrar: o.registrar } : {}),
    storage: { redis: redis.url },
    cluster: { instance: name, address: `${INSTANCES[name]}:${P.sip}` },
  });

  const start = async (name: InstanceName) => {
    const proxy = await startProxy(options(name));
    running.set(name, proxy);
    return proxy;
  };
  for (const name of o.instances ?? ['sip-a', 'sip-b']) await start(name);

  // Connected before use: the raw client fails commands at once while it is not.
  const db = await connected(redis.client());

  const proxy = (name: InstanceName) => {
    const p = running.get(name);
    if (!p) throw new Error(`instance ${name} was never started`);
    return p;
  };

  return {
    redis,
    db,
    proxy,
    start,
    options,
    procs,
    ext: (name, number) => proxy(name).apiJson<ApiExtension>(`/api/extensions/${number}`),
    async health(name) {
      try {
        const res = await fetch(`http://${INSTANCES[name]}:${P.http}/healthz`, { signal: AbortSignal.timeout(2000) });
        const text = await res.text();
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          body = { text };
        }
        return { status: res.status, body };
      } catch {
        return undefined;
      }
    },
    remote: (name) => `${INSTANCES[name]}:${P.sip}`,
  };
}

/** Contacts of a device in an extension view. */
export function contactsIn(ext: ApiExtension, username: string): string[] {
  return (ext.devices.find((d) => d.username === username)?.registrations ?? []).map((r) => r.contact);
}

/** The `instance` (owner) of each registration of a device in an extension view (GET /api/extensions with storage.redis). */
export function ownersIn(ext: ApiExtension, username: string): Array<string | undefined> {
  return (ext.devices.find((d) => d.username === username)?.registrations ?? []).map((r) => (r as { instance?: string }).instance);
}

/** The atomic Busy-on-Busy count of an extension in Redis (`sipbob:busy` hash; 0 when absent). */
export async function busyCount(db: Redis, number: string): Promise<number> {
  return Number((await db.hget('sipbob:busy', number)) ?? 0);
}

/**
 * Waits until `check` holds on every listed instance: true, or the waitFor message with what
 * each instance said last (for the assertion's details).
 */
export async function onAll(
  names: InstanceName[],
  what: string,
  check: (name: InstanceName) => Promise<boolean>,
  timeoutMs: number,
  everyMs = 50,
): Promise<true | string> {
  return waitFor(what, async () => ((await Promise.all(names.map(check))).every(Boolean) ? true : undefined), timeoutMs, everyMs).catch(
    (e: Error) => e.message,
  );
}

/** Resolves with ms waited until `check` holds, or the waitFor message. */
export async function within(what: string, check: () => Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<number | string> {
  const started = Date.now();
  return waitFor(what, async () => ((await check()) ? true : undefined), timeoutMs, everyMs).then(
    () => Date.now() - started,
    (e: Error) => e.message,
  );
}

/**
 * A phone that should have rung: exit 0 and at least one INVITE in its trace. (A SIPp UAS
 * stopped with SIGTERM before any call also exits 0, so the exit code alone proves nothing.)
 */
export function assertRang(t: Pick<Test, 'ok'>, r: SippResult, message: string): boolean {
  return t.ok(r.code === 0 && countReceived(r.messages, 'INVITE') > 0, `${message} (${r.label})`, { sipp: describe(r) });
}

/**
 * A registered device of the called extension that does not answer: it rings and is cancelled
 * when another device answers (phone-ring-cancelled-any.xml). Every registered device must
 * listen during a call, or the INVITE of its branch, retransmitted until Timer B, would reach
 * the next SIPp that binds its port. Whether it rang is asserted by the caller of this helper.
 */
export function losingPhone(d: { username: string; password: string; local: string; localPort: number; remote: string }, timeoutSec = 15): Promise<SippProcess> {
  return phone({ ...d, scenario: 'phone-ring-cancelled-any.xml', register: false, timeoutSec, timeoutIsError: false });
}
