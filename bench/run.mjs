#!/usr/bin/env node
// The same SIPp load against Kamailio and sipbob, back to back, on loopback.
//
//   bench/run.mjs                 load run: calls, REGISTERs, 486s (CPU time), memory (10k/100k)
//   bench/run.mjs --cachegrind    instructions per forked call / 486 / registration (valgrind, N/2N)
//   bench/run.mjs --all           both
//   bench/run.mjs --profile       sipbob only, under node --cpu-prof: where its time goes
//   bench/run.mjs --callgrind     instructions per operation in a warmed-up window (callgrind
//                                 counts only between two marks), and where they go
//
// Sizes and rates come from environment variables (--help, bench/README.md). Every process
// the bench starts is stopped on exit, every load is bounded in count and time, and nothing
// leaves 127.0.0.0/8. The pieces live in bench/lib/: config (knobs), proc (processes),
// start (build, accounts, proxies, devices), load (SIPp), measure (/proc, valgrind), report.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, loadConfig, sipbobLabel, STORAGES, USAGE } from './lib/config.mjs';
import { busyCalls, forkCalls, holdBusyCall, pushRegistrations, registrations } from './lib/load.mjs';
import { cachegrindTarget, callgrindTarget, cpuTicks, memKb, Metrics, redisHealth, usPer } from './lib/measure.mjs';
import { BenchError, die, log, sleep, stopAll, stopTree } from './lib/proc.mjs';
import { redisCounter } from './lib/redis.mjs';
import { report } from './lib/report.mjs';
import { devicesAlive, genConfig, sipbobBuild, startDevices, startTarget, stopDevices, stopTarget } from './lib/start.mjs';

/** @typedef {import('./lib/start.mjs').Ctx} Ctx */

/** @param {string[]} argv */
function parseMode(argv) {
  let mode = 'load';
  for (const a of argv) {
    if (a === '--cachegrind') mode = 'cachegrind';
    else if (a === '--all') mode = 'all';
    else if (a === '--profile') mode = 'profile';
    else if (a === '--callgrind') mode = 'callgrind';
    else if (a === '-h' || a === '--help') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else {
      process.stderr.write(USAGE);
      process.exit(2);
    }
  }
  return mode;
}

const two = (/** @type {number} */ n) => String(n).padStart(2, '0');
const stamp = (d = new Date()) =>
  `${d.getFullYear()}${two(d.getMonth() + 1)}${two(d.getDate())}-${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}`;

/** @param {string} cmd */
function have(cmd) {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { stdio: 'ignore' }).status === 0;
}

// ------------------------------------------------------------------ load run, one target

/**
 * @param {Ctx} ctx @param {string} target_ kamailio or sipbob @param {string} gen
 * @param {string} [label] the metrics label (sipbob-<storage> in a Redis mode)
 */
