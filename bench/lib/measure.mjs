// What is measured: CPU time and memory of the proxy's process tree from /proc, instruction
// counts under valgrind (cachegrind N/2N runs, callgrind windows), and the metrics file
// (metrics.tsv: target, key, value) the report is written from.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { c0, cfixed } from './fmt.mjs';
import { busyCalls, forkCalls, holdBusyCall, registrations } from './load.mjs';
import { die, log, sleep, statFields, stopTree, treePids } from './proc.mjs';
import { redisCounter } from './redis.mjs';
import { devicesAlive, startDevices, startTarget, stopDevices, stopTarget } from './start.mjs';

const execFileP = promisify(execFile);

/** @typedef {import('./start.mjs').Ctx} Ctx */
/** @typedef {import('./load.mjs').SippResult} SippResult */

/** The raw numbers of a run, in memory and in metrics.tsv. */
export class Metrics {
  /** @param {string} file */
  constructor(file) {
    this.file = file;
    /** @type {[string, string, string][]} */
    this.rows = [];
    writeFileSync(file, '');
  }

  /** @param {string} t @param {string} key @param {string | number} value */
  add(t, key, value) {
    this.rows.push([t, key, String(value)]);
    appendFileSync(this.file, `${t}\t${key}\t${value}\n`);
  }

  /** The last value of key for target t, or '' (as the shell's val). @param {string} t @param {string} key */
  val(t, key) {
    let v = '';
    for (const [rt, rk, rv] of this.rows) if (rt === t && rk === key) v = rv;
    return v;
  }

  /** @param {string} t @param {RegExp} re */
  has(t, re) {
    return this.rows.some(([rt, rk]) => rt === t && re.test(rk));
  }
}

// ------------------------------------------------------------------ /proc

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/**
 * [utime+stime, utime] of the process tree (all threads), in clock ticks.
 * @param {number} pid
 * @returns {[number, number]}
 */
export function cpuTicks(pid) {
  let t = 0;
  let u = 0;
  for (const p of treePids(pid)) {
    const f = statFields(p);
    if (!f) continue;
    t += Number(f[11]) + Number(f[12]);
    u += Number(f[11]);
  }
  return [t, u];
}

/**
 * [rss, pss] in kB summed over the tree. PSS shares Kamailio's shm fairly among its
 * processes (the sum of VmRSS counts the shared memory once per process).
 * @param {number} pid
 * @returns {[number, number]}
 */
export function memKb(pid) {
  let r = 0;
  let s = 0;
  for (const p of treePids(pid)) {
    r += procField(`/proc/${p}/status`, /^VmRSS:\s+(\d+)/m);
    s += procField(`/proc/${p}/smaps_rollup`, /^Pss:\s+(\d+)/m);
  }
  return [r, s];
}

