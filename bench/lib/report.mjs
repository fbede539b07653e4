// The report: one markdown table (metric | sipbob | kamailio | ratio) from metrics.tsv,
// written to the run directory and to OUT/results.md, and printed.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { cfixed } from './fmt.mjs';
import { sipbobLabel } from './config.mjs';
import { repoRel } from './start.mjs';

/** @typedef {import('./start.mjs').Ctx} Ctx */

/** sipbob/kamailio for numbers, "-" otherwise. @param {string} s @param {string} k */
export function ratio(s, k) {
  const num = /^[0-9.]+$/;
  return num.test(s) && num.test(k) && parseFloat(k) > 0 ? cfixed(parseFloat(s) / parseFloat(k), 2) : '-';
}

/** kB -> MB with one decimal, '' stays ''. @param {string} v */
const mb = (v) => (v === '' ? '' : cfixed(parseFloat(v) / 1024, 1));

/** @param {Ctx} ctx @returns {[string, string, string][]} key, label, conversion */
function rows(ctx) {
  /** @type {[string, string, string][]} */
  const r = [
    ['fork_ok', 'forked calls completed without failure (300: 2 devices)', ''],
    ['fork_cpu_us', 'CPU per forked call, µs (utime+stime)', ''],
    ['fork_user_us', '  of which user space, µs', ''],
    ['reg_ok', 'registrations completed', ''],
    ['reg_cpu_us', 'CPU per registration (REGISTER, 401, REGISTER+auth, 200), µs', ''],
    ['reg_user_us', '  of which user space, µs', ''],
    ['busy_ok', 'Busy-on-Busy calls answered 486', ''],
    ['busy_cpu_us', 'CPU per Busy-on-Busy 486, µs', ''],
    ['busy_user_us', '  of which user space, µs', ''],
    ['fork_retrans', 'SIPp retransmissions during the forked calls', ''],
    ['busy_retrans', 'SIPp retransmissions during the 486 calls', ''],
    ['reg_retrans', 'SIPp retransmissions during the registrations', ''],
    ['mem_start_kb', 'memory after start, MB (PSS, all processes)', 'mb'],
  ];
  for (const step of ctx.cfg.MEM_STEPS) {
    r.push([`mem_${step}_ok`, 'registered devices for the memory sample', '']);
    r.push([`mem_${step}_kb`, `memory with ${step} registered devices, MB (PSS)`, 'mb']);
    r.push([`mem_${step}_rss_kb`, '  same, sum of VmRSS, MB', 'mb']);
  }
  r.push(['ir_fork', 'instructions per forked call (valgrind, user space)', '']);
  r.push(['ir_busy', 'instructions per Busy-on-Busy 486 (valgrind)', '']);
  r.push(['ir_reg', 'instructions per registration (valgrind)', '']);
  r.push(['ir_noise', '  cachegrind noise: spread of the repeated base runs / N', '']);
  return r;
}

/** stdout of a program's version option, '' if it cannot run. @param {string} cmd @param {string[]} args */
function out(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return r.stdout ?? '';
}

/** The first line matching re, split on blanks. @param {string} text @param {RegExp} re */
function firstFields(text, re) {
  const line = text.split('\n').find((l) => re.test(l));
  return line ? line.trim().split(/\s+/) : [];
}

/** The header lines: date, machine, versions, what was run. @param {Ctx} ctx */
function header(ctx) {
  const c = ctx.cfg;
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '';
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
  const kam = firstFields(out(c.KAMAILIO, ['-v']), /^version/)[2] ?? '';
  const sipp = firstFields(out(c.SIPP, ['-v']), /SIPp/).slice(0, 2).join(' ');
  const valgrind = out(c.VALGRIND, ['--version']).trim();
  const node = out(c.NODE, ['-v']).trim();
  const nproc = execFileSync('nproc', { encoding: 'utf8' }).trim();
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return [
    `# sipbob vs Kamailio — bench/run.mjs ${c.mode}`,
    '',
    `- date: ${date}; run dir: ${repoRel(ctx.run)}`,
    `- machine: ${nproc} CPUs, ${model}, ${cfixed(memKb / 1048576, 0)} GB RAM, kernel ${release()}`,
    `- kamailio ${kam} (-x tlsf, ${c.KAM_CHILDREN} UDP workers); node ${node}; ${sipp}; ${valgrind}`,
    `- sipbob: ${ctx.sipbob?.rev ?? 'not run'}`,
    `- load: CALLS=${c.CALLS}@${c.CALL_RATE}/s (+${c.WARMUP_CALLS} warm-up), BUSY_CALLS=${c.BUSY_CALLS}@${c.BUSY_RATE}/s, ` +
      `REGS=${c.REGS}@${c.REG_RATE}/s, MEM_STEPS=${c.MEM_STEPS.join(' ')}@${c.MEM_RATE}/s; ` +
      `cachegrind: N=${c.CG_N}@${c.CG_RATE}/s (${c.CG_WORKLOADS.join(' ')}); ` +
      `callgrind window: N=${c.CGW_N}@${c.CGW_RATE}/s after ${c.CGW_WARMUP}@${c.CGW_WARMUP_RATE}/s and ${c.CGW_SETTLE}@${c.CGW_RATE}/s instrumented, ` +
      `Kamailio N=${c.CGW_N_KAMAILIO}, sipbob runs x${c.CG_REPEATS} with node ${c.CG_NODE_FLAGS.join(' ')}, kamailio runs x${c.CG_REPEATS_KAMAILIO}`,
    '',
  ];
}

