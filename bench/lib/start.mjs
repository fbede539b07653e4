// Starting and stopping what is measured: sipbob's build, the generated accounts, the proxy
// (Kamailio or sipbob, optionally under valgrind) until it is ready, and the three devices.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { A_IP, B_IP, BENCH_DIR, C_IP, CALLER_IP, DOMAIN, REPO, SCEN, SIPP_COMMON } from './config.mjs';
import { alive, die, log, sleep, startBg, stopTree, treePids } from './proc.mjs';
import { runSipp } from './load.mjs';
import { clusterYaml, MEASURED, PEER, startRedis, stopRedis } from './redis.mjs';

const execFileP = promisify(execFile);

/** @typedef {import('./config.mjs').Config} Config */
/** @typedef {import('./proc.mjs').Proc} Proc */
/**
 * What every module of a run shares.
 * @typedef {object} Ctx
 * @property {Config} cfg
 * @property {string} run          the run directory, bench/out/run-<time>
 * @property {import('./measure.mjs').Metrics} metrics
 * @property {{ cli: string, rev: string } | undefined} sipbob
 * @property {string} [storage]   sipbob's storage mode of the target being run (SIPBOB_STORAGE)
 * @property {Cluster} [cluster]  set while a sipbob in a Redis mode runs
 */
/**
 * The Redis mode's companions of the measured sipbob.
 * @typedef {object} Cluster
 * @property {import('./redis.mjs').RedisRun} redis
 * @property {Proc} peer   the second instance, on PEER_IP
 * @property {number} pid  the measured instance (under valgrind: valgrind's pid, the same process)
 */

/** path as the shell's ${p#"$REPO"/}: relative to the repository if inside it. @param {string} p */
export const repoRel = (p) => (p.startsWith(REPO + '/') ? relative(REPO, p) : p);

/**
 * One fixed build of sipbob for the whole run (SIPBOB_BUILD, SIPBOB_COMMIT).
 * @param {Config} cfg
 * @returns {{ cli: string, rev: string }}
 */
export function sipbobBuild(cfg) {
  const git = (/** @type {string[]} */ ...a) => execFileSync('git', ['-C', REPO, ...a], { encoding: 'utf8' }).trim();
  if (cfg.SIPBOB_BUILD === 'dist') {
    const cli = join(REPO, 'dist/src/cli.js');
    if (!existsSync(cli)) die('sipbob is not built: run npm run build');
    const mtime = execFileSync('stat', ['-c', '%y', cli], { encoding: 'utf8' }).split('.')[0];
    return { cli, rev: `working tree dist/ (${mtime}), HEAD ${git('log', '-1', '--format=%h %s')}` };
  }
  const rev = git('rev-parse', '--short=12', cfg.SIPBOB_COMMIT);
  const dir = join(cfg.OUT, `sipbob-${rev}`);
  if (!existsSync(join(dir, 'dist/src/cli.js'))) {
    // git archive reads the commit only (no index, no lock); tsc and the runtime find
    // node_modules by walking up to the repository's.
    log(`building sipbob ${rev} into ${repoRel(dir)}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const x = spawnSync('bash', ['-c', 'set -o pipefail; git -C "$1" archive "$2" package.json tsconfig.json src config | tar -x -C "$3"', 'bash', REPO, rev, dir], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (x.status !== 0) die(`extracting sipbob ${rev} failed`);
    const fd = openSync(join(dir, 'build.log'), 'w');
    const b = spawnSync(join(REPO, 'node_modules/.bin/tsc'), ['-p', join(dir, 'tsconfig.json')], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    if (b.status !== 0) die(`building sipbob ${rev} failed; see ${dir}/build.log`);
  }
  return { cli: join(dir, 'dist/src/cli.js'), rev: `${git('log', '-1', '--format=%h %s', rev)} (built in ${repoRel(dir)})` };
}

/**
 * bench/gen.mjs's accounts for n registration users in dir (kept if already there).
 * @param {Config} cfg @param {string} dir @param {number} n
 */
export function genConfig(cfg, dir, n) {
  const users = join(dir, 'users.csv');
  const yaml = join(dir, 'sipbob.yaml');
  if (nonEmpty(yaml) && nonEmpty(users) && lineCount(users) === n + 1) return;
  rmSync(dir, { recursive: true, force: true });
  const env = { ...process.env, BENCH_DOMAIN: DOMAIN, PROXY_IP: cfg.PROXY_IP, PROXY_PORT: String(cfg.PROXY_PORT), HTTP_PORT: String(cfg.HTTP_PORT), CALLER_IP };
  const r = spawnSync(cfg.NODE, [join(BENCH_DIR, 'gen.mjs'), dir, String(n)], { env, stdio: ['ignore', 2, 2] });
  if (r.status !== 0) die(`bench/gen.mjs ${dir} ${n} failed`);
}

/** @param {string} f */
const nonEmpty = (f) => existsSync(f) && statSync(f).size > 0;
/** newlines in f, as wc -l. @param {string} f */
export function lineCount(f) {
  const s = readFileSync(f);
  let n = 0;
  for (const c of s) if (c === 10) n++;
  return n;
}

/** 10^width of the account numbers, as gen.mjs pads them (at least 5 digits). @param {number} users */
export const regBase = (users) => '1' + '0'.repeat(Math.max(5, String(users).length));

/**
 * The command line of a target; sipbob reads `config` (default: gen's sipbob.yaml).
 * @param {Ctx} ctx @param {string} t @param {string} gen @param {number} users @param {string[]} nodeExtra @param {string} [config]
 * @returns {string[]}
 */
export function targetCmd(ctx, t, gen, users, nodeExtra, config) {
  const c = ctx.cfg;
  switch (t) {
    case 'kamailio':
      return [c.KAMAILIO, '-f', join(BENCH_DIR, 'kamailio.cfg'), '-x', 'tlsf', '-DD', '-E', '-m', String(c.KAM_SHM_MB), '-M', String(c.KAM_PKG_MB),
        '-A', `BENCH_REG_USERS=${users}`, '-A', `BENCH_REG_BASE=${regBase(users)}`, '-A', 'BENCH_PER_EXT=2',
        '-A', `BENCH_LISTEN=udp:${c.PROXY_IP}:${c.PROXY_PORT}`,
        '-A', `BENCH_DOMAIN="${DOMAIN}"`, '-A', `BENCH_TRUNK="${CALLER_IP}"`,
        '-A', `BENCH_CHILDREN=${c.KAM_CHILDREN}`];
    case 'sipbob':
      if (!ctx.sipbob) die('sipbob is not built');
      return [c.NODE, ...nodeExtra, ctx.sipbob.cli, '--config', config ?? join(gen, 'sipbob.yaml')];
    default:
      return die(`unknown target ${t}`);
  }
}

/** Is anything listening on the proxy's UDP port? @param {Config} cfg */
export function portBusy(cfg) {
  try {
    return execFileSync('ss', ['-Hlun', `sport = :${cfg.PROXY_PORT}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }) !== '';
  } catch {
    return false;
  }
}