/** @param {string} file @param {RegExp} re */
function procField(file, re) {
  try {
    return Number(re.exec(readFileSync(file, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** µs per operation from clock ticks. @param {number} ticks @param {number} n */
export const usPer = (ticks, n) => (n > 0 ? cfixed((ticks * 1e6) / CLK_TCK / n, 1) : 'n/a');

// ------------------------------------------------------------------ valgrind output

/**
 * Sum of the second field of the lines starting with `prefix` in the files of dir whose
 * names match re: cachegrind's "summary:" and callgrind's "totals:" per process.
 * @param {string} dir @param {RegExp} re @param {string} prefix
 */
function sumField(dir, re, prefix) {
  let s = 0;
  for (const f of readdirSync(dir)) {
    if (!re.test(f)) continue;
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (line.startsWith(prefix)) s += Number(line.split(/\s+/)[1]) || 0;
    }
  }
  return s;
}

/** Instruction counts summed over all cachegrind files of one run (all processes). @param {string} dir */
export const cgIrefs = (dir) => sumField(dir, /^cg\./, 'summary:');

// ------------------------------------------------------------------ cachegrind N/2N

/**
 * @typedef {object} CgPlan
 * @property {number} n        N per workload
 * @property {number} rate     operations per second
 * @property {string[]} workloads
 * @property {number | undefined} padS
 */

/**
 * One proxy run under cachegrind with nf forked calls, nb 486s and nr registrations, padded
 * to pad seconds of wall time.
 * @param {Ctx} ctx @param {string} t @param {string} gen @param {string} label
 * @param {number} nf @param {number} nb @param {number} nr @param {number} pad @param {number} rate @param {string[]} nodeExtra
 * @returns {Promise<{ ir: number, valid: boolean }>}
 */
async function cgRun(ctx, t, gen, label, nf, nb, nr, pad, rate, nodeExtra) {
  const dir = `${ctx.run}/cg-${t}-${label}`;
  const name = `${t}-cg-${label}`;
  let valid = true;
  rmSync(dir, { recursive: true, force: true });
  const target = await startTarget(ctx, t, gen, name, { cgDir: dir, tool: 'cachegrind', nodeExtra });
  const devices = await startDevices(ctx, name, gen);
  const t0 = Date.now();
  if (nf > 0) {
    const r = await forkCalls(ctx, name, 'fork', nf, rate);
    log(`${t} cg ${label}: fork ok=${r.ok}/${nf} retrans=${r.retr}`);
    if (r.ok !== nf) {
      valid = false;
      log(`WARNING: ${t} cg ${label}: ${r.fail} forked calls failed`);
    }
  }
  if (nb > 0) {
    const hold = await holdBusyCall(ctx, name);
    const r = await busyCalls(ctx, name, 'busy', nb, rate);
    log(`${t} cg ${label}: busy ok=${r.ok}/${nb} retrans=${r.retr}`);
    if (r.ok !== nb) {
      valid = false;
      log(`WARNING: ${t} cg ${label}: ${r.fail} busy calls failed`);
    }
    await stopTree(hold, 3);
  }
  if (nr > 0) {
    const r = await registrations(ctx, name, 'reg', gen, 1, nr, rate);
    log(`${t} cg ${label}: reg ok=${r.ok}/${nr} retrans=${r.retr}`);
    if (r.ok !== nr) {
      valid = false;
      log(`WARNING: ${t} cg ${label}: ${r.fail} registrations failed`);
    }
  }
  // Every run lasts the same wall time, so what the process does while idle (timers, GC
  // and JIT work in the background) is the same in all runs and cancels in the difference.
  const left = t0 + pad * 1000 - Date.now();
  if (left > 0) {
    log(`${t} cg ${label}: idle ${Math.round(left / 1000)}s to pad the run to ${pad}s`);
    await sleep(left);
  } else {
    log(`WARNING: ${t} cg ${label}: run took ${Math.round(-left / 1000)}s longer than the ${pad}s pad; raise CG_PAD_S`);
  }
  if (!devicesAlive(devices)) valid = false;
  await stopDevices(devices);
  await stopTarget(target, true);
  const ir = cgIrefs(dir);
  log(`${t} cg ${label}: I refs ${ir}`);
  return { ir, valid };
}

/**
 * cgRun, once more if a call failed (the instruction count would be off); records
 * cg_<label>_ir (and cg_<label>_invalid).
 * @param {Ctx} ctx @param {string} t @param {string} gen @param {string} label
 * @param {number} nf @param {number} nb @param {number} nr @param {number} pad @param {number} rate @param {string[]} nodeExtra
 */
async function cgRunValid(ctx, t, gen, label, nf, nb, nr, pad, rate, nodeExtra) {
  let res = { ir: 0, valid: false };
  for (let attempt = 1; attempt <= 2; attempt++) {
    res = await cgRun(ctx, t, gen, label, nf, nb, nr, pad, rate, nodeExtra);
    if (res.valid) break;
    if (attempt === 1) log(`WARNING: ${t} cg ${label}: calls failed; repeating the run`);
    else log(`WARNING: ${t} cg ${label}: calls failed again; the count is marked invalid`);
  }
  ctx.metrics.add(t, `cg_${label}_ir`, c0(res.ir));
  if (!res.valid) ctx.metrics.add(t, `cg_${label}_invalid`, 1);
}

/** Median of the label's repetitions (as sort -n and awk did). @param {Ctx} ctx @param {string} t @param {string} label @param {number} reps */
function cgMedian(ctx, t, label, reps) {
  const v = [];
  for (let r = 1; r <= reps; r++) v.push(Number(ctx.metrics.val(t, `cg_${label}-${r}_ir`)) || 0);
  v.sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : Number(c0((v[v.length / 2 - 1] + v[v.length / 2]) / 2));
}

/**
 * Instructions per operation by difference: a base run with N of every workload, and per
 * workload a run with 2N of it, so start-up, JIT warm-up, the devices' registrations and
 * idle timers cancel. Runs are repeated (interleaved, so a slow drift hits all alike) and
 * medians compared: CG_REPEATS for sipbob (node's start-up count varies from run to run),
 * CG_REPEATS_KAMAILIO for Kamailio (plain C: its counts repeat; bench/README.md).
 * Records ir_<workload> and, with repetitions, ir_noise.
 * @param {Ctx} ctx @param {string} t @param {string} gen @param {CgPlan} plan
 */
export async function cachegrindTarget(ctx, t, gen, plan) {
  const c = ctx.cfg;
  const reps = t === 'kamailio' ? c.CG_REPEATS_KAMAILIO : c.CG_REPEATS;
  let hf = 0;
  let hb = 0;
  let hr = 0;
  let k = 0;
  for (const w of plan.workloads) {
    if (w === 'fork') hf = plan.n;
    else if (w === 'busy') hb = plan.n;
    else if (w === 'reg') hr = plan.n;
    else die(`CG_WORKLOADS: ${w}?`);
    k++;
  }
  // longest run: (k+1)*N operations at the rate, plus set-up of each phase (busy probe,
  // SIPp exits); slow machines can raise CG_PAD_S.
  const pad = plan.padS ?? Math.trunc(((k + 1) * plan.n) / plan.rate) + 15 * k + 20;
  const nodeExtra = t === 'sipbob' ? c.CG_NODE_FLAGS : [];
  for (let r = 1; r <= reps; r++) {
    await cgRunValid(ctx, t, gen, `base-${r}`, hf, hb, hr, pad, plan.rate, nodeExtra);
    for (const w of plan.workloads) {
      const nf = w === 'fork' ? 2 * hf : hf;
      const nb = w === 'busy' ? 2 * hb : hb;
      const nr = w === 'reg' ? 2 * hr : hr;
      await cgRunValid(ctx, t, gen, `${w}-${r}`, nf, nb, nr, pad, plan.rate, nodeExtra);
    }
  }
  const base = cgMedian(ctx, t, 'base', reps);
  for (const w of plan.workloads) {
    let v = c0((cgMedian(ctx, t, w, reps) - base) / plan.n);
    if (ctx.metrics.has(t, new RegExp(`^cg_(base|${w})-[0-9]+_invalid`))) v += ' (invalid: calls failed)';
    ctx.metrics.add(t, `ir_${w}`, v);
  }
  if (reps > 1) {
    // noise: spread of identical base runs, per operation
    const v = [];
    for (let r = 1; r <= reps; r++) v.push(Number(ctx.metrics.val(t, `cg_base-${r}_ir`)) || 0);
    ctx.metrics.add(t, 'ir_noise', c0((Math.max(...v) - Math.min(...v)) / plan.n));
  }
}

// ------------------------------------------------------------------ callgrind window
// The N/2N differences carry node's start-up noise into every figure (bench/README.md).
// Here valgrind counts nothing until the workload is warmed up: callgrind's instrumentation
// is switched on for exactly N operations (callgrind_control, through the node process's
// vgdb channel), dumped, and switched off again. Everything the process does in that window
// counts (GC, timers, JIT), nothing before it. sipbob only: Kamailio's forked workers have
// no vgdb channel for callgrind_control; run.mjs measures Kamailio with cachegrindTarget.

/** callgrind_control args... for the target process (errors ignored). @param {number} pid @param {string[]} args */
async function cgwCtl(pid, args) {
  try {
    await execFileP('callgrind_control', [...args, String(pid)]);
  } catch {
    // as before: a failed control command shows as a wrong or missing count
  }
}

/**
 * Runs op instrumented but not counted (the window zeroes the counters). Instrumented, node
 * runs many times slower than in the warm-up: the odd retransmission and late timer now
 * happen, and the JIT re-optimizes for them. Here, not in the window.
 * @param {Ctx} ctx @param {number} pid @param {() => Promise<SippResult>} op
 */
async function cgwSettle(ctx, pid, op) {
  if (ctx.cfg.CGW_SETTLE <= 0) return;
  await cgwCtl(pid, ['-i', 'on']);
  await op();
}

/**
 * Runs op with the counters on and dumps into dir/w; records ir_<w> (per operation) and
 * ir_<w>_invalid if not all n operations succeeded; writes callgrind-<t>-<w>.txt. t is the
 * metrics label (sipbob, sipbob-redis, ...; kamailio has no window). In a Redis mode, what
 * reaches Redis during the window is counted as well (redis.mjs).
 * @param {Ctx} ctx @param {string} t @param {number} pid @param {string} dir @param {string} w @param {number} n
 * @param {() => Promise<SippResult>} op
 */
async function cgwWindow(ctx, t, pid, dir, w, n, op) {
  const counted = await redisCounter(ctx, `${t}-cgw-${w}`);
  await cgwCtl(pid, ['-z']);
  await cgwCtl(pid, ['-i', 'on']);
  const r = await op();
  await cgwCtl(pid, ['-d', w]);
  await cgwCtl(pid, ['-i', 'off']);
  if (counted) await counted(t, w, n);
  const wdir = join(dir, w);
  mkdirSync(wdir, { recursive: true });
  await sleep(1000);
  for (const f of readdirSync(dir)) if (/^cg\..*\./.test(f)) renameSync(join(dir, f), join(wdir, f));
  const ir = c0(sumField(wdir, /^cg\./, 'totals:'));
  ctx.metrics.add(t, `ir_${w}`, c0(Number(ir) / n));
  if (r.ok !== n) ctx.metrics.add(t, `ir_${w}_invalid`, `${r.ok}/${n}`);
  log(`${t} callgrind ${w}: ${ir} instructions for ${r.ok}/${n} operations`);
  const files = readdirSync(wdir).filter((f) => /^cg\./.test(f)).sort().map((f) => join(wdir, f));
  const a = spawnSync('callgrind_annotate', ['--inclusive=no', ...files], { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] });
  writeFileSync(join(ctx.run, `callgrind-${t}-${w}.txt`), headLines(a.stdout ?? '', 80));
  if (t.startsWith('sipbob')) {
    const run = (args) => spawnSync('callgrind_annotate', [...args, ...files], { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] }).stdout ?? '';
    const v8 = v8Work(run(['--inclusive=yes', '--threshold=100']), run(['--tree=caller', '--threshold=100']));
    const steady = Number(ir) - v8.compile - v8.gc;
    ctx.metrics.add(t, `ir_${w}_steady`, c0(steady / n));
    log(`${t} callgrind ${w}: steady ${c0(steady / n)} per operation (JIT compilation ${c0(v8.compile / n)}, GC ${c0(v8.gc / n)} left out)`);
  }
}

/** Inclusive cost of the functions whose name matches re, from `callgrind_annotate --inclusive=yes`. */
function inclusive(text, re) {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^\s*([\d,]+) \([^)]*\)\s+\?\?\?:(.*)$/.exec(line);
    if (m && re.test(m[2])) sum += Number(m[1].replaceAll(',', ''));
  }
  return sum;
}

