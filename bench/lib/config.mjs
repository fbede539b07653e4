// The bench's knobs (environment variables, the same names and defaults as the former
// bench/run.sh) and its fixed addresses. Plain Node, no dependencies.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = resolve(BENCH_DIR, '..');
export const SCEN = resolve(BENCH_DIR, 'scenarios');

export const DOMAIN = 'bench.sipbob.test';
export const A_IP = '127.0.0.51'; // bench-a: answers after RING_MS
export const B_IP = '127.0.0.52'; // bench-b: rings until cancelled
export const C_IP = '127.0.0.53'; // bench-c: the one device of busy extension 400, answers at once
export const CALLER_IP = '127.0.0.61'; // the trusted trunk both proxies accept calls from without auth
export const REG_IP = '127.0.0.70'; // registration load; the memory push uses 127.0.0.71..

export const MODES = ['load', 'cachegrind', 'all', 'profile', 'callgrind'];
export const STORAGES = ['embedded', 'redis', 'redis-relay'];

/** The metrics label of sipbob with a storage mode: 'sipbob' for the embedded store. @param {string} storage */
export const sipbobLabel = (storage) => (storage === 'embedded' ? 'sipbob' : `sipbob-${storage}`);

export const USAGE = `usage: bench/run.mjs [--cachegrind | --all | --profile | --callgrind]
       (bench/run.sh passes its arguments on)
environment (defaults in brackets):
  TARGETS [kamailio sipbob]    which proxies, in this order
  CALLS [3000] CALL_RATE [100] forked calls to extension 300 (2 devices), calls/s
  WARMUP_CALLS [300]           forked calls before measuring (JIT, caches), not counted
  RING_MS [100] HOLD_MS [100]  answering device rings this long; caller holds the call
  BUSY_CALLS [3000] BUSY_RATE [200]   calls to busy extension 400, expected 486
  REGS [5000] REG_RATE [500]   registrations (REGISTER -> 401 -> REGISTER -> 200)
  MEM_STEPS [10000 100000]     registered devices at which memory is sampled
  MEM_RATE [2000] MEM_SIPPS [4]  total registration rate and SIPp processes for that push
  CG_N [500] CG_RATE [20]      --cachegrind: N per workload (runs with N and 2N), rate
  CG_PAD_S [computed]          --cachegrind: every run is padded to this many seconds
  CG_REPEATS [3]               --cachegrind: sipbob runs repeated, medians compared, spread shown
  CG_REPEATS_KAMAILIO [1]      --cachegrind: the same for Kamailio (its counts barely vary)
  CG_NODE_FLAGS [--single-threaded --no-memory-reducer --min-semi-space-size=16]  node flags for sipbob under valgrind (bench/README.md)
  SIPBOB_NODE_FLAGS []         load run: extra node flags for sipbob (e.g. --max-old-space-size=300)
  CG_WORKLOADS [fork busy reg] --cachegrind: which per-operation counts to measure
  CG_REG_USERS [2000]          --cachegrind: accounts in the config (small: fast start)
  PROXY_IP [127.0.0.1] PROXY_PORT [25060] HTTP_PORT [25080]
  KAM_CHILDREN [2] KAM_SHM_MB [512] KAM_PKG_MB [16]  Kamailio UDP workers, shared and
                               per-process memory (MB; only touched pages count)
  CGW_N [1000] CGW_WARMUP [3000] CGW_RATE [20] CGW_WARMUP_RATE [50] CGW_WORKLOADS [fork busy reg]
                               --callgrind: operations counted per workload (at CGW_RATE), after
                               that many uncounted ones (at CGW_WARMUP_RATE: nothing is
                               instrumented yet, so valgrind keeps up)
  CGW_SETTLE [500]             --callgrind: then that many more at CGW_RATE, instrumented (as slow
                               as the window) but not counted
  CGW_N_KAMAILIO [CGW_N]       --callgrind: N of Kamailio's N/2N runs (its counts do not drift, so
                               a smaller N than sipbob's window gives the same figure sooner)
  PROF_WORKLOADS [fork busy reg]  --profile: one sipbob run per workload (CALLS, BUSY_CALLS, REGS)
  SIPBOB_BUILD [head]          head: build the committed HEAD into bench/out/sipbob-<commit>/
                               (the shared tree's dist/ may be rebuilt in the middle of a run);
                               dist: use the tree's dist/ as it is (uncommitted work)
  SIPBOB_COMMIT [HEAD]         with SIPBOB_BUILD=head: the commit to build (an older one, to
                               measure it in the same windows)
  SIPBOB_STORAGE [embedded]    sipbob's state, one run per word, in this order: embedded (storage.path),
                               redis (redis-server on a free loopback port, storage.redis + cluster,
                               a second instance on PEER_IP sharing it), redis-relay (the same, the
                               devices registered through the peer: every branch is relayed by it)
  PEER_IP [127.0.0.2]          the peer instance (same SIP and HTTP ports as the measured one)
  OUT [bench/out]              where logs and results go
  KAMAILIO [/usr/sbin/kamailio] SIPP [/usr/bin/sipp] NODE [node] VALGRIND [valgrind]  programs
  REDIS_SERVER [/usr/bin/redis-server] REDIS_CLI [/usr/bin/redis-cli]  programs (Redis modes)
`;

