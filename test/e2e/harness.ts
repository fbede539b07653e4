/**
 * End-to-end harness: starts the built proxy (dist/src/cli.js) with a generated config and
 * drives it with SIPp (Debian sip-tester, /usr/bin/sipp) over loopback.
 *
 * Conventions shared by every sip-*.test.ts:
 * - The proxy listens on 127.0.0.1; devices, callers and trunks are other 127.x addresses,
 *   so the proxy sees them as different hosts (trunks are recognised by source address).
 * - tap runs two test files at once: each file owns a port block from `portBlock(k)` so two
 *   files never bind the same address and port.
 * - Every child process (proxy, sipp) is bounded by a timeout and killed at the latest when
 *   the test process exits.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { stringify } from 'yaml';
import { killAtExit } from '../support/children.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SCENARIOS = path.join(ROOT, 'test', 'scenarios');
export const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');
export const SIPP = process.env.SIPP_BIN ?? '/usr/bin/sipp';
export const DOMAIN = 'pbx.example.test';
export const ADMIN_TOKEN = 'test-token';
export const PROXY_HOST = '127.0.0.1';

/** Hosts on loopback; the same roles in every file, told apart by port (see portBlock). */
export const HOSTS = {
  phone1: '127.0.0.11',
  phone2: '127.0.0.12',
  phone3: '127.0.0.13',
  phone4: '127.0.0.14',
  caller1: '127.0.0.21',
  caller2: '127.0.0.22',
  /** The first trunk of the config: calls to non-local numbers go there. */
  trunkOut: '127.0.0.31',
  /** An inbound-only trunk trusted by address (any port), so several callers can use it at once. */
  trunkIn: '127.0.0.32',
} as const;

/**
 * Ports of test file number k. Taken: 0 sip-scenarios, 1 sip-fork, 2 sip-busy, 3 sip-basic, 5 sip-keepalive,
 * 9 sip-tcp-sha256, 12 listen-all, 13 nat-contact; pick a free k for a new file. Proxy SIP port
 * 15060+10k, HTTP 18080+k, and a block of 200 ports from 16000+200k for SIPp instances
 * (devices, callers, trunks).
 */
