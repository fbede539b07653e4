/**
 * A throwaway Redis for the tests of several instances (issue 14): Debian's `redis-server`
 * (package redis-server, /usr/bin/redis-server) on a loopback port, with nothing saved to
 * disk (`--save "" --appendonly no`) in a temp directory of its own. It can be stopped,
 * killed, paused (a Redis that hangs) and started again on the same port, and hands out raw
 * ioredis clients for assertions on the keys sipbob writes.
 *
 * Every redis-server started here is SIGKILLed when the test process exits, whatever a failed
 * assertion skipped, so none outlives a run on a shared machine (as test/e2e/harness.ts does
 * with its proxies and SIPp processes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { killAtExit } from './children.js';

export const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';


const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface RedisServerOptions {
  port: number;
  /** Loopback address to bind; default 127.0.0.1. */
  host?: string;
  /** How long start and restart wait for the server to answer PING (ms; default 5000). */
  readyTimeoutMs?: number;
}

export interface RedisServer {
  host: string;
  port: number;
  /** redis://host:port/0: what a sipbob config's storage.redis names. */
  url: string;
  /** The throwaway working directory (--dir). */
  dir: string;
  /** Pid of the current redis-server process (undefined while stopped). */
  pid(): number | undefined;
  /** Whether a redis-server process of ours is running (paused counts as running). */
  running(): boolean;
  /** SIGTERM, SIGKILL after 3 s; resolves once the process is gone. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL and wait for the exit. */
  kill9(): Promise<void>;
  /** SIGSTOP: the socket stays open but nothing answers, as a Redis that hangs. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /**
   * Starts redis-server again on the same port and directory once it is stopped (stops it
   * first if it runs). It starts empty, unless save() wrote a snapshot before it stopped (a
   * Redis with persistence): then it loads that.
   */
  restart(): Promise<void>;
  /** SAVE: a snapshot (dump.rdb in dir) that the next restart() loads. */
  save(): Promise<void>;
  /**
   * A raw client for assertions. It does not queue commands while the server is down (they
   * fail at once) and reconnects by itself; closed by close().
   */
  client(): Redis;
  /** stdout and stderr of every run so far (last `max` characters). */
  output(max?: number): string;
  /** Stops the server, closes the clients, removes the directory. */
  close(): Promise<void>;
}

/** Starts redis-server on host:port and resolves once it answers PING. */
export async function startRedis(opts: RedisServerOptions): Promise<RedisServer> {
  if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} does not exist: apt-get install redis-server`);
  const host = opts.host ?? '127.0.0.1';
  const { port } = opts;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 5000;
  const dir = mkdtempSync(path.join(tmpdir(), `sipbob-redis-${port}-`));
  const clients = new Set<Redis>();
  let raw = '';
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const output = (max = 8000) => (raw.length > max ? `...${raw.slice(-max)}` : raw);

  const launch = async () => {
    const args = [
      '--port', String(port),
      '--bind', host,
      '--save', '',
      '--appendonly', 'no',
      '--dir', dir,
      // No protected mode games on loopback; no daemonising: the test owns the process.
      '--protected-mode', 'no',
      '--daemonize', 'no',
      '--loglevel', 'notice',
    ];
    const proc = spawn(REDIS_SERVER, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    killAtExit(proc);
    let gone = false;
    let failed: Error | undefined;
    exited = new Promise<void>((resolve) => {
      proc.once('exit', (code, signal) => {
        gone = true;
        raw += `\n[redis-server exited: code ${code}, signal ${signal}]\n`;
        if (child === proc) child = undefined;
        resolve();
      });
    });
    proc.once('error', (err) => {
      failed = err;
      raw += `\n[spawn error: ${err.message}]\n`;
    });
    let ready = false;
    const collect = (chunk: Buffer) => {
      const s = chunk.toString('utf8');
      raw += s;
      if (raw.length > 60000) raw = raw.slice(-30000);
      if (s.includes('Ready to accept connections')) ready = true;
    };
    proc.stdout!.on('data', collect);
    proc.stderr!.on('data', collect);

    // The log line first (cheap); then a PING proves the port answers.
    const deadline = Date.now() + readyTimeoutMs;
    while (!ready) {
      if (gone || failed) throw new Error(`redis-server on ${host}:${port} exited at start (port taken?)\n${output()}`);
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`redis-server on ${host}:${port} not ready within ${readyTimeoutMs} ms\n${output()}`);
      }
      await sleep(20);
    }
    const probe = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null, connectTimeout: 1000 });
    try {
      await probe.connect();
      const pong = await probe.ping();
      if (pong !== 'PONG') throw new Error(`PING answered ${pong}`);
    } catch (err) {
      proc.kill('SIGKILL');
      throw new Error(`redis-server on ${host}:${port} does not answer PING: ${(err as Error).message}\n${output()}`);
    } finally {
      probe.disconnect();
    }
  };

  const stopWith = async (signal: NodeJS.Signals) => {
    const proc = child;
    if (!proc) return;
    // A paused process ignores SIGTERM until it is continued.
    proc.kill('SIGCONT');
    proc.kill(signal);
    const killer = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(killer);
  };

  await launch();

  const server: RedisServer = {
    host,
    port,
    url: `redis://${host}:${port}/0`,
    dir,
    pid: () => child?.pid,
    running: () => child !== undefined,
    stop: () => stopWith('SIGTERM'),
    kill9: () => stopWith('SIGKILL'),
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    async restart() {
      await stopWith('SIGTERM');
      await launch();
    },
    async save() {
      const c = new Redis({ host, port, maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true, retryStrategy: () => null, commandTimeout: 5000 });
      try {
        await c.connect();
        await c.save();
      } finally {
        c.disconnect();
      }
    },
    client() {
      const c = new Redis({
        host,
        port,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        connectTimeout: 1000,
        commandTimeout: 2000,
        retryStrategy: () => 100,
      });
      // Connection errors while the server is down are expected; commands report their own.
      c.on('error', () => {});
      clients.add(c);
      return c;
    },
    output,
    async close() {
      for (const c of clients) c.disconnect();
      clients.clear();
      await stopWith('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/**
 * Waits until a fresh client can talk to `server` (after a restart, the first commands of a
 * reconnecting client may still fail): resolves with the client.
 */
export async function connected(c: Redis, timeoutMs = 3000): Promise<Redis> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (c.status === 'ready') {
      try {
        if ((await c.ping()) === 'PONG') return c;
      } catch {
        // not yet
      }
    }
    if (Date.now() > deadline) throw new Error(`redis client not ready within ${timeoutMs} ms (status ${c.status})`);
    await sleep(20);
  }
}
