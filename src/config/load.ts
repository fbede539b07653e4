/**
 * YAML -> validated, typed Config (see shared/interface.md, "Config (YAML)").
 *
 * The file is described by a small schema at the bottom of this file, built from checks such
 * as str(), int(), list() and obj(). A check validates one YAML node and either returns its
 * value or records a ConfigError naming the key path and the 1-based line, so a single walk
 * reports every error in the file. Values produced by a walk that recorded errors are never
 * handed out.
 */
import { readFileSync } from 'node:fs';
import { isIP, isIPv6 } from 'node:net';
import { hostname } from 'node:os';
import { LineCounter, isAlias, isMap, isNode, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import type { Cidr, Config, ConfigError, DigestAlgorithm, ListenConfig } from './types.js';
import { TRANSPORTS, transportByName } from '../transport/names.js';

export type ConfigResult = { config: Config; errors: [] } | { config?: undefined; errors: ConfigError[] };

/** Env variable that supplies http.adminToken; see parseConfig for precedence. */
export const ADMIN_TOKEN_ENV = 'SIPBOB_ADMIN_TOKEN';

/** Reads and validates a config file. A read error is one ConfigError with key "" and line 0. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): ConfigResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { errors: [{ key: '', line: 0, message: `cannot read config: ${(err as Error).message}` }] };
  }
  return parseConfig(text, file, env);
}

/**
 * Validates config text. Every error is collected, sorted by line.
 *
 * `file` only names the source (errors carry key and line; formatErrors adds the file name).
 *
 * Admin token: a non-empty env SIPBOB_ADMIN_TOKEN wins over http.adminToken in the file. The
 * embedded default file ships `adminToken: change-me`; if the file won, an operator who sets
 * the env secret would silently keep running with "change-me". Env-over-file is also the usual
 * convention for secrets (containers, systemd EnvironmentFile).
 */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): ConfigResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  if (doc.errors.length > 0) {
    // Syntax errors: the tree is unreliable, so report them alone rather than guess.
    const errors = doc.errors.map((e) => ({ key: '', line: lines.linePos(e.pos[0]).line, message: e.message }));
    return { errors };
  }
  const w = new Walk(doc, lines);
  const config = configSchema(doc.contents, '', w);
  if (w.errors.length > 0 || config === undefined) {
    return { errors: w.errors.sort((a, b) => a.line - b.line) };
  }
  const envToken = env[ADMIN_TOKEN_ENV];
  if (envToken) config.http.adminToken = envToken;
  return { config, errors: [] };
}

/** One line per error: `file:12: extensions[1].devices[0].username: duplicate username ...`. */
export function formatErrors(file: string, errors: readonly ConfigError[]): string {
  return errors
    .map((e) => `${file}${e.line > 0 ? `:${e.line}` : ''}: ${e.key ? `${e.key}: ` : ''}${e.message}`)
    .join('\n');
}

// ---------------------------------------------------------------------------------------------
// The walker: checks over yaml nodes.

class Walk {
  readonly errors: ConfigError[] = [];
  private readonly firstSeen = new Map<string, Map<string, number>>();

  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** 1-based line where a node starts, 0 when unknown. */
  line(node: unknown): number {
    const start = isNode(node) ? node.range?.[0] : undefined;
    return start === undefined ? 0 : this.lines.linePos(start).line;
  }

  /** Records an error at a node (or a line); returns undefined so a check can `return w.fail(...)`. */
  fail(at: unknown, key: string, message: string): undefined {
    this.errors.push({ key, line: typeof at === 'number' ? at : this.line(at), message });
    return undefined;
  }

  /** Follows `*alias` to its anchored node. */
  deref(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.doc) : node;
  }

  /** Remembers a value within a scope; returns the line it was first seen at, if any. */
  seen(scope: string, value: string, line: number): number | undefined {
    let values = this.firstSeen.get(scope);
    if (!values) this.firstSeen.set(scope, (values = new Map()));
    const first = values.get(value);
    if (first === undefined) values.set(value, line);
    return first;
  }
}

/** Validates one node; returns its value, or undefined after recording an error. */
type Check<T> = (node: unknown, path: string, w: Walk) => T | undefined;

/** A key of a mapping: its check, and its value when the key is absent or empty (`key:`). */
interface Field<T> {
  check: Check<T>;
  absent(path: string, line: number, w: Walk): T | undefined;
}