/**
 * @typedef {object} Config
 * @property {string} mode
 * @property {string[]} TARGETS
 * @property {number} CALLS @property {number} CALL_RATE @property {number} WARMUP_CALLS
 * @property {number} RING_MS @property {number} HOLD_MS
 * @property {number} BUSY_CALLS @property {number} BUSY_RATE
 * @property {number} REGS @property {number} REG_RATE
 * @property {number[]} MEM_STEPS @property {number} MEM_RATE @property {number} MEM_SIPPS
 * @property {number} CG_N @property {number} CG_RATE @property {string[]} CG_WORKLOADS
 * @property {number} CG_REG_USERS @property {number} CG_REPEATS @property {number} CG_REPEATS_KAMAILIO
 * @property {number | undefined} CG_PAD_S
 * @property {string[]} CG_NODE_FLAGS @property {string[]} SIPBOB_NODE_FLAGS
 * @property {string} PROXY_IP @property {number} PROXY_PORT @property {number} HTTP_PORT
 * @property {number} KAM_CHILDREN @property {number} KAM_SHM_MB @property {number} KAM_PKG_MB
 * @property {string} KAMAILIO @property {string} SIPP @property {string} NODE @property {string} VALGRIND
 * @property {string} OUT
 * @property {string[]} PROF_WORKLOADS
 * @property {string} SIPBOB_BUILD @property {string} SIPBOB_COMMIT
 * @property {number} CGW_N @property {number} CGW_WARMUP @property {number} CGW_RATE
 * @property {number} CGW_WARMUP_RATE @property {string[]} CGW_WORKLOADS @property {number} CGW_SETTLE
 * @property {number} CGW_N_KAMAILIO
 * @property {string[]} SIPBOB_STORAGE @property {string} PEER_IP
 * @property {string} REDIS_SERVER @property {string} REDIS_CLI
 */

/**
 * Reads the knobs as the shell did: `${X:=default}` (unset or empty -> default), except
 * CG_NODE_FLAGS, which may be set to empty to run node under valgrind without flags.
 * @param {string} mode
 * @param {NodeJS.ProcessEnv} env
 * @returns {Config}
 */