export function portBlock(k: number): { sip: number; http: number; base: number } {
  return { sip: 15060 + 10 * k, http: 18080 + k, base: 16000 + 200 * k };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` every `everyMs` until it returns a value other than undefined/false. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 5000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `sipbob-e2e-${prefix}-`));
}

// ---------------------------------------------------------------------------------------
// The proxy

export interface ProxyOptions {
  extensions: object[];
  trunks?: object[];
  calls?: object;
  registrar?: object;
  /** Default { algorithms: [MD5] }: SIPp answers MD5 challenges only. */
  auth?: object;
  sipPort: number;
  httpPort: number;
  /** SIP listeners (URLs); default UDP and TCP on 127.0.0.1:sipPort. */
  listen?: string[];
  /** Reuse a storage dir (restart tests); default a fresh temp dir. */
  storageDir?: string;
  /** config `security` (trusted, floodLimit, authFailures); default the config's defaults. */
  security?: object;
  /** config `tls` ({cert, key}): the certificate of wss/tls listeners. */
  tls?: object;
  /** The proxy's own loopback address (SIP listeners, HTTP, remote); default PROXY_HOST. */
  host?: string;
  /** config `storage` instead of {path: storageDir}, e.g. {redis: 'redis://...'} (several instances). */
  storage?: object;
  /** config `cluster` ({instance, address}); only with storage.redis. */
  cluster?: object;
}

export type LogLine = Record<string, unknown>;

export interface Proxy {
  sipPort: number;
  httpPort: number;
  /** For sipp's remote argument: '<host>:<sipPort>' (host: ProxyOptions.host, default 127.0.0.1). */
  remote: string;
  configFile: string;
  storageDir: string;
  /** stdout lines, JSON-parsed where possible (pino), else the raw string. */
  logs: Array<LogLine | string>;
  /** stdout and stderr so far, for failure messages (last `max` characters). */
  output(max?: number): string;
  /** The parsed pino lines only. */
  jsonLogs(): LogLine[];
  /** Resolves with the first log line (past or future) satisfying `pred`. */
  waitForLog(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** fetch http://127.0.0.1:<httpPort><path> with the admin bearer token. */
  api(apiPath: string, init?: RequestInit): Promise<Response>;
  /** GET a JSON API path; throws on a non-2xx status. */
  apiJson<T = unknown>(apiPath: string): Promise<T>;
  /** SIGTERM, wait for the exit, SIGKILL after 3 s. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL and wait for the exit. */
  kill9(): Promise<void>;
  /** SIGHUP: the proxy re-reads its config (and the tls files). */
  reload(): void;
  /** SIGSTOP: the process stands still, what reaches its sockets waits in the kernel. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Exit code/signal once the process ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Writes the config, starts `node dist/src/cli.js --config FILE` and waits for /healthz 200 (10 s). */
export async function startProxy(opts: ProxyOptions): Promise<Proxy> {
  if (!existsSync(CLI)) throw new Error(`${CLI} does not exist: run npm run build first`);
  const dir = tempDir('proxy');
  const storageDir = opts.storageDir ?? tempDir('storage');
  const host = opts.host ?? PROXY_HOST;
  const config: Record<string, unknown> = {
    domain: DOMAIN,
    listen: opts.listen ?? [`udp://${host}:${opts.sipPort}`, `tcp://${host}:${opts.sipPort}`],
    http: { listen: `${host}:${opts.httpPort}`, adminToken: ADMIN_TOKEN },
    auth: opts.auth ?? { algorithms: ['MD5'] },
    storage: opts.storage ?? { path: storageDir },
    extensions: opts.extensions,
  };
  if (opts.registrar) config.registrar = opts.registrar;
  if (opts.calls) config.calls = opts.calls;
  if (opts.trunks) config.trunks = opts.trunks;
  if (opts.security) config.security = opts.security;
  if (opts.tls) config.tls = opts.tls;
  if (opts.cluster) config.cluster = opts.cluster;
  const configFile = path.join(dir, 'sipbob.yaml');
  writeFileSync(configFile, stringify(config));

  const child = spawn(process.execPath, [CLI, '--config', configFile], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    // The admin token comes from the config; do not let a developer's env override it.
    env: { ...process.env, SIPBOB_ADMIN_TOKEN: ADMIN_TOKEN, SIPBOB_CONFIG: '' },
  });
  killAtExit(child);

  const logs: Array<LogLine | string> = [];
  const raw: string[] = [];
  const waiters: Array<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  let partial = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    raw.push(chunk);
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (line.trim() === '') continue;
      let entry: LogLine | string = line;
      try {
        const parsed: unknown = JSON.parse(line);
        if (parsed && typeof parsed === 'object') entry = parsed as LogLine;
      } catch {
        // not JSON: keep the raw line
      }
      logs.push(entry);
      if (typeof entry !== 'string') {
        for (let i = waiters.length - 1; i >= 0; i--) {
          if (waiters[i]!.pred(entry)) {
            waiters[i]!.resolve(entry);
            waiters.splice(i, 1);
          }
        }
      }
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => raw.push(`[stderr] ${chunk}`));

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });

  const output = (max = 20000) => {
    const all = raw.join('');
    return all.length > max ? `...${all.slice(-max)}` : all;
  };
  const jsonLogs = () => logs.filter((l): l is LogLine => typeof l !== 'string');

  const api = (apiPath: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (!headers.has('authorization')) headers.set('authorization', `Bearer ${ADMIN_TOKEN}`);
    if (init.body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
    return fetch(`http://${host}:${opts.httpPort}${apiPath}`, {
      ...init,
      headers,
      signal: init.signal ?? AbortSignal.timeout(5000),
    });
  };

  const stopWith = async (first: NodeJS.Signals) => {
    if (hasExited) return;
    child.kill(first);
    const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(killer);
  };

  const proxy: Proxy = {
    reload: () => void child.kill('SIGHUP'),
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    sipPort: opts.sipPort,
    httpPort: opts.httpPort,
    remote: `${host}:${opts.sipPort}`,
    configFile,
    storageDir,
    logs,
    output,
    jsonLogs,
    waitForLog(pred, timeoutMs = 5000) {
      const past = jsonLogs().find(pred);
      if (past) return Promise.resolve(past);
      return new Promise<LogLine>((resolve, reject) => {
        const waiter = {
          pred,
          resolve: (l: LogLine) => {
            clearTimeout(timer);
            resolve(l);
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`no matching proxy log line within ${timeoutMs} ms; output:\n${output(4000)}`));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
    api,
    async apiJson<T>(apiPath: string): Promise<T> {
      const res = await api(apiPath);
      const text = await res.text();
      if (!res.ok) throw new Error(`GET ${apiPath}: ${res.status} ${text}`);
      return JSON.parse(text) as T;
    },
    stop: () => stopWith('SIGTERM'),
    kill9: () => stopWith('SIGKILL'),
    exited,
  };

  // Ready when /healthz answers 200; fail early if the process dies (bad config, port taken).
  const deadline = Date.now() + 10000;
  for (;;) {
    if (hasExited) {
      const { code, signal } = await exited;
      throw new Error(`proxy exited (code ${code}, signal ${signal}) before /healthz; output:\n${output()}`);
    }
    try {
      const res = await fetch(`http://${host}:${opts.httpPort}/healthz`, {
        signal: AbortSignal.timeout(1000),
      });
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await proxy.kill9();
      throw new Error(`proxy /healthz not 200 within 10 s; output:\n${output()}`);
    }
    await sleep(100);
  }
  return proxy;
}

// ---------------------------------------------------------------------------------------
// SIPp

export interface SippOptions {
  /** Scenario file name under test/scenarios, e.g. 'caller.xml'. */
  scenario: string;
  /** Local 127.x address (also bound: -i and -bind_local). */
  local: string;
  localPort: number;
  /** 'host:port' of the peer; omitted for UAS (server) scenarios. */
  remote?: string;
  /** -s: user part of the Request-URI, e.g. the dialled number. */
  service?: string;
  /** -m: calls to complete before exiting (default 1). */
  calls?: number;
  /** -r: calls per second (client scenarios). */
  rate?: number;
  /** -l: concurrent calls limit. */
  limit?: number;
  /** -timeout seconds (default 20); the process is SIGKILLed 5 s after that. */
  timeoutSec?: number;
  /** Whether reaching -timeout is a failure (-timeout_error). Default true; false for phones that must stay idle. */
  timeoutIsError?: boolean;
  /** -d: default <pause/> length in ms (ring time of phones, talk time of callers). */
  pauseMs?: number;
  /** Keywords: `-key name value`, used as [name] in messages. */
  vars?: Record<string, string>;
  /** Global variables: `-set name value`, used as [$name]; the scenario must declare <Global variables="name"/>. */
  globals?: Record<string, string>;
  /** Digest credentials: -au / -ap. */
  username?: string;
  password?: string;
  transport?: 'u1' | 't1';
  extra?: string[];
  /** Shown in failure messages. */
  label?: string;
}

export interface SippResult {
  label: string;
  /** 0 all calls succeeded, 1 some failed, 97 internal stop, 99 no call processed, 255/254 fatal; null if killed. */
  code: number | null;
  signal: NodeJS.Signals | null;
  args: string[];
  /** stdout+stderr (screen), trimmed to the end. */
  out: string;
  /** -trace_err file: unexpected messages, aborted calls. */
  errors: string;
  /** -trace_logs file: <log> actions of the scenario. */
  log: string;
  /** -trace_msg file: every message sent and received. */
  messages: string;
}

export interface SippProcess {
  label: string;
  pid: number | undefined;
  /** Resolves when sipp exits (never rejects). */
  done: Promise<SippResult>;
  /** Messages traced so far (-trace_msg). */
  messages(): string;
  /** Waits until the message trace matches `re`. */
  waitForMessage(re: RegExp, timeoutMs?: number): Promise<void>;
  /** SIGTERM (sipp ends its calls), SIGKILL after 2 s; returns the result. */
  stop(): Promise<SippResult>;
}

function readIfExists(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Starts sipp and returns at once; `done` resolves with the result. */
export function sippStart(opts: SippOptions): SippProcess {
  const dir = tempDir('sipp');
  const files = {
    errors: path.join(dir, 'errors.log'),
    log: path.join(dir, 'log.log'),
    messages: path.join(dir, 'messages.log'),
  };
  const timeoutSec = opts.timeoutSec ?? 20;
  const args: string[] = [];
  if (opts.remote) args.push(opts.remote);
  args.push(
    '-sf', path.join(SCENARIOS, opts.scenario),
    '-i', opts.local,
    '-p', String(opts.localPort),
    '-bind_local',
    '-t', opts.transport ?? 'u1',
    '-m', String(opts.calls ?? 1),
    '-nostdin',
    '-timeout', `${timeoutSec}s`,
    // Big socket buffers: loopback bursts under load must not drop datagrams.
    '-buff_size', '4194304',
    '-trace_err', '-error_file', files.errors,
    '-trace_logs', '-log_file', files.log,
    '-trace_msg', '-message_file', files.messages,
  );
  if (opts.timeoutIsError ?? true) args.push('-timeout_error');
  if (opts.service !== undefined) args.push('-s', opts.service);
  if (opts.rate !== undefined) args.push('-r', String(opts.rate));
  if (opts.limit !== undefined) args.push('-l', String(opts.limit));
  if (opts.pauseMs !== undefined) args.push('-d', String(opts.pauseMs));
  if (opts.username !== undefined) args.push('-au', opts.username);
  if (opts.password !== undefined) args.push('-ap', opts.password);
  for (const [name, value] of Object.entries(opts.vars ?? {})) args.push('-key', name, value);
  for (const [name, value] of Object.entries(opts.globals ?? {})) args.push('-set', name, value);
  args.push(...(opts.extra ?? []));

  const label = opts.label ?? `${opts.scenario}@${opts.local}:${opts.localPort}`;
  // cwd = the temp dir: sipp writes any file it is not told about next to itself.
  const child = spawn(SIPP, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  killAtExit(child);
  let out = '';
  const collect = (chunk: Buffer) => {
    out += chunk.toString('utf8');
    // The screen is redrawn every second; keep only the recent part.
    if (out.length > 40000) out = out.slice(-20000);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const hardKill = setTimeout(() => child.kill('SIGKILL'), (timeoutSec + 5) * 1000);

  const done = new Promise<SippResult>((resolve) => {
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(hardKill);
      const result: SippResult = {
        label,
        code,
        signal,
        args,
        out: out.length > 6000 ? `...${out.slice(-6000)}` : out,
        errors: readIfExists(files.errors),
        log: readIfExists(files.log),
        messages: readIfExists(files.messages),
      };
      rmSync(dir, { recursive: true, force: true });
      resolve(result);
    };
    child.once('error', (err) => {
      out += `\nspawn error: ${err.message}`;
      finish(null, null);
    });
    child.once('close', finish);
  });

  let ended = false;
  void done.then(() => {
    ended = true;
  });

  return {
    label,
    pid: child.pid,
    done,
    messages: () => readIfExists(files.messages),
    async waitForMessage(re: RegExp, timeoutMs = 5000) {
      await waitFor(`${label}: message ${re}`, () => ended || re.test(readIfExists(files.messages)), timeoutMs);
      if (!re.test(readIfExists(files.messages))) {
        const r = await done;
        throw new Error(`${label} exited before ${re} was traced\n${describe(r)}`);
      }
    },
    async stop() {
      if (!ended) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 2000);
        const r = await done;
        clearTimeout(killer);
        return r;
      }
      return done;
    },
  };
}

/** Runs sipp to completion. */
export function sipp(opts: SippOptions): Promise<SippResult> {
  return sippStart(opts).done;
}

/** A readable summary for assertion messages: exit code, errors, logs and the message trace. */
export function describe(r: SippResult, maxMessages = 6000): string {
  const all = r.messages.replace(/\r/g, '');
  const msgs = all.length > maxMessages ? `...${all.slice(-maxMessages)}` : all;
  return [
    `[${r.label}] exit ${r.code}${r.signal ? ` (signal ${r.signal})` : ''}`,
    `sipp ${r.args.join(' ')}`,
    r.errors && `--- errors\n${r.errors.trim()}`,
    r.log && `--- log\n${r.log.trim()}`,
    `--- messages\n${msgs.trim()}`,
  ]
    .filter(Boolean)
    .join('\n');
}

/** Requests of a given method seen in a message trace, e.g. count of received INVITEs. */
export function countReceived(messages: string, method: string): number {
  // sipp's trace marks each message with "message received [n] bytes :" followed by the start line.
  const re = new RegExp(`message received \\[\\d+\\] bytes :\\s*\\r?\\n\\s*${method} `, 'g');
  return messages.match(re)?.length ?? 0;
}

// ---------------------------------------------------------------------------------------
// Socket readiness: a background UAS is ready once its port is bound. Read /proc/net
// instead of probing with a bind, which could steal the port from sipp.

function procHex(ip: string, port: number): string {
  const hexIp = ip
    .split('.')
    .map((o) => Number(o).toString(16).padStart(2, '0'))
    .reverse()
    .join('')
    .toUpperCase();
  return `${hexIp}:${port.toString(16).padStart(4, '0').toUpperCase()}`;
}

export function isBound(ip: string, port: number, transport: 'u1' | 't1' = 'u1'): boolean {
  const table = readIfExists(transport === 't1' ? '/proc/net/tcp' : '/proc/net/udp');
  const want = procHex(ip, port);
  return table.split('\n').some((line) => {
    const cols = line.trim().split(/\s+/);
    // TCP must be listening (state 0A); UDP sockets are bound or not.
    return cols[1] === want && (transport === 'u1' || cols[3] === '0A');
  });
}

// ---------------------------------------------------------------------------------------
// Devices

export interface DeviceOptions {
  username: string;
  password: string;
  local: string;
  localPort: number;
  /** '127.0.0.1:<sip port>' of the proxy. */
  remote: string;
  transport?: 'u1' | 't1';
}

/** REGISTER the contact local:localPort (register.xml); resolves with the sipp result. */
export function register(dev: DeviceOptions & { expires?: number; scenario?: string; timeoutSec?: number }): Promise<SippResult> {
  return sipp({
    scenario: dev.scenario ?? 'register.xml',
    local: dev.local,
    localPort: dev.localPort,
    remote: dev.remote,
    username: dev.username,
    password: dev.password,
    vars: { user: dev.username, expires: String(dev.expires ?? 600) },
    timeoutSec: dev.timeoutSec ?? 10,
    transport: dev.transport,
    label: `${dev.scenario ?? 'register.xml'} ${dev.username}@${dev.local}:${dev.localPort}`,
  });
}

/**
 * Starts a UAS (server-mode) scenario and resolves once its socket is bound, so a peer may
 * send right away. Throws with sipp's output if it exits first (bad scenario, port taken).
 */
export async function sippServer(opts: SippOptions): Promise<SippProcess> {
  const proc = sippStart(opts);
  let exitedEarly: SippResult | undefined;
  void proc.done.then((r) => {
    exitedEarly = r;
  });
  await waitFor(
    `${proc.label} to bind`,
    () => exitedEarly !== undefined || isBound(opts.local, opts.localPort, opts.transport),
    5000,
    20,
  ).catch(async (err: Error) => {
    const r = await proc.stop();
    throw new Error(`${err.message}\n${describe(r)}`);
  });
  if (exitedEarly) throw new Error(`${proc.label} exited at start\n${describe(exitedEarly)}`);
  return proc;
}

export interface PhoneOptions extends DeviceOptions {
  /** UAS scenario: phone-answer.xml, phone-ring-cancelled.xml, phone-decline.xml, ... */
  scenario: string;
  /** Calls the phone must take before its sipp exits (default 1). */
  calls?: number;
  /** -d: ring time before answering/declining (ms; default 500). */
  ringMs?: number;
  timeoutSec?: number;
  timeoutIsError?: boolean;
  /** Extra keywords (-key). */
  vars?: Record<string, string>;
  /** Global variables (-set), e.g. { code: '486' } for phone-decline.xml. */
  globals?: Record<string, string>;
  /** Register first (default true). A phone that is already registered may skip it. */
  register?: boolean;
}

/**
 * A phone: registers its contact, then waits for INVITEs in the background with a UAS
 * scenario on the same address and port. SIPp ties a call to one Call-ID, so the REGISTER
 * transaction and the incoming calls cannot share one SIPp call; the two steps run one after
 * the other. Resolves once the UAS socket is bound, so a caller may start right away.
 */
export async function phone(opts: PhoneOptions): Promise<SippProcess> {
  if (opts.register ?? true) {
    const reg = await register({
      username: opts.username,
      password: opts.password,
      local: opts.local,
      localPort: opts.localPort,
      remote: opts.remote,
      transport: opts.transport,
    });
    if (reg.code !== 0) throw new Error(`registration of ${opts.username} failed\n${describe(reg)}`);
  }
  return sippServer({
    scenario: opts.scenario,
    local: opts.local,
    localPort: opts.localPort,
    calls: opts.calls ?? 1,
    pauseMs: opts.ringMs ?? 500,
    timeoutSec: opts.timeoutSec ?? 20,
    timeoutIsError: opts.timeoutIsError ?? true,
    vars: opts.vars,
    globals: opts.globals,
    transport: opts.transport,
    label: `${opts.scenario} ${opts.username}@${opts.local}:${opts.localPort}`,
  });
}

/** A device that must not ring during the test: exit 99 (no call) when stopped at its -timeout. */
export function idlePhone(opts: DeviceOptions & { timeoutSec: number }): Promise<SippProcess> {
  return phone({ ...opts, scenario: 'phone-must-not-ring.xml', register: false, timeoutIsError: false, timeoutSec: opts.timeoutSec });
}

export interface CallerOptions {
  scenario?: string;
  local: string;
  localPort: number;
  remote: string;
  /** The number dialled (-s). */
  to: string;
  /** From user; for a device also its digest username. */
  from?: string;
  /** Device password: the caller then authenticates (407) as `from`. */
  password?: string;
  /** caller-expect.xml: the final response that must arrive. */
  expect?: number;
  /** -d: ring time before CANCEL (caller-cancel.xml) or talk time before BYE (caller.xml), ms. */
  pauseMs?: number;
  timeoutSec?: number;
  transport?: 'u1' | 't1';
  label?: string;
}

/** Builds the sipp options of a caller: a trunk (no password) or a registered device (password). */
export function callerOptions(c: CallerOptions): SippOptions {
  const device = c.password !== undefined;
  const from = c.from ?? 'trunk-caller';
  const scenario = c.scenario ?? (c.expect === undefined ? 'caller.xml' : 'caller-expect.xml');
  return {
    scenario,
    local: c.local,
    localPort: c.localPort,
    remote: c.remote,
    service: c.to,
    vars: { caller: from, caller_domain: device ? DOMAIN : c.local },
    globals: c.expect === undefined ? undefined : { want: String(c.expect) },
    username: device ? from : undefined,
    password: c.password,
    pauseMs: c.pauseMs ?? 1000,
    timeoutSec: c.timeoutSec ?? 20,
    transport: c.transport,
    label: c.label ?? `${scenario} ${from}@${c.local}:${c.localPort} -> ${c.to}`,
  };
}

export function call(c: CallerOptions): Promise<SippResult> {
  return sipp(callerOptions(c));
}

export function callStart(c: CallerOptions): SippProcess {
  return sippStart(callerOptions(c));
}

/** Settles every process and returns their results (for teardown and assertions). */
export async function allDone(procs: SippProcess[]): Promise<SippResult[]> {
  return Promise.all(procs.map((p) => p.done));
}

// ---------------------------------------------------------------------------------------
// Assertions: the sipp details go into the diagnostic block tap prints on failure only.

type Asserts = Pick<Test, 'equal' | 'ok'>;

/** Asserts sipp's exit code: 0 means every call followed the scenario. */
export function assertExit(t: Asserts, r: SippResult, code: number, message: string): boolean {
  return t.equal(r.code, code, `${message} (${r.label})`, { sipp: describe(r) });
}

/**
 * Asserts that an idle phone (phone-must-not-ring.xml) got no INVITE. SIPp exits 97 when its
 * -timeout ends a run without -timeout_error, 99 when it processed no call.
 */
export function assertNotRung(t: Asserts, r: SippResult, message: string): boolean {
  return t.ok(
    countReceived(r.messages, 'INVITE') === 0 && (r.code === 97 || r.code === 99),
    `${message} (${r.label})`,
    { sipp: describe(r) },
  );
}

// ---------------------------------------------------------------------------------------
// Admin API views (interface.md), as far as the tests read them.

export interface ApiCall {
  id: string;
  extension: string;
  direction: string;
  device: string;
  state: string;
  startedAt: string;
}

export interface ApiExtension {
  number: string;
  name: string;
  busyOnBusy: boolean;
  activeCalls: number;
  devices: Array<{ username: string; registrations: Array<{ contact: string; expiresAt: string; source: string; transport: string }> }>;
}

/** Active calls of one extension (GET /api/calls). */
export async function callsOf(proxy: Proxy, extension: string): Promise<ApiCall[]> {
  const calls = await proxy.apiJson<ApiCall[]>('/api/calls');
  return calls.filter((c) => c.extension === extension);
}

/** Contacts registered for a device (GET /api/extensions/{number}). */
export async function contactsOf(proxy: Proxy, extension: string, username: string): Promise<string[]> {
  const ext = await proxy.apiJson<ApiExtension>(`/api/extensions/${extension}`);
  const dev = ext.devices.find((d) => d.username === username);
  if (!dev) throw new Error(`device ${username} not in extension ${extension}: ${JSON.stringify(ext)}`);
  return dev.registrations.map((r) => r.contact);
}

/** The "call outcome" log line of a call (pino, see src/proxy). */
export function outcomeOf(proxy: Proxy, callId: string, timeoutMs = 5000): Promise<LogLine> {
  return proxy.waitForLog((l) => l.msg === 'call outcome' && l.callId === callId, timeoutMs);
}

/** The Call-ID of the first message in a sipp message trace (SippResult.messages or SippProcess.messages()). */
export function callIdOf(messages: string): string {
  const m = /^\s*Call-ID:\s*(\S+)/im.exec(messages);
  if (!m) throw new Error(`no Call-ID in the message trace:\n${messages.slice(0, 2000)}`);
  return m[1]!;
}

/** Ports for the SIPp processes of one test file, one per call: first, first + 1, ... */
export function portCounter(first: number): () => number {
  let next = first;
  return () => next++;
}