const required = <T>(check: Check<T>): Field<T> => ({
  check,
  absent: (path, line, w) => w.fail(line, path, 'is required'),
});
const optional = <T>(check: Check<T>): Field<T | undefined> => ({ check, absent: () => undefined });
const withDefault = <T>(check: Check<T>, value: NoInfer<T>): Field<T> => ({ check, absent: () => structuredClone(value) });
/** An optional sub-mapping: when absent, its own fields' defaults apply. */
const section = <T>(check: Check<T>): Field<T> => ({ check, absent: (path, _line, w) => check(undefined, path, w) });

type Shape = Record<string, Field<unknown>>;
// Typed as if every check succeeded; only read when the walk recorded no error.
type Out<S extends Shape> = { [K in keyof S]: S[K] extends Field<infer T> ? T : never };

const isEmpty = (node: unknown) => node == null || (isScalar(node) && node.value === null);

/** A mapping with exactly the keys of `shape`. `undefined` (an absent section) is an empty mapping. */
function obj<S extends Shape>(shape: S): Check<Out<S>> {
  const known = Object.keys(shape);
  return (node, path, w) => {
    if (node !== undefined && !isMap(node)) {
      return w.fail(node, path, path ? 'must be a mapping' : 'the config must be a YAML mapping (domain:, extensions:, ...)');
    }
    const given = new Map<string, { line: number; value: unknown }>();
    for (const pair of node?.items ?? []) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const keyPath = join(path, key);
      const line = w.line(pair.key);
      const first = given.get(key);
      if (!Object.hasOwn(shape, key)) w.fail(line, keyPath, unknownKey(key, known));
      else if (first) w.fail(line, keyPath, `duplicate key (first at line ${first.line})`);
      else given.set(key, { line, value: w.deref(pair.value) });
    }
    const out: Record<string, unknown> = {};
    for (const key of known) {
      const field = shape[key]!;
      const g = given.get(key);
      const keyPath = join(path, key);
      const value = g && !isEmpty(g.value) ? field.check(g.value, keyPath, w) : field.absent(keyPath, g?.line ?? w.line(node), w);
      if (value !== undefined) out[key] = value;
    }
    return out as Out<S>;
  };
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function unknownKey(key: string, known: string[]): string {
  const near = known.find((k) => editDistance(key.toLowerCase(), k.toLowerCase()) <= 2);
  return near ? `unknown key (did you mean "${near}"?)` : `unknown key (expected one of: ${known.join(', ')})`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

function list<T>(item: Check<T>, { nonEmpty = false } = {}): Check<T[]> {
  return (node, path, w) => {
    if (!isSeq(node)) return w.fail(node, path, 'must be a list');
    if (nonEmpty && node.items.length === 0) return w.fail(node, path, 'must not be empty');
    return node.items.map((n, i) => item(w.deref(n), `${path}[${i}]`, w) as T);
  };
}

/** Runs `then` on a value whose check (including everything below it) found no error. */
function refine<T, R>(check: Check<T>, then: (value: T, node: unknown, path: string, w: Walk) => R | undefined): Check<R> {
  return (node, path, w) => {
    const before = w.errors.length;
    const value = check(node, path, w);
    return value === undefined || w.errors.length > before ? undefined : then(value, node, path, w);
  };
}

/** Values must differ within `scope` (across the whole file). */
function unique<T>(scope: string, check: Check<T>, id: (v: T) => string = String): Check<T> {
  return refine(check, (value, node, path, w) => {
    const first = w.seen(scope, id(value), w.line(node));
    return first === undefined ? value : w.fail(node, path, `duplicate ${scope} "${id(value)}" (first at line ${first})`);
  });
}

/** Text of a scalar; plain numbers and booleans are taken as written (`password: 1234` is "1234"). */
function text(node: unknown, path: string, w: Walk): string | undefined {
  if (!isScalar(node) || !['string', 'number', 'boolean'].includes(typeof node.value)) {
    // `address: [::1]:5060` is a YAML list: say how to write it.
    return w.fail(node, path, isSeq(node) ? 'must be a string (quote values that start with "[")' : 'must be a string');
  }
  const s = typeof node.value === 'string' ? node.value : (node.source ?? String(node.value));
  return s === '' ? w.fail(node, path, 'must not be empty') : s;
}

/** A non-empty string; `problem` returns an error message for a bad one. */
const str =
  (problem: (s: string) => string | undefined = () => undefined): Check<string> =>
  (node, path, w) => {
    const s = text(node, path, w);
    const bad = s === undefined ? undefined : problem(s);
    return bad ? w.fail(node, path, bad) : s;
  };

const oneOf = <const T extends string>(values: readonly T[]): Check<T> =>
  str((s) => (values.includes(s as T) ? undefined : `must be one of ${values.join(', ')} (got "${s}")`)) as Check<T>;

const int =
  (min: number, max: number): Check<number> =>
  (node, path, w) => {
    const v = isScalar(node) ? node.value : undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) return w.fail(node, path, 'must be an integer');
    if (v < min) return w.fail(node, path, `must be at least ${min}`);
    if (v > max) return w.fail(node, path, `must be at most ${max}`);
    return v;
  };

