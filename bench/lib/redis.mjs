// Redis mode (SIPBOB_STORAGE=redis, redis-relay): Debian's redis-server on a free loopback
// port with a throwaway directory, the measured sipbob with storage.redis and cluster, and a
// second sipbob (the peer) on PEER_IP sharing that Redis, so every write the measured
// instance makes is published to a real subscriber that mirrors it. And the count of what
// the instances asked Redis during a phase: INFO commandstats (server-wide) and MONITOR
// (each command with the connection it came from, mapped to the instance by `ss -p`).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { c0, cfixed } from './fmt.mjs';
import { die, log, sleep, startBg, stopTree, treePids } from './proc.mjs';

const execFileP = promisify(execFile);

/** @typedef {import('./start.mjs').Ctx} Ctx */
/** @typedef {import('./proc.mjs').Proc} Proc */
/**
 * @typedef {object} RedisRun
 * @property {Proc} proc
 * @property {number} port
 * @property {string} url
 * @property {string} dir    redis-server's --dir and log
 */

/** The instance names the two sipbobs register in Redis. */
export const MEASURED = 'bench-measured';
export const PEER = 'bench-peer';

/** A port the kernel says is free on 127.0.0.1 (closed again before redis-server binds it). */
function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

/** redis-cli against the bench's Redis; stdout. @param {Ctx} ctx @param {number} port @param {string[]} args */
export async function cli(ctx, port, args) {
  const r = await execFileP('timeout', ['10', ctx.cfg.REDIS_CLI, '-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  return r.stdout;
}

/**
 * Starts redis-server (no persistence, loopback only) and waits for PONG.
 * @param {Ctx} ctx @param {string} label
 * @returns {Promise<RedisRun>}
 */
export async function startRedis(ctx, label) {
  const port = await freePort();
  const dir = join(ctx.run, `redis-${label}`);
  mkdirSync(dir, { recursive: true });
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--logfile', ''];
  log(`start redis-server: ${ctx.cfg.REDIS_SERVER} ${args.join(' ')}`);
  const proc = startBg(join(dir, 'redis.log'), ctx.cfg.REDIS_SERVER, args);
  for (let i = 0; i < 100; i++) {
    try {
      if ((await cli(ctx, port, ['ping'])).trim() === 'PONG') return { proc, port, url: `redis://127.0.0.1:${port}/0`, dir };
    } catch {
      // not up yet
    }
    await sleep(100);
  }
  return die(`redis-server did not answer; see ${dir}/redis.log`);
}

/** @param {RedisRun} r */
export const stopRedis = (r) => stopTree(r.proc, 10);

/**
 * The generated config (gen.mjs: embedded storage) for one instance of the cluster: storage.redis
 * instead of storage.path, the cluster section, and listen/http on `ip`.
 * @param {string} genYaml @param {string} out @param {{ url: string, instance: string, ip: string, sipPort: number, httpPort: number }} o
 */
export function clusterYaml(genYaml, out, o) {
  const text = readFileSync(genYaml, 'utf8');
  const storage = /^storage:\n {2}path: [^\n]*\n/m;
  const listen = /^listen:\n {2}- udp:\/\/[^\n]*\n/m;
  const http = /^http:\n {2}listen: [^\n]*\n/m;
  if (!storage.test(text) || !listen.test(text) || !http.test(text)) die(`${genYaml}: not the layout gen.mjs writes`);
  const y = text
    .replace(storage, `storage:\n  redis: ${o.url}\ncluster:\n  instance: ${o.instance}\n  address: ${o.ip}:${o.sipPort}\n`)
    .replace(listen, `listen:\n  - udp://${o.ip}:${o.sipPort}\n`)
    .replace(http, `http:\n  listen: ${o.ip}:${o.httpPort}\n`);
  writeFileSync(out, y);
  return out;
}

// ------------------------------------------------------------------ counting commands

/** INFO commandstats as name -> calls. @param {Ctx} ctx @param {number} port */
export async function commandStats(ctx, port) {
  /** @type {Map<string, number>} */
  const m = new Map();
  for (const line of (await cli(ctx, port, ['info', 'commandstats'])).split('\n')) {
    const x = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (x) m.set(x[1], Number(x[2]));
  }
  return m;
}

/** after - before, per command, without zeros. @param {Map<string, number>} a @param {Map<string, number>} b */
export function statDelta(a, b) {
  /** @type {Map<string, number>} */
  const d = new Map();
  for (const [k, v] of b) if (v - (a.get(k) ?? 0) > 0) d.set(k, v - (a.get(k) ?? 0));
  return d;
}

/**
 * Which instance each client connection to Redis belongs to: "127.0.0.1:<port>" -> name, from
 * the pids `ss -tnp` shows for the connections to Redis.
 * @param {number} redisPort @param {Record<string, number>} pids instance name -> root pid
 */
async function connectionOwners(redisPort, pids) {
  /** @type {Map<number, string>} */
  const byPid = new Map();
  for (const [name, pid] of Object.entries(pids)) for (const p of treePids(pid)) byPid.set(p, name);
  /** @type {Map<string, string>} */
  const owners = new Map();
  const { stdout } = await execFileP('ss', ['-Htnp', `dst 127.0.0.1:${redisPort}`], { encoding: 'utf8' });
  for (const line of stdout.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const local = f[3];
    const pid = Number(/pid=(\d+)/.exec(line)?.[1] ?? 0);
    owners.set(local, byPid.get(pid) ?? `pid ${pid}`);
  }
  return owners;
}

/**
 * MONITOR for one phase: started before, stopped after; then `summarize` attributes each
 * command to an instance and counts round trips: a MULTI ... EXEC block (ioredis sends it
 * in one write and waits for EXEC's answer) is one, every other command sent by a client is
 * one, and commands run inside a Lua script (`[0 lua]`) are none.
 * @param {Ctx} ctx @param {number} port @param {string} file
 */
export function startMonitor(ctx, port, file) {
  return startBg(file, ctx.cfg.REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), 'monitor']);
}