async function loadTarget(ctx, target_, gen, label = target_) {
  const c = ctx.cfg;
  const m = ctx.metrics;
  const t = label;
  const target = await startTarget(ctx, target_, gen, t, { nodeExtra: target_ === 'sipbob' ? c.SIPBOB_NODE_FLAGS : [] });
  m.add(t, 'mem_start_kb', memKb(target.pid)[1]);
  const devices = await startDevices(ctx, t, gen);

  log(`${t}: warm-up ${c.WARMUP_CALLS} calls`);
  await forkCalls(ctx, t, 'warmup', c.WARMUP_CALLS, c.CALL_RATE);

  /**
   * CPU of the proxy's tree across one phase; records <key>_ok, _cpu_us, _retrans, _user_us.
   * @param {string} key @param {number} n @param {() => Promise<import('./lib/load.mjs').SippResult>} op
   */
  const phase = async (key, n, op) => {
    const counted = await redisCounter(ctx, `${t}-${key}`);
    const [c0, u0] = cpuTicks(target.pid);
    const r = await op();
    const [c1, u1] = cpuTicks(target.pid);
    if (counted) await counted(t, key, n);
    m.add(t, `${key}_ok`, `${r.ok}/${n}`);
    m.add(t, `${key}_cpu_us`, usPer(c1 - c0, n));
    m.add(t, `${key}_retrans`, r.retr);
    m.add(t, `${key}_user_us`, usPer(u1 - u0, n));
    return { r, cpu: c1 - c0, user: u1 - u0 };
  };
  /** @param {string} key @param {{ r: import('./lib/load.mjs').SippResult, cpu: number, user: number }} p */
  const done = (key, p) =>
    log(`${t}: ${key} ok=${p.r.ok} failed=${p.r.fail} retrans=${p.r.retr} rc=${p.r.rc} cpu=${p.cpu} ticks (user ${p.user})`);

  log(`${t}: (a) ${c.CALLS} forked calls at ${c.CALL_RATE}/s`);
  const fork = await phase('fork', c.CALLS, () => forkCalls(ctx, t, 'fork', c.CALLS, c.CALL_RATE));
  if (!devicesAlive(devices)) m.add(t, 'fork_note', 'device SIPp died');
  done('fork', fork);

  log(`${t}: (c) ${c.BUSY_CALLS} Busy-on-Busy calls at ${c.BUSY_RATE}/s`);
  const hold = await holdBusyCall(ctx, t);
  const busy = await phase('busy', c.BUSY_CALLS, () => busyCalls(ctx, t, 'busy', c.BUSY_CALLS, c.BUSY_RATE));
  if (!devicesAlive(devices)) m.add(t, 'busy_note', 'device SIPp died');
  done('busy', busy);
  await stopTree(hold, 3);

  log(`${t}: (b) ${c.REGS} registrations at ${c.REG_RATE}/s`);
  const reg = await phase('reg', c.REGS, () => registrations(ctx, t, 'reg', gen, 1, c.REGS, c.REG_RATE));
  done('reg', reg);
  await stopDevices(devices);

  // (d) memory: registered accounts so far are 1..REGS; push the rest step by step.
  let registered = reg.r.ok;
  let from = c.REGS + 1;
  for (const step of c.MEM_STEPS) {
    if (step >= from) {
      log(`${t}: (d) registering accounts ${from}..${step} at ${c.MEM_RATE}/s`);
      registered += await pushRegistrations(ctx, t, gen, from, step);
      from = step + 1;
    }
    await sleep(3000); // let the last replies go out and timers settle before sampling
    const [rss, pss] = memKb(target.pid);
    m.add(t, `mem_${step}_kb`, pss);
    m.add(t, `mem_${step}_rss_kb`, rss);
    m.add(t, `mem_${step}_ok`, `${registered}/${step}`);
    log(`${t}: ${registered}/${step} registered, rss+pss kB: ${rss} ${pss}`);
  }
  await redisHealth(ctx, t);
  await stopTarget(target);
}

// ------------------------------------------------------------------ profile (sipbob only)