/** Durations in seconds; the upper bound is the longest delay a Node timer can hold. */
const seconds = int(1, 2_147_483);

const bool: Check<boolean> = (node, path, w) =>
  isScalar(node) && typeof node.value === 'boolean' ? node.value : w.fail(node, path, 'must be true or false');

// ---------------------------------------------------------------------------------------------
// Values: hosts, ports, URLs.

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
/** An IP literal or a DNS name (but not a malformed dotted quad such as 999.1.1.1). */
const isHost = (s: string) => isIP(s) !== 0 || (HOSTNAME.test(s) && !/^[\d.]+$/.test(s));
const hostProblem = (s: string) => (isHost(s) ? undefined : `"${s}" is not an IP address or host name`);

interface HostPort {
  host: string;
  port?: number;
}

/**
 * Splits "host:port", "[v6]:port" (port optional unless `needPort`); a bare IPv6 literal is a
 * host without port. Returns the parts or an error message.
 */
function hostPort(s: string, needPort: boolean, ipOnly: boolean): HostPort | string {
  const m = isIPv6(s) ? [s, s] : (/^\[([^\]]*)\](?::(.*))?$/.exec(s) ?? /^([^:[\]]*)(?::(.*))?$/.exec(s));
  if (!m) return needPort ? 'must be host:port (IPv6 as [::1]:5060)' : 'must be host or host:port (IPv6 as [::1]:5060)';
  const [, host = '', port] = m;
  if (port === undefined && needPort) {
    return isIPv6(host) ? 'must be [ipv6]:port, e.g. [::1]:5060' : `must be host:port (got "${s}")`;
  }
  if (s.startsWith('[') && !isIPv6(host)) return `"${host}" is not an IPv6 address`;
  if (ipOnly ? isIP(host) === 0 : !isHost(host)) return `"${host}" is not an IP address${ipOnly ? '' : ' or host name'}`;
  if (port === undefined) return { host };
  const n = /^\d{1,5}$/.test(port) ? Number(port) : 0;
  if (n < 1 || n > 65535) return `port must be between 1 and 65535 (got "${port}")`;
  return { host, port: n };
}

/** Wraps hostPort as a check. */
const address =
  (needPort: boolean, ipOnly: boolean): Check<HostPort> =>
  (node, path, w) => {
    const s = text(node, path, w);
    const r = s === undefined ? undefined : hostPort(s, needPort, ipOnly);
    return typeof r === 'string' ? w.fail(node, path, r) : r;
  };

/** "udp, tcp, ws or wss": every row of the transport table. */
const TRANSPORT_CHOICES = Object.keys(TRANSPORTS).join(', ').replace(/, ([^,]*)$/, ' or $1');

const listenUrl: Check<ListenConfig> = (node, path, w) => {
  const url = text(node, path, w);
  if (url === undefined) return undefined;
  const m = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(url);
  if (!m) return w.fail(node, path, `must be a URL such as udp://host:port (transports: ${TRANSPORT_CHOICES}; got "${url}")`);
  const transport = transportByName(m[1]!.toLowerCase())?.name;
  if (transport === undefined) return w.fail(node, path, `transport must be ${TRANSPORT_CHOICES} (got "${m[1]}")`);
  const hp = hostPort(m[2]!, true, false);
  if (typeof hp === 'string') return w.fail(node, path, hp);
  return { transport, host: hp.host, port: hp.port!, url };
};

/** `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a single host). */
const cidr: Check<Cidr> = (node, path, w) => {
  const s = text(node, path, w);
  if (s === undefined) return undefined;
  const slash = s.indexOf('/');
  const address = slash < 0 ? s : s.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return w.fail(node, path, `"${address}" is not an IP address (write a network as 10.0.0.0/8)`);
  const max = family === 4 ? 32 : 128;
  const bits = slash < 0 ? String(max) : s.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(bits) ? Number(bits) : -1;
  if (prefix < 0 || prefix > max) return w.fail(node, path, `prefix length must be between 0 and ${max} (got "${bits}")`);
  return { address, prefix, text: s };
};