/**
 * What V8 did inside a window that depends on when it happened rather than on the operations:
 * optimizing compilation, and garbage collection: Heap::CollectGarbage (scavenges, a full
 * mark-compact) and the incremental marking steps that run as tasks outside it. The marking
 * task ends by calling CollectGarbage to finalize; that part, read from the caller tree
 * (`--tree=caller`), is counted once.
 * @param {string} inc `--inclusive=yes` output @param {string} tree `--tree=caller` output
 */
export function v8Work(inc, tree) {
  const collect = inclusive(inc, /^v8::internal::Heap::CollectGarbage\(/);
  const marking = inclusive(inc, /^v8::internal::IncrementalMarkingJob::Task::RunInternal\(/);
  let finalize = 0;
  const m = /^\s*([\d,]+) \([^)]*\)\s+< \?\?\?:v8::internal::Heap::FinalizeIncrementalMarkingIfComplete\([^\n]*\n(?:\s*[\d,]+ \([^)]*\)\s+< [^\n]*\n)*\s*[\d,]+ \([^)]*\)\s+\*\s+\?\?\?:v8::internal::Heap::CollectGarbage\(/m.exec(tree);
  if (m) finalize = Number(m[1].replaceAll(',', ''));
  return {
    compile: inclusive(inc, /^v8::internal::Compiler::CompileOptimized\(/),
    gc: collect + marking - Math.min(marking, finalize),
  };
}

/** The first n lines of text, as head -n. @param {string} text @param {number} n */
function headLines(text, n) {
  let i = -1;
  for (let k = 0; k < n; k++) {
    i = text.indexOf('\n', i + 1);
    if (i < 0) return text;
  }
  return text.slice(0, i + 1);
}

/**
 * sipbob under callgrind: the devices register, then per workload CGW_WARMUP operations at
 * CGW_WARMUP_RATE (uninstrumented), CGW_SETTLE at CGW_RATE (instrumented, not counted) and
 * the window of CGW_N at CGW_RATE. Registrations use fresh accounts in every phase.
 * label names the metrics and files (sipbob, or sipbob-<storage> in a Redis mode).
 * @param {Ctx} ctx @param {string} t @param {string} gen @param {string} [label]
 */
export async function callgrindTarget(ctx, t, gen, label = t) {
  const c = ctx.cfg;
  const dir = `${ctx.run}/cgw-${label}`;
  const name = `${label}-cgw`;
  const target = await startTarget(ctx, t, gen, name, { cgDir: dir, tool: 'callgrind', nodeExtra: c.CG_NODE_FLAGS });
  const pid = target.pid;
  const devices = await startDevices(ctx, name, gen);
  for (const w of c.CGW_WORKLOADS) {
    switch (w) {
      case 'fork':
        await forkCalls(ctx, name, 'fork-warmup', c.CGW_WARMUP, c.CGW_WARMUP_RATE);
        await cgwSettle(ctx, pid, () => forkCalls(ctx, name, 'fork-settle', c.CGW_SETTLE, c.CGW_RATE));
        await cgwWindow(ctx, label, pid, dir, 'fork', c.CGW_N, () => forkCalls(ctx, name, 'fork', c.CGW_N, c.CGW_RATE));
        break;
      case 'busy': {
        const hold = await holdBusyCall(ctx, name);
        await busyCalls(ctx, name, 'busy-warmup', c.CGW_WARMUP, c.CGW_WARMUP_RATE);
        await cgwSettle(ctx, pid, () => busyCalls(ctx, name, 'busy-settle', c.CGW_SETTLE, c.CGW_RATE));
        await cgwWindow(ctx, label, pid, dir, 'busy', c.CGW_N, () => busyCalls(ctx, name, 'busy', c.CGW_N, c.CGW_RATE));
        await stopTree(hold, 3);
        break;
      }
      case 'reg':
        await registrations(ctx, name, 'reg-warmup', gen, 1, c.CGW_WARMUP, c.CGW_WARMUP_RATE);
        await cgwSettle(ctx, pid, () => registrations(ctx, name, 'reg-settle', gen, c.CGW_WARMUP + 1, c.CGW_SETTLE, c.CGW_RATE));
        await cgwWindow(ctx, label, pid, dir, 'reg', c.CGW_N, () =>
          registrations(ctx, name, 'reg', gen, c.CGW_WARMUP + c.CGW_SETTLE + 1, c.CGW_N, c.CGW_RATE));
        break;
      default:
        die(`CGW_WORKLOADS: ${w}?`);
    }
  }
  await stopDevices(devices);
  await redisHealth(ctx, label);
  await stopTarget(target, true);
}

/**
 * A Redis mode's own health at the end: failed Redis commands and resyncs of both instances
 * (from /metrics). A failed write or a resync in a window means extra work in its count.
 * @param {Ctx} ctx @param {string} label
 */
export async function redisHealth(ctx, label) {
  if (!ctx.cluster) return;
  const c = ctx.cfg;
  for (const [who, ip] of [['measured', c.PROXY_IP], ['peer', c.PEER_IP]]) {
    try {
      const { stdout } = await execFileP('curl', ['-fsS', '-m', '20', '-H', 'Authorization: Bearer bench-token', `http://${ip}:${c.HTTP_PORT}/metrics`], { encoding: 'utf8' });
      const v = (/** @type {string} */ name) => new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(stdout)?.[1] ?? '?';
      const line = `up ${v('sipbob_redis_up')}, errors ${v('sipbob_redis_errors_total')}, resyncs ${v('sipbob_redis_resyncs_total')}, reaped ${v('sipbob_cluster_instances_reaped_total')}`;
      ctx.metrics.add(label, `redis_health_${who}`, line);
      log(`${label}: ${who} instance: redis ${line}`);
    } catch (e) {
      log(`WARNING: ${label}: /metrics of the ${who} instance: ${/** @type {Error} */ (e).message}`);
    }
  }
}