export function loadConfig(mode, env = process.env) {
  /** @param {string} k @param {string} d */
  const str = (k, d) => (env[k] === undefined || env[k] === '' ? d : String(env[k]));
  /** @param {string} k @param {number} d */
  const int = (k, d) => {
    const v = str(k, String(d));
    if (!/^\d+$/.test(v)) throw new Error(`${k}: not a whole number: ${v}`);
    return Number(v);
  };
  /** @param {string} s */
  const words = (s) => s.split(/\s+/).filter(Boolean);
  const cgwN = int('CGW_N', 1000);
  const memSteps = words(str('MEM_STEPS', '10000 100000')).map((w) => {
    if (!/^\d+$/.test(w)) throw new Error(`MEM_STEPS: not a whole number: ${w}`);
    return Number(w);
  });
  return {
    mode,
    TARGETS: words(str('TARGETS', 'kamailio sipbob')),
    CALLS: int('CALLS', 3000),
    CALL_RATE: int('CALL_RATE', 100),
    WARMUP_CALLS: int('WARMUP_CALLS', 300),
    RING_MS: int('RING_MS', 100),
    HOLD_MS: int('HOLD_MS', 100),
    BUSY_CALLS: int('BUSY_CALLS', 3000),
    BUSY_RATE: int('BUSY_RATE', 200),
    REGS: int('REGS', 5000),
    REG_RATE: int('REG_RATE', 500),
    MEM_STEPS: memSteps,
    MEM_RATE: int('MEM_RATE', 2000),
    MEM_SIPPS: int('MEM_SIPPS', 4),
    CG_N: int('CG_N', 500),
    CG_RATE: int('CG_RATE', 20),
    CG_WORKLOADS: words(str('CG_WORKLOADS', 'fork busy reg')),
    CG_REG_USERS: int('CG_REG_USERS', 2000),
    CG_REPEATS: int('CG_REPEATS', 3),
    CG_REPEATS_KAMAILIO: int('CG_REPEATS_KAMAILIO', 1),
    CG_PAD_S: str('CG_PAD_S', '') === '' ? undefined : int('CG_PAD_S', 0),
    // Valgrind runs one thread at a time, so V8's GC and compiler helper threads spend a
    // random number of instructions spin-waiting for each other; --single-threaded does the
    // same work on the main thread. --no-memory-reducer and --min-semi-space-size=16 keep
    // the GC of a busy proxy although valgrind makes node look idle (bench/README.md).
    CG_NODE_FLAGS: words(env.CG_NODE_FLAGS ?? '--single-threaded --no-memory-reducer --min-semi-space-size=16'),
    SIPBOB_NODE_FLAGS: words(str('SIPBOB_NODE_FLAGS', '')),
    PROXY_IP: str('PROXY_IP', '127.0.0.1'),
    PROXY_PORT: int('PROXY_PORT', 25060),
    HTTP_PORT: int('HTTP_PORT', 25080),
    KAM_CHILDREN: int('KAM_CHILDREN', 2),
    KAM_SHM_MB: int('KAM_SHM_MB', 512),
    KAM_PKG_MB: int('KAM_PKG_MB', 16),
    KAMAILIO: str('KAMAILIO', '/usr/sbin/kamailio'),
    SIPP: str('SIPP', '/usr/bin/sipp'),
    NODE: str('NODE', 'node'),
    VALGRIND: str('VALGRIND', 'valgrind'),
    OUT: resolve(str('OUT', resolve(BENCH_DIR, 'out'))),
    PROF_WORKLOADS: words(str('PROF_WORKLOADS', 'fork busy reg')),
    SIPBOB_BUILD: str('SIPBOB_BUILD', 'head'),
    SIPBOB_COMMIT: str('SIPBOB_COMMIT', 'HEAD'),
    CGW_N: cgwN,
    CGW_WARMUP: int('CGW_WARMUP', 3000),
    CGW_RATE: int('CGW_RATE', 20),
    CGW_WARMUP_RATE: int('CGW_WARMUP_RATE', 50),
    CGW_WORKLOADS: words(str('CGW_WORKLOADS', 'fork busy reg')),
    CGW_SETTLE: int('CGW_SETTLE', 500),
    CGW_N_KAMAILIO: int('CGW_N_KAMAILIO', cgwN),
    SIPBOB_STORAGE: words(str('SIPBOB_STORAGE', 'embedded')),
    PEER_IP: str('PEER_IP', '127.0.0.2'),
    REDIS_SERVER: str('REDIS_SERVER', '/usr/bin/redis-server'),
    REDIS_CLI: str('REDIS_CLI', '/usr/bin/redis-cli'),
  };
}

// Every SIPp gets a 4 MB socket buffer, no keyboard, the domain and a 10 s receive timeout.
export const SIPP_COMMON = ['-buff_size', '4194304', '-nostdin', '-key', 'domain', DOMAIN, '-recv_timeout', '10000'];