const listenId = (l: ListenConfig) => `${l.transport}://${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`;

const redisUrl = str((s) => (/^rediss?:\/\/[^\s]+$/.test(s) && URL.canParse(s) ? undefined : 'must be a redis:// or rediss:// URL'));

// ---------------------------------------------------------------------------------------------
// The schema. Defaults are those of shared/interface.md.

const ALGORITHMS: readonly DigestAlgorithm[] = ['MD5', 'SHA-256'];
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const DEFAULT_LISTEN: ListenConfig[] = [
  { transport: 'udp', host: '0.0.0.0', port: 5060, url: 'udp://0.0.0.0:5060' },
  { transport: 'tcp', host: '0.0.0.0', port: 5060, url: 'tcp://0.0.0.0:5060' },
];

const device = obj({
  username: required(unique('username', str((s) => (/^[^\s@:]+$/.test(s) ? undefined : "must not contain whitespace, '@' or ':'")))),
  password: required(str()),
});

const extension = refine(
  obj({
    number: required(unique('extension number', str((s) => (/^\d{1,32}$/.test(s) ? undefined : 'must be 1 to 32 digits')))),
    name: optional(str()), // default: the number
    busyOnBusy: withDefault(bool, false),
    ringTimeout: optional(seconds), // default: calls.ringTimeout
    declineEndsCall: withDefault(bool, false),
    devices: withDefault(list(device), []),
  }),
  (e) => ({ ...e, name: e.name ?? e.number }),
);

const trunk = refine(
  obj({ name: required(unique('trunk name', str())), address: required(address(false, true)) }),
  ({ name, address: { host, port } }) => (port === undefined ? { name, host } : { name, host, port }),
);

const http = refine(
  obj({
    listen: withDefault(address(true, false), { host: '127.0.0.1', port: 8080 }),
    adminToken: optional(str()),
    https: withDefault(bool, false),
    trustProxy: withDefault(list(cidr), []),
  }),
  ({ listen, adminToken, https, trustProxy }) => ({
    host: listen.host,
    port: listen.port!,
    ...(adminToken === undefined ? {} : { adminToken }),
    https,
    trustProxy,
  }),
);

const tls = obj({ cert: required(str()), key: required(str()) });

const security = obj({
  trusted: withDefault(list(cidr), []),
  floodLimit: section(
    obj({ requests: withDefault(int(1, 1_000_000), 300), seconds: withDefault(seconds, 2), ban: withDefault(seconds, 60) }),
  ),
  authFailures: section(
    obj({ max: withDefault(int(1, 1_000_000), 10), seconds: withDefault(seconds, 300), ban: withDefault(seconds, 900) }),
  ),
});

const registrar = refine(
  obj({
    minExpires: withDefault(seconds, 60),
    maxExpires: withDefault(seconds, 3600),
    defaultExpires: withDefault(seconds, 600),
    // Seconds between keep-alives to UDP contacts without outbound (Kamailio natping); 0: off.
    natKeepalive: withDefault(int(0, 3600), 0),
  }),
  (r, node, path, w) => {
    // Blame a key the operator wrote rather than one that was defaulted.
    const lineOf = (key: string) => {
      const pair = isMap(node) ? node.items.find((p) => isScalar(p.key) && p.key.value === key) : undefined;
      return pair ? w.line(pair.value) : undefined;
    };
    const blame = (prefer: string, other: string, message: string) => {
      const key = lineOf(prefer) !== undefined || lineOf(other) === undefined ? prefer : other;
      return w.fail(lineOf(key) ?? w.line(node), join(path, key), message);
    };
    const { minExpires: min, maxExpires: max, defaultExpires: dflt } = r;
    if (min > max) return blame('minExpires', 'maxExpires', `minExpires (${min}) must not exceed maxExpires (${max})`);
    if (dflt < min || dflt > max) {
      const message = `defaultExpires (${dflt}) must be between minExpires (${min}) and maxExpires (${max})`;
      return blame('defaultExpires', dflt < min ? 'minExpires' : 'maxExpires', message);
    }
    return r;
  },
);