/**
 * @param {string} file MONITOR output
 * @param {number} redisPort
 * @param {Record<string, number>} pids instance name -> root pid
 * @param {Map<string, string>} [scripts] SHA1 -> script name
 * @returns {Promise<{ rows: Map<string, number>, trips: Map<string, number> }>}
 *   rows: "<instance> <what>" -> count; trips: instance -> round trips
 */
export async function summarizeMonitor(file, redisPort, pids, scripts = new Map()) {
  const owners = await connectionOwners(redisPort, pids);
  /** @type {Map<string, number>} */
  const rows = new Map();
  /** @type {Map<string, number>} */
  const trips = new Map();
  /** @type {Map<string, string[]>} client -> commands of its open MULTI */
  const open = new Map();
  const add = (/** @type {Map<string, number>} */ m, /** @type {string} */ k) => m.set(k, (m.get(k) ?? 0) + 1);
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const x = /^\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]+)"(?: "((?:[^"\\]|\\.)*)")?/.exec(line);
    if (!x) continue;
    const [, client, cmdRaw, arg1] = x;
    const cmd = cmdRaw.toUpperCase();
    if (client === 'lua') {
      add(rows, `(inside scripts) ${cmd}`);
      continue;
    }
    const who = owners.get(client) ?? 'other';
    if (who === 'other' || who.startsWith('pid ')) {
      // redis-cli's own INFO, or a connection ss no longer shows
      if (cmd === 'INFO' || cmd === 'MONITOR') continue;
    }
    const inMulti = open.get(client);
    if (cmd === 'MULTI') {
      open.set(client, []);
      continue;
    }
    if (cmd === 'EXEC' && inMulti) {
      open.delete(client);
      add(rows, `${who} MULTI ${inMulti.join(' ')} EXEC`);
      add(trips, who);
      continue;
    }
    if (inMulti) {
      inMulti.push(cmd);
      continue;
    }
    // A script is named as sipbob's scripts.ts names it (by SHA1: EVALSHA's argument, EVAL's body's).
    let script = '';
    if ((cmd === 'EVAL' || cmd === 'EVALSHA') && arg1 !== undefined) {
      const sha = cmd === 'EVAL' ? sha1(unquote(arg1)) : arg1.toLowerCase();
      script = ` (${scripts.get(sha) ?? 'script'})`;
    }
    add(rows, `${who} ${cmd}${script}`);
    add(trips, who);
  }
  return { rows, trips };
}

