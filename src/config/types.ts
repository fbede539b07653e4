/** Validated, typed configuration. Produced by config/load.ts from YAML; see ../shared/interface.md. */
import type { TransportName } from '../transport/names.js';

export type DigestAlgorithm = 'MD5' | 'SHA-256';

export interface ListenConfig {
  transport: TransportName;
  host: string; // IPv4/IPv6 literal or hostname, without brackets
  port: number;
  url: string; // as written in the config, for logs
}

export interface DeviceConfig {
  username: string;
  password: string;
}

export interface ExtensionConfig {
  number: string;
  name: string;
  busyOnBusy: boolean;
  /** Seconds; per-extension override of calls.ringTimeout. */
  ringTimeout?: number;
  declineEndsCall: boolean;
  devices: DeviceConfig[];
}

export interface TrunkConfig {
  name: string;
  host: string; // IP literal
  port?: number; // when given, only this source port is trusted
}

export interface Config {
  domain: string;
  listen: ListenConfig[];
  advertise?: string;
  /** Certificate and key (PEM files) for tls://, wss:// and https; re-read on SIGHUP. */
  tls?: { cert: string; key: string };
  http: {
    host: string;
    port: number;
    adminToken?: string;
    /** Serve the API, portal and /metrics over TLS with `tls.cert`/`tls.key`. */
    https: boolean;
    /** Reverse proxies (CIDRs) whose X-Forwarded-For names the client. */
    trustProxy: Cidr[];
  };
  /** nonceSecret: the HMAC key of the digest nonces, shared by instances; default random (or from Redis). */
  auth: { algorithms: DigestAlgorithm[]; nonceSecret?: string };
  /** natKeepalive: seconds between CRLFCRLF datagrams to registered UDP contacts without outbound; 0 off. */
  registrar: { minExpires: number; maxExpires: number; defaultExpires: number; natKeepalive: number };
  calls: {
    ringTimeout: number;
    maxCallDuration: number;
    /** Seconds between in-dialog OPTIONS to both ends of a confirmed call; 0: no probes. */
    keepalive: number;
    /** Probes in a row that fail at one end before the call is ended. */
    keepaliveFailures: number;
  };
  security: SecurityConfig;
  storage: { path?: string; redis?: string };
  /** Only with storage.redis: this instance's unique name and where the others reach it over SIP (UDP). */
  cluster?: ClusterConfig;
  trunks: TrunkConfig[];
  extensions: ExtensionConfig[];
  log: { level: string };
}

export interface ClusterConfig {
  instance: string;
  address: { host: string; port: number };
}

/** An IPv4 or IPv6 network; a bare address is a /32 or /128. */
export interface Cidr {
  address: string; // IP literal, without brackets
  prefix: number;
  text: string; // as written in the config
}

/** Per-source-address limits (shared/interface.md, "Open to the internet"). */
export interface SecurityConfig {
  /** Networks never rate-limited or banned; trunks are trusted as well. */
  trusted: Cidr[];
  /** More than `requests` in `seconds` from one address: ignored for `ban` seconds. */
  floodLimit: { requests: number; seconds: number; ban: number };
  /** `max` wrong digest answers in `seconds` from one address: ignored for `ban` seconds. */
  authFailures: { max: number; seconds: number; ban: number };
}

export interface ConfigError {
  /** Dotted path of the offending key, e.g. "extensions[1].devices[0].username". */
  key: string;
  /** 1-based line in the YAML file, 0 when unknown. */
  line: number;
  message: string;
}
