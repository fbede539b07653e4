// The SIPp loads: every run bounded in count (-m) and in time (timeout(1) and SIPp's
// -timeout), on loopback, with SIPp's statistics and errors kept in the run directory.
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { CALLER_IP, REG_IP, SCEN, SIPP_COMMON } from './config.mjs';
import { die, runFg, sleep, startBg } from './proc.mjs';

/** @typedef {import('./start.mjs').Ctx} Ctx */
/** @typedef {import('./proc.mjs').Proc} Proc */
/** @typedef {{ rc: number, ok: number, fail: number, retr: number }} SippResult */

/** Seconds for n at rate r, with slack for a slow machine. @param {number} n @param {number} r */
export const bound = (n, r) => Math.trunc(n / r) + 60;

/**
 * SIPp's -trace_stat CSV -> [successful, failed, retransmissions], cumulative (last line).
 * @param {string} file
 * @returns {[number, number, number]}
 */
export function sippCounts(file) {
  if (!existsSync(file) || statSync(file).size === 0) return [0, 0, 0];
  const lines = readFileSync(file, 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const head = lines[0].split(';');
  const last = lines[lines.length - 1].split(';');
  const num = (/** @type {string} */ col) => {
    const i = head.indexOf(col);
    return i < 0 ? 0 : parseFloat(last[i] ?? '') || 0;
  };
  return [num('SuccessfulCall(C)'), num('FailedCall(C)'), num('Retransmissions(C)')];
}

/**
 * One SIPp client run against the proxy, in the foreground, bounded by tmo seconds.
 * Retransmissions SIPp sent or saw: 0 on an idle loopback unless a message went unanswered
 * (overload) or a transaction was not matched (a bug on one side).
 * @param {Ctx} ctx @param {string} name @param {number} tmo @param {string[]} args
 * @param {string} [remote] host:port to send to instead of the proxy (a Redis mode's peer)
 * @returns {Promise<SippResult>}
 */
export async function runSipp(ctx, name, tmo, args, remote) {
  const c = ctx.cfg;
  const stf = `${ctx.run}/${name}.csv`;
  rmSync(stf, { force: true });
  const rc = await runFg(`${ctx.run}/${name}.out`, 'timeout', ['--kill-after=5', String(tmo), c.SIPP, remote ?? `${c.PROXY_IP}:${c.PROXY_PORT}`, ...args, ...SIPP_COMMON,
    '-timeout', `${tmo}s`, '-trace_stat', '-stf', stf, '-fd', '1', '-trace_err', '-error_file', `${ctx.run}/${name}.err`]);
  const [ok, fail, retr] = sippCounts(stf);
  return { rc, ok, fail, retr };
}

/**
 * n forked calls to extension 300 at rate/s.
 * -bye off: a call SIPp aborts (under valgrind a stalled proxy makes it retransmit a BYE, and
 * the second 200 is "unexpected") gets no extra BYE outside the dialog. That BYE's 404 is a
 * path no warm-up takes: it deoptimized the proxy's hot functions, which were then compiled
 * again inside the callgrind window (bench/README.md).
 * @param {Ctx} ctx @param {string} t @param {string} name @param {number} n @param {number} rate
 */
export const forkCalls = (ctx, t, name, n, rate) =>
  runSipp(ctx, `${t}-${name}`, bound(n, rate), ['-sf', `${SCEN}/uac-call.xml`, '-s', '300', '-i', CALLER_IP, '-p', '5060',
    '-d', String(ctx.cfg.HOLD_MS), '-m', String(n), '-r', String(rate), '-default_behaviors', 'all,-bye']);

/**
 * An answered call to 400 that stays up, then a probe until 400 answers 486.
 * @param {Ctx} ctx @param {string} t
 * @returns {Promise<Proc>}
 */
export async function holdBusyCall(ctx, t) {
  const c = ctx.cfg;
  const hold = startBg(`${ctx.run}/${t}-hold.out`, c.SIPP, [`${c.PROXY_IP}:${c.PROXY_PORT}`, '-sf', `${SCEN}/uac-call.xml`, '-s', '400',
    '-i', CALLER_IP, '-p', '5061', '-d', '3600000', '-m', '1', ...SIPP_COMMON]);
  for (let i = 0; i < 20; i++) {
    await sleep(1000);
    const r = await runSipp(ctx, `${t}-busy-probe`, 30, ['-sf', `${SCEN}/uac-busy.xml`, '-s', '400', '-i', CALLER_IP, '-p', '5060', '-m', '1']);
    if (r.ok === 1) return hold;
  }
  return die(`${t}: extension 400 never became busy; see ${ctx.run}/${t}-hold.out ${ctx.run}/${t}-busy-probe.*`);
}

/** n calls to the busy extension 400, each expecting 486. @param {Ctx} ctx @param {string} t @param {string} name @param {number} n @param {number} rate */
export const busyCalls = (ctx, t, name, n, rate) =>
  runSipp(ctx, `${t}-${name}`, bound(n, rate), ['-sf', `${SCEN}/uac-busy.xml`, '-s', '400', '-i', CALLER_IP, '-p', '5060',
    '-m', String(n), '-r', String(rate)]);

/** @type {Map<string, string[]>} users.csv lines per generated directory */
const usersCache = new Map();

/**
 * Writes an -inf file with SEQUENTIAL and users first..first+n-1 (1-based) of gen/users.csv.
 * @param {string} gen @param {number} first @param {number} n @param {string} file
 */
function usersCsv(gen, first, n, file) {
  let lines = usersCache.get(gen);
  if (!lines) {
    lines = readFileSync(`${gen}/users.csv`, 'utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    usersCache.set(gen, lines);
  }
  const part = lines.slice(first, first + n); // line 0 is users.csv's own SEQUENTIAL
  writeFileSync(file, ['SEQUENTIAL', ...part].join('\n') + '\n');
}

/**
 * n registrations (REGISTER -> 401 -> REGISTER with digest -> 200) of users first.. at rate/s.
 * @param {Ctx} ctx @param {string} t @param {string} name @param {string} gen @param {number} first @param {number} n @param {number} rate
 */
export function registrations(ctx, t, name, gen, first, n, rate) {
  const csv = `${ctx.run}/${name}-users.csv`;
  usersCsv(gen, first, n, csv);
  return runSipp(ctx, `${t}-${name}`, bound(n, rate), ['-sf', `${SCEN}/reg.xml`, '-inf', csv, '-key', 'expires', '3600',
    '-i', REG_IP, '-p', '5060', '-m', String(n), '-r', String(rate)]);
}

/**
 * Registers users from..to (1-based) with MEM_SIPPS SIPps in parallel at MEM_RATE in total,
 * each from its own address (127.0.0.71..); returns how many succeeded.
 * @param {Ctx} ctx @param {string} t @param {string} gen @param {number} from @param {number} to
 */
export async function pushRegistrations(ctx, t, gen, from, to) {
  const c = ctx.cfg;
  const n = to - from + 1;
  const rate = Math.trunc((c.MEM_RATE + c.MEM_SIPPS - 1) / c.MEM_SIPPS);
  const runs = [];
  const stfs = [];
  for (let k = 0; k < c.MEM_SIPPS; k++) {
    const a = from + Math.trunc((n * k) / c.MEM_SIPPS);
    const b = from + Math.trunc((n * (k + 1)) / c.MEM_SIPPS) - 1;
    if (b < a) continue;
    const csv = `${ctx.run}/${t}-mem-${to}-${k}.csv.in`;
    const stf = `${ctx.run}/${t}-mem-${to}-${k}.csv`;
    usersCsv(gen, a, b - a + 1, csv);
    const tmo = bound(b - a + 1, rate);
    runs.push(startBg(`${ctx.run}/${t}-mem-${to}-${k}.out`, 'timeout', ['--kill-after=5', String(tmo), c.SIPP, `${c.PROXY_IP}:${c.PROXY_PORT}`,
      '-sf', `${SCEN}/reg.xml`, '-inf', csv, '-key', 'expires', '3600', '-i', `127.0.0.${71 + k}`, '-p', '5060',
      '-m', String(b - a + 1), '-r', String(rate), ...SIPP_COMMON, '-timeout', `${tmo}s`,
      '-trace_stat', '-stf', stf, '-fd', '1']).exited);
    stfs.push(stf);
  }
  await Promise.all(runs);
  let ok = 0;
  for (const f of stfs) ok += sippCounts(f)[0];
  return ok;
}