/** MONITOR's quoting (sdscatrepr) undone. @param {string} q */
function unquote(q) {
  const esc = /** @type {Record<string, string>} */ ({ n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b', '"': '"', '\\': '\\' });
  return q.replace(/\\(x[0-9a-f]{2}|.)/g, (_, e) => (e.length === 3 ? String.fromCharCode(parseInt(e.slice(1), 16)) : (esc[e] ?? e)));
}

const sha1 = (/** @type {string} */ t) => createHash('sha1').update(t).digest('hex');

/**
 * The measured build's Lua scripts (dist/src/state/redis/scripts.js) by SHA1: an EVALSHA names
 * its script by it, an EVAL by its body. Empty if the build has no such module.
 * @param {Ctx} ctx
 * @returns {Promise<Map<string, string>>}
 */
async function scriptNames(ctx) {
  /** @type {Map<string, string>} */
  const m = new Map();
  if (!ctx.sipbob) return m;
  try {
    const mod = await import(pathToFileURL(join(dirname(ctx.sipbob.cli), 'state/redis/scripts.js')).href);
    for (const [name, body] of Object.entries(mod)) if (typeof body === 'string') m.set(sha1(body), name);
  } catch {
    // an older build: scripts shown unnamed
  }
  return m;
}

/** What redis-cli itself sends to count (INFO) or watch (MONITOR), and readiness probes. */
const OURS = new Set(['info', 'monitor', 'ping', 'client|list', 'command|docs', 'command']);

/**
 * Counts what reaches Redis during one phase of a Redis mode (nothing without ctx.cluster):
 * call before the phase; the function it returns, after the phase, records for label:
 * rt_<w> (round trips of the measured instance per operation), rt_<w>_peer, cmds_<w>
 * (commands Redis ran per operation, scripts' inner ones included, both instances: the
 * commandstats difference), one redis_<w> row per kind of request, and writes
 * <name>-redis-<w>.txt.
 * @param {Ctx} ctx @param {string} name file prefix
 * @returns {Promise<((label: string, w: string, n: number) => Promise<void>) | undefined>}
 */
export async function redisCounter(ctx, name) {
  const cl = ctx.cluster;
  if (!cl) return undefined;
  const port = cl.redis.port;
  const before = await commandStats(ctx, port);
  const file = join(ctx.run, `${name}-redis-monitor.txt`);
  const mon = startMonitor(ctx, port, file);
  await sleep(500);
  return async (label, w, n) => {
    await sleep(500);
    const after = await commandStats(ctx, port);
    const { rows, trips } = await summarizeMonitor(file, port, { [MEASURED]: cl.pid, [PEER]: cl.peer.pid }, await scriptNames(ctx));
    await stopTree(mon, 3);
    let cmds = 0;
    const stat = [];
    for (const [k, v] of statDelta(before, after)) {
      if (OURS.has(k)) continue;
      cmds += v;
      stat.push(`${k} ${v}`);
    }
    const m = ctx.metrics;
    const per = (/** @type {number} */ v) => cfixed(v / n, 3);
    m.add(label, `rt_${w}`, per(trips.get(MEASURED) ?? 0));
    m.add(label, `rt_${w}_peer`, per(trips.get(PEER) ?? 0));
    m.add(label, `cmds_${w}`, per(cmds));
    const lines = [`# ${label} ${w}: ${n} operations; requests to Redis by instance (round trips), per operation`];
    for (const [k, v] of [...rows].sort((a, b) => b[1] - a[1])) {
      m.add(label, `redis_${w}`, `${k}: ${v} (${per(v)})`);
      lines.push(`${per(v).padStart(8)}  ${String(v).padStart(7)}  ${k}`);
    }
    lines.push('', `# INFO commandstats difference (both instances, commands inside MULTI and scripts included): ${c0(cmds)} commands`, ...stat, '');
    writeFileSync(join(ctx.run, `${name}-redis-${w}.txt`), lines.join('\n'));
    log(`${label} ${w}: Redis round trips per operation: measured ${per(trips.get(MEASURED) ?? 0)}, peer ${per(trips.get(PEER) ?? 0)}; commands ${per(cmds)} (${name}-redis-${w}.txt)`);
  };
}