const storage = refine(
  obj({ path: optional(str()), redis: optional(redisUrl) }),
  // The embedded store (data/) is the default only when no redis is configured; Redis replaces it.
  (s, node, path, w) => {
    if (s.path !== undefined && s.redis !== undefined) {
      const pair = isMap(node) ? node.items.find((p) => isScalar(p.key) && p.key.value === 'redis') : undefined;
      return w.fail(w.line(pair?.value ?? node), join(path, 'redis'), 'storage.path and storage.redis exclude each other (Redis replaces the embedded store)');
    }
    return (s.path === undefined && s.redis === undefined ? { path: 'data/' } : s) as { path?: string; redis?: string };
  },
);

// An instance's name keys what it owns in Redis: letters, digits, '.', '_' and '-' only.
const instanceName = str((s) => (/^[A-Za-z0-9._-]{1,64}$/.test(s) ? undefined : "must be 1 to 64 letters, digits, '.', '_' or '-'"));
const cluster = obj({ instance: optional(instanceName), address: optional(address(true, true)) });
const nonceSecret = str((s) => (s.length >= 16 ? undefined : 'must be at least 16 characters'));

const configShape = obj({
  domain: required(str(hostProblem)),
  listen: withDefault(list(unique('listener', listenUrl, listenId), { nonEmpty: true }), DEFAULT_LISTEN),
  advertise: optional(str(hostProblem)),
  tls: optional(tls),
  http: section(http),
  auth: section(
    obj({
      algorithms: withDefault(list(unique('algorithm', oneOf(ALGORITHMS)), { nonEmpty: true }), ['MD5']),
      nonceSecret: optional(nonceSecret),
    }),
  ),
  registrar: section(registrar),
  calls: section(
    obj({
      ringTimeout: withDefault(seconds, 30),
      maxCallDuration: withDefault(seconds, 14400),
      keepalive: withDefault(int(0, 86_400), 30),
      keepaliveFailures: withDefault(int(1, 100), 2),
    }),
  ),
  security: section(security),
  storage: section(storage),
  cluster: optional(cluster),
  trunks: withDefault(list(trunk), []),
  extensions: required(list(extension)),
  log: section(obj({ level: withDefault(oneOf(LOG_LEVELS), 'info') })),
});

/** Checks across sections. */
const configSchema = refine(configShape, (c, node, _path, w) => {
  if (c.http.https && c.tls === undefined) {
    const httpNode = isMap(node) ? node.items.find((p) => isScalar(p.key) && p.key.value === 'http') : undefined;
    return w.fail(w.line(httpNode?.key ?? node), 'http.https', 'needs tls.cert and tls.key');
  }
  // tls:// and wss:// serve the certificate of the tls section.
  const secureAt = c.tls === undefined ? c.listen.findIndex((l) => l.transport === 'tls' || l.transport === 'wss') : -1;
  if (secureAt !== -1) {
    const listenNode = isMap(node) ? node.items.find((p) => isScalar(p.key) && p.key.value === 'listen') : undefined;
    const entry = listenNode !== undefined && isSeq(listenNode.value) ? listenNode.value.items[secureAt] : undefined;
    const l = c.listen[secureAt]!;
    return w.fail(w.line(entry ?? listenNode?.key ?? node), `listen[${secureAt}]`, `${l.url} needs tls.cert and tls.key (a ${l.transport}:// listener)`);
  }
  const clusterNode = isMap(node) ? node.items.find((p) => isScalar(p.key) && p.key.value === 'cluster') : undefined;
  if (c.storage.redis === undefined) {
    if (c.cluster !== undefined) return w.fail(w.line(clusterNode?.key ?? node), 'cluster', 'only applies with storage.redis');
    const { cluster: _none, ...rest } = c;
    return rest;
  }
  // The other instances relay branches to this one over UDP at cluster.address: by default the
  // first UDP listener, named as advertised.
  const udp = c.listen.find((l) => l.transport === 'udp');
  const host = c.cluster?.address?.host ?? c.advertise ?? udp?.host;
  const port = c.cluster?.address?.port ?? udp?.port;
  if (host === undefined || port === undefined || host === '0.0.0.0' || host === '::') {
    return w.fail(w.line(clusterNode?.key ?? node), 'cluster.address', 'is needed with storage.redis when no UDP listener names an address the other instances can reach');
  }
  return { ...c, cluster: { instance: c.cluster?.instance ?? hostname(), address: { host, port } } };
}) satisfies Check<Config>;