/** @param {Ctx} ctx @param {string} gen */
async function profileSipbob(ctx, gen) {
  const c = ctx.cfg;
  for (const w of c.PROF_WORKLOADS) {
    const profDir = `${ctx.run}/prof-${w}`;
    const target = await startTarget(ctx, 'sipbob', gen, `sipbob-prof-${w}`, { nodeExtra: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] });
    const devices = await startDevices(ctx, `sipbob-prof-${w}`, gen);
    let r;
    switch (w) {
      case 'fork':
        await forkCalls(ctx, 'sipbob-prof', 'warmup', c.WARMUP_CALLS, c.CALL_RATE);
        r = await forkCalls(ctx, 'sipbob-prof', 'fork', c.CALLS, c.CALL_RATE);
        break;
      case 'busy': {
        const hold = await holdBusyCall(ctx, 'sipbob-prof');
        r = await busyCalls(ctx, 'sipbob-prof', 'busy', c.BUSY_CALLS, c.BUSY_RATE);
        await stopTree(hold, 3);
        break;
      }
      case 'reg':
        r = await registrations(ctx, 'sipbob-prof', 'reg', gen, 1, c.REGS, c.REG_RATE);
        break;
      default:
        die(`PROF_WORKLOADS: ${w}?`);
    }
    log(`sipbob profile ${w}: ok=${r.ok} failed=${r.fail}`);
    await stopDevices(devices);
    await stopTarget(target); // SIGTERM: node writes the profile on its way out
    const profiles = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')).sort().map((f) => join(profDir, f));
    const top = spawnSync(c.NODE, [join(BENCH_DIR, 'cpuprofile-top.mjs'), ...profiles, '30'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    process.stdout.write(top.stdout ?? '');
    writeFileSync(`${ctx.run}/prof-${w}.txt`, top.stdout ?? '');
  }
}

// ------------------------------------------------------------------ main

async function main() {
  const mode = parseMode(process.argv.slice(2));
  let cfg;
  try {
    cfg = loadConfig(mode);
  } catch (e) {
    die(/** @type {Error} */ (e).message);
  }
  for (const bin of [cfg.KAMAILIO, cfg.SIPP, 'curl', 'ss', 'timeout']) if (!have(bin)) die(`${bin} not found`);
  if (mode === 'callgrind' && !have('callgrind_control')) die('callgrind_control not found');
  if (mode !== 'load' && mode !== 'profile' && !have(cfg.VALGRIND)) die('valgrind not found');
  for (const step of cfg.MEM_STEPS) if (step > 999999) die('MEM_STEPS: at most 999999');
  for (const t of cfg.TARGETS) if (t !== 'sipbob' && t !== 'kamailio') die(`unknown target ${t}`);
  for (const s of cfg.SIPBOB_STORAGE) if (!STORAGES.includes(s)) die(`SIPBOB_STORAGE: ${s}? (${STORAGES.join(', ')})`);
  const clustered = cfg.SIPBOB_STORAGE.some((s) => s !== 'embedded');
  if (clustered && mode !== 'load' && mode !== 'callgrind') die('SIPBOB_STORAGE: the Redis modes run with the load run and --callgrind only');
  if (clustered) for (const bin of [cfg.REDIS_SERVER, cfg.REDIS_CLI]) if (!have(bin)) die(`${bin} not found`);

  mkdirSync(cfg.OUT, { recursive: true });
  const run = join(cfg.OUT, `run-${stamp()}`);
  mkdirSync(run, { recursive: true });
  /** @type {Ctx} */
  const ctx = { cfg, run, metrics: new Metrics(join(run, 'metrics.tsv')), sipbob: undefined };
  if (cfg.TARGETS.includes('sipbob') || mode === 'profile') ctx.sipbob = sipbobBuild(cfg);
  const maxUsers = Math.max(cfg.REGS, ...cfg.MEM_STEPS);

  if (mode === 'profile') {
    const gen = join(cfg.OUT, `gen-${cfg.CG_REG_USERS}`);
    genConfig(cfg, gen, cfg.CG_REG_USERS);
    await profileSipbob(ctx, gen);
    return;
  }
  if (mode === 'callgrind') {
    // registration: one new account per operation
    const need = Math.max(cfg.CGW_WARMUP + cfg.CGW_SETTLE + cfg.CGW_N, cfg.CG_REG_USERS);
    const gen = join(cfg.OUT, `gen-${need}`);
    genConfig(cfg, gen, need);
    for (const t of cfg.TARGETS) {
      if (t === 'sipbob') {
        // One window per storage mode, back to back in this run.
        for (const s of cfg.SIPBOB_STORAGE) {
          ctx.storage = s;
          await callgrindTarget(ctx, t, gen, sipbobLabel(s));
        }
      }
      // Kamailio: N/2N cachegrind in the same run (its counts do not drift: no JIT, no GC).
      else await cachegrindTarget(ctx, t, gen, { n: cfg.CGW_N_KAMAILIO, rate: cfg.CGW_RATE, workloads: cfg.CGW_WORKLOADS, padS: cfg.CG_PAD_S });
    }
  }
  if (mode === 'load' || mode === 'all') {
    const gen = join(cfg.OUT, `gen-${maxUsers}`);
    genConfig(cfg, gen, maxUsers);
    for (const t of cfg.TARGETS) {
      if (t !== 'sipbob') await loadTarget(ctx, t, gen);
      else {
        for (const s of cfg.SIPBOB_STORAGE) {
          ctx.storage = s;
          await loadTarget(ctx, t, gen, sipbobLabel(s));
        }
      }
    }
  }
  if (mode === 'cachegrind' || mode === 'all') {
    const users = Math.max(cfg.CG_REG_USERS, cfg.CG_N * 2);
    const gen = join(cfg.OUT, `gen-${users}`);
    genConfig(cfg, gen, users);
    for (const t of cfg.TARGETS) await cachegrindTarget(ctx, t, gen, { n: cfg.CG_N, rate: cfg.CG_RATE, workloads: cfg.CG_WORKLOADS, padS: cfg.CG_PAD_S });
  }
  process.stdout.write(report(ctx));
}

let stopping = false;
/** @param {number} code */
async function finish(code) {
  if (stopping) return;
  stopping = true;
  await stopAll();
  process.exit(code);
}
process.on('SIGINT', () => void finish(130));
process.on('SIGTERM', () => void finish(130));
main().then(
  () => finish(0),
  (e) => {
    log(`ERROR: ${e instanceof BenchError ? e.message : (e?.stack ?? e)}`);
    return finish(1);
  },
);