/** @param {Config} cfg @param {string} [ip] */
async function healthy(cfg, ip = cfg.PROXY_IP) {
  try {
    await execFileP('curl', ['-fsS', '-m', '2', `http://${ip}:${cfg.HTTP_PORT}/healthz`]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts a target and waits until it is ready: SIP port bound, /healthz answers (sipbob),
 * and no more processes being forked for two seconds (Kamailio starts its workers after
 * binding). Under valgrind: `tool` is cachegrind (counts from the start, --cache-sim=no:
 * instruction counts only) or callgrind (counts nothing until switched on).
 * sipbob in a Redis mode (ctx.storage): redis-server is started first, the measured instance
 * gets storage.redis and cluster, and once it is ready the peer starts on PEER_IP; both are
 * stopped after the target by stopTarget (Proc.companions).
 * @param {Ctx} ctx @param {string} t @param {string} gen @param {string} name log file name
 * @param {{ cgDir?: string, tool?: 'cachegrind' | 'callgrind', nodeExtra?: string[] }} [opts]
 * @returns {Promise<Proc>}
 */
export async function startTarget(ctx, t, gen, name, opts = {}) {
  const cfg = ctx.cfg;
  if (portBusy(cfg)) die(`UDP port ${cfg.PROXY_PORT} is already in use`);
  const clustered = t === 'sipbob' && ctx.storage !== undefined && ctx.storage !== 'embedded';
  ctx.cluster = undefined;
  /** @type {import('./redis.mjs').RedisRun | undefined} */
  let redis;
  let config;
  if (clustered) {
    redis = await startRedis(ctx, name);
    config = clusterYaml(join(gen, 'sipbob.yaml'), join(ctx.run, `${name}.yaml`),
      { url: redis.url, instance: MEASURED, ip: cfg.PROXY_IP, sipPort: cfg.PROXY_PORT, httpPort: cfg.HTTP_PORT });
  }
  let cmd = targetCmd(ctx, t, gen, lineCount(join(gen, 'users.csv')) - 1, opts.nodeExtra ?? [], config);
  rmSync(join(gen, 'sipbob-data'), { recursive: true, force: true });
  mkdirSync(join(gen, 'sipbob-data'), { recursive: true }); // fresh state every start
  let limit = 60;
  const tool = opts.tool ?? 'cachegrind';
  if (opts.cgDir) {
    mkdirSync(opts.cgDir, { recursive: true });
    if (tool === 'callgrind') {
      // Nothing is counted until the window switches it on: start-up and warm-up stay out.
      cmd = [cfg.VALGRIND, '--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${opts.cgDir}/cg.%p`, ...cmd];
    } else {
      cmd = [cfg.VALGRIND, '--tool=cachegrind', '--cache-sim=no', `--cachegrind-out-file=${opts.cgDir}/cg.%p`, ...cmd];
    }
    limit = 600; // node under valgrind takes about two minutes to start
  }
  log(`start ${t}${opts.cgDir ? ` under ${tool}` : ''}: ${cmd.join(' ')}`);
  const p = startBg(join(ctx.run, `${name}.log`), cmd[0], cmd.slice(1));
  let last = -1;
  let stable = 0;
  for (let i = 0; i < limit * 2; i++) {
    if (!alive(p.pid)) die(`${t} exited during start; see ${ctx.run}/${name}.log`);
    if (portBusy(cfg) && (t !== 'sipbob' || (await healthy(cfg)))) {
      const n = treePids(p.pid).length;
      if (n === last) stable++;
      else {
        stable = 0;
        last = n;
      }
      if (stable >= 4) {
        log(`${t} ready (pid ${p.pid}, ${n} processes)`);
        if (redis) {
          const peer = await startPeer(ctx, gen, name, redis.url);
          p.companions = [peer, redis.proc];
          ctx.cluster = { redis, peer, pid: p.pid };
        }
        return p;
      }
    }
    await sleep(500);
  }
  return die(`${t} not ready after ${limit}s; see ${ctx.run}/${name}.log`);
}

/**
 * The second instance of a Redis mode: plain node (not measured), the same accounts, on
 * PEER_IP with the measured instance's ports, sharing its Redis.
 * @param {Ctx} ctx @param {string} gen @param {string} name @param {string} url
 * @returns {Promise<Proc>}
 */
async function startPeer(ctx, gen, name, url) {
  const cfg = ctx.cfg;
  if (!ctx.sipbob) die('sipbob is not built');
  const config = clusterYaml(join(gen, 'sipbob.yaml'), join(ctx.run, `${name}-peer.yaml`),
    { url, instance: PEER, ip: cfg.PEER_IP, sipPort: cfg.PROXY_PORT, httpPort: cfg.HTTP_PORT });
  const cmd = [cfg.NODE, ctx.sipbob.cli, '--config', config];
  log(`start peer: ${cmd.join(' ')}`);
  const p = startBg(join(ctx.run, `${name}-peer.log`), cmd[0], cmd.slice(1));
  for (let i = 0; i < 120; i++) {
    if (!alive(p.pid)) die(`the peer exited during start; see ${ctx.run}/${name}-peer.log`);
    if (await healthy(cfg, cfg.PEER_IP)) {
      // The measured instance reads the live instances once a second: let it see the peer.
      await sleep(3000);
      log(`peer ready (pid ${p.pid})`);
      return p;
    }
    await sleep(500);
  }
  return die(`the peer not ready after 60s; see ${ctx.run}/${name}-peer.log`);
}

/**
 * Stops a target, then what it needed (a Redis mode's peer and redis-server); valgrind needs
 * time to write its output.
 * @param {Proc} p @param {boolean} [cg]
 */
export async function stopTarget(p, cg = false) {
  await stopTree(p, cg ? 180 : 20);
  for (const c of p.companions ?? []) await stopTree(c, 10);
}

/**
 * Registers bench-a/b/c from where their UAS will listen, then starts those SIPps.
 * @param {Ctx} ctx @param {string} t label for the files @param {string} gen
 * @returns {Promise<Proc[]>}
 */
export async function startDevices(ctx, t, gen) {
  const c = ctx.cfg;
  // redis-relay: the devices are the peer's, so every branch the measured instance forks goes
  // through the peer, which relays it to the device.
  const via = ctx.storage === 'redis-relay' ? `${c.PEER_IP}:${c.PROXY_PORT}` : undefined;
  for (const [d, ip] of [['a', A_IP], ['b', B_IP], ['c', C_IP]]) {
    const r = await runSipp(ctx, `${t}-reg-bench-${d}`, 40, ['-sf', `${SCEN}/reg.xml`, '-inf', `${gen}/dev-bench-${d}.csv`,
      '-key', 'expires', '3600', '-i', ip, '-p', '5060', '-m', '1'], via);
    if (r.ok !== 1) die(`${t}: registering bench-${d} failed; see ${ctx.run}/${t}-reg-bench-${d}.*`);
  }
  /** @param {string} d @param {string} scen @param {string} ip @param {string[]} delay */
  const uas = (d, scen, ip, delay) => startBg(`${ctx.run}/${t}-uas-${d}.out`, c.SIPP, ['-sf', `${SCEN}/${scen}`, '-i', ip, '-p', '5060', ...delay,
    ...SIPP_COMMON, '-trace_stat', '-stf', `${ctx.run}/${t}-uas-${d}.csv`, '-fd', '5', '-trace_err', '-error_file', `${ctx.run}/${t}-uas-${d}.err`]);
  const pids = [
    uas('a', 'uas-answer.xml', A_IP, ['-d', String(c.RING_MS)]),
    uas('b', 'uas-ring.xml', B_IP, []),
    uas('c', 'uas-answer.xml', C_IP, ['-d', '0']),
  ];
  await sleep(1000);
  return pids;
}

/** The UAS SIPps must live through a phase, or its failures are ours. @param {Proc[]} devices */
export function devicesAlive(devices) {
  for (const p of devices) {
    if (!alive(p.pid)) {
      log(`WARNING: device SIPp ${p.pid} died (killed from outside?)`);
      return false;
    }
  }
  return true;
}

/** @param {Proc[]} devices */
export async function stopDevices(devices) {
  for (const p of devices) await stopTree(p, 3);
}