/**
 * sipbob's storage modes side by side (SIPBOB_STORAGE), when a Redis mode ran: its labels are
 * sipbob-redis and sipbob-redis-relay; the embedded store's is sipbob.
 * @param {Ctx} ctx
 */
function storageTable(ctx) {
  const m = ctx.metrics;
  const labels = ctx.cfg.SIPBOB_STORAGE.map(sipbobLabel);
  if (!labels.some((l) => l !== 'sipbob')) return [];
  /** @type {[string, string][]} */
  const keys = [
    ['fork_ok', 'forked calls completed'],
    ['fork_cpu_us', 'CPU per forked call, µs'],
    ['busy_cpu_us', 'CPU per Busy-on-Busy 486, µs'],
    ['reg_cpu_us', 'CPU per registration, µs'],
    ['ir_fork', 'instructions per forked call, whole window'],
    ['ir_fork_steady', '  without JIT compilation and GC'],
    ['ir_fork_invalid', '  forked calls completed in the window (if not all)'],
    ['ir_busy', 'instructions per 486, whole window'],
    ['ir_busy_steady', '  without JIT compilation and GC'],
    ['ir_reg', 'instructions per registration, whole window'],
    ['ir_reg_steady', '  without JIT compilation and GC'],
  ];
  for (const w of ['fork', 'busy', 'reg']) {
    keys.push([`rt_${w}`, `Redis round trips per ${w === 'fork' ? 'forked call' : w === 'busy' ? '486' : 'registration'}, measured instance (timers included)`]);
    keys.push([`rt_${w}_peer`, '  the peer\'s, same phase']);
    keys.push([`cmds_${w}`, '  commands Redis ran per operation (both, inside scripts and MULTI too)']);
  }
  const out = ['', '## sipbob by storage (SIPBOB_STORAGE)', '', `| metric | ${ctx.cfg.SIPBOB_STORAGE.join(' | ')} | ratio redis / embedded |`, `|---|${labels.map(() => '---:|').join('')}---:|`];
  for (const [key, label] of keys) {
    const v = labels.map((l) => m.val(l, key));
    if (v.every((x) => x === '')) continue;
    out.push(`| ${label} | ${v.map((x) => x || '–').join(' | ')} | ${ratio(m.val('sipbob-redis', key), m.val('sipbob', key))} |`);
  }
  for (const l of labels) for (const who of ['measured', 'peer']) {
    const h = m.val(l, `redis_health_${who}`);
    if (h !== '') out.push('', `- ${l}, ${who} instance at the end: redis ${h}`);
  }
  return out;
}

/**
 * Writes results.md into the run directory and OUT, and returns it.
 * @param {Ctx} ctx
 */
export function report(ctx) {
  const m = ctx.metrics;
  const lines = header(ctx);
  lines.push('| metric | sipbob | kamailio | ratio sipbob/kamailio |');
  lines.push('|---|---:|---:|---:|');
  for (const [key, label, conv] of rows(ctx)) {
    let s = m.val('sipbob', key);
    let k = m.val('kamailio', key);
    if (s === '' && k === '') continue;
    if (conv === 'mb') {
      s = mb(s);
      k = mb(k);
    }
    lines.push(`| ${label} | ${s || '–'} | ${k || '–'} | ${ratio(s, k)} |`);
  }
  for (const t of ['sipbob', 'kamailio']) {
    const busy = m.val(t, 'ir_busy');
    const fork = m.val(t, 'ir_fork');
    if (busy !== '' && fork !== '') lines.push('', `- ${t}: a 486 costs ${ratio(busy, fork)}x the instructions of a forked call.`);
  }
  lines.push(...storageTable(ctx));
  lines.push(
    '',
    "CPU times are from /proc/<pid>/stat of the proxy's whole process tree and swing with",
    "this shared machine's speed; compare the ratio, measured back to back in one run, and",
    'prefer the instruction counts. See bench/README.md for what each number means.',
  );
  const text = lines.join('\n') + '\n';
  writeFileSync(join(ctx.run, 'results.md'), text);
  copyFileSync(join(ctx.run, 'results.md'), join(ctx.cfg.OUT, 'results.md'));
  return text;
}
