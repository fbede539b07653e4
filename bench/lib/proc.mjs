// Processes the bench starts: spawning with output to a file, process trees from /proc
// (Kamailio forks its workers, timeout(1) wraps SIPp), stopping them, and stopping every one
// of them when the bench ends, fails or is interrupted.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';

/** @param {number} ms */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const two = (/** @type {number} */ n) => String(n).padStart(2, '0');
/** @param {Date} d local HH:MM:SS */
export const hms = (d = new Date()) => `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;

/** @param {string} msg */
export function log(msg) {
  process.stderr.write(`${hms()} ${msg}\n`);
}

/** A failure that ends the run (the shell's die). */
export class BenchError extends Error {}
/** @param {string} msg @returns {never} */
export function die(msg) {
  throw new BenchError(msg);
}

/**
 * The fields after "pid (comm) " of /proc/<pid>/stat (index 0 = state, 1 = ppid, 11 = utime,
 * 12 = stime), or undefined if the process is gone.
 * @param {number} pid
 */
export function statFields(pid) {
  let st;
  try {
    st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return st.slice(st.lastIndexOf(') ') + 2).split(' ');
}

/** A zombie is not alive. @param {number} pid */
export function alive(pid) {
  const f = statFields(pid);
  return f !== undefined && f[0] !== 'Z';
}

/** pid and all its descendants (as pgrep -P, recursively). @param {number} pid */
export function treePids(pid) {
  /** @type {Map<number, number[]>} */
  const kids = new Map();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const f = statFields(Number(e));
    if (!f) continue;
    const ppid = Number(f[1]);
    const list = kids.get(ppid);
    if (list) list.push(Number(e));
    else kids.set(ppid, [Number(e)]);
  }
  const out = [];
  const todo = [pid];
  while (todo.length > 0) {
    const p = /** @type {number} */ (todo.shift());
    out.push(p);
    todo.push(...(kids.get(p) ?? []));
  }
  return out;
}

/** @typedef {{ pid: number, exited: Promise<number>, companions?: Proc[] }} Proc companions: stopped after it (start.mjs) */

/** @type {Map<number, Proc>} every process started, for stopping it on exit */
const started = new Map();

/**
 * Starts cmd with stdout and stderr to logFile (stdin /dev/null), in the background.
 * @param {string} logFile
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ env?: NodeJS.ProcessEnv }} [opts]
 * @returns {Proc}
 */
export function startBg(logFile, cmd, args, opts = {}) {
  const fd = openSync(logFile, 'w');
  let child;
  try {
    child = spawn(cmd, args, { stdio: ['ignore', fd, fd], env: opts.env ?? process.env });
  } finally {
    closeSync(fd);
  }
  /** @type {Promise<number>} */
  const exited = new Promise((res) => {
    child.on('error', (e) => {
      log(`cannot start ${cmd}: ${e.message}`);
      res(127);
    });
    child.on('exit', (code, signal) => res(code ?? 128 + (signal ? signalNumber(signal) : 0)));
  });
  if (child.pid === undefined) {
    return { pid: -1, exited };
  }
  const p = { pid: child.pid, exited };
  started.set(child.pid, p);
  exited.then(() => started.delete(p.pid));
  return p;
}

/** @param {NodeJS.Signals} s */
function signalNumber(s) {
  return /** @type {Record<string, number>} */ ({ SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 })[s] ?? 0;
}

/**
 * Runs cmd in the foreground (stdout and stderr to logFile) and returns its exit code.
 * @param {string} logFile @param {string} cmd @param {string[]} args
 */
export async function runFg(logFile, cmd, args) {
  return startBg(logFile, cmd, args).exited;
}

/**
 * SIGTERM to pid, up to grace seconds for it to go, then SIGKILL whatever is left of the
 * process tree it had (the tree is read before the SIGTERM).
 * @param {Proc | number} proc
 * @param {number} [grace]
 */
export async function stopTree(proc, grace = 10) {
  const pid = typeof proc === 'number' ? proc : proc.pid;
  const mine = typeof proc === 'number' ? started.get(pid) : proc;
  if (pid <= 0) return;
  if (!alive(pid)) {
    if (mine) await mine.exited;
    return;
  }
  const tree = treePids(pid);
  kill(pid, 'SIGTERM');
  for (let i = 0; i < grace * 10; i++) {
    if (!alive(pid)) break;
    await sleep(100);
  }
  for (const p of tree) if (alive(p)) kill(p, 'SIGKILL');
  if (mine) await mine.exited;
}

/** @param {number} pid @param {NodeJS.Signals} sig */
function kill(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Stops every process the bench started and that still runs (3 s grace each). */
export async function stopAll() {
  for (const p of [...started.values()]) await stopTree(p, 3);
}

// Last resort when the process exits some other way: no process of ours outlives the bench.
process.on('exit', () => {
  for (const p of started.values()) for (const q of alive(p.pid) ? treePids(p.pid) : []) kill(q, 'SIGKILL');
});
