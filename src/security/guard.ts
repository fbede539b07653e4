/**
 * Per source address: a flood limit on requests and a limit on wrong digest answers; a source
 * past either is banned, and its messages are dropped before they are parsed (as Kamailio's
 * pike plus an htable ban list). Trusted networks and trunk hosts are never limited.
 *
 * The transport asks `admit` for every datagram and stream message, so that path is one Map
 * lookup, a clock read and a counter update: fixed windows per source, no timer per source.
 * The table of sources is bounded (the oldest entry goes first) and swept of idle entries, so
 * a flood from spoofed addresses costs bounded memory. Bans live in a BanStore (bans.ts).
 */
import type { Logger } from 'pino';
import { RateLimitedLog } from '../log/rate-limited-log.js';
import type { SourceGate } from '../transport/transport.js';
import { BAN_REASONS, MemoryBans, type Ban, type BanReason, type BanStore } from './bans.js';
import { canonicalAddress, CidrSet, type CidrSpec } from './cidr.js';

/** What the guard reads of the config (config's SecurityConfig has this shape, plus the trunk hosts). */
export interface GuardSettings {
  /** Never limited or banned: security.trusted and every trunk host. */
  trusted: readonly CidrSpec[];
  floodLimit: { requests: number; seconds: number; ban: number };
  authFailures: { max: number; seconds: number; ban: number };
}

export interface GuardOptions {
  log: Logger;
  bans?: BanStore;
  now?: () => number;
  /** Most source addresses counted at once (memory bound). Default 100,000. */
  maxSources?: number;
}

const FLOOD = 0;
const AUTH = 1;
const DEFAULT_MAX_SOURCES = 100_000;

/** One source address's counters; a class so every entry has the same shape. */
class Source {
  requests = 0;
  failures = 0;
  failStart = 0;
  /** 0: not banned. */
  bannedUntil = 0;
  banReason = FLOOD;
  constructor(
    /** Canonical text, the ban's key. */
    readonly address: string,
    readonly trusted: boolean,
    public windowStart: number,
  ) {}
}

/** A datagram that starts with "SIP/" is a response: a request's method cannot contain '/'. */
function isResponse(data: Buffer): boolean {
  return data.length > 4 && data[0] === 0x53 && data[1] === 0x49 && data[2] === 0x50 && data[3] === 0x2f;
}

export class SourceGuard implements SourceGate {
  private readonly sources = new Map<string, Source>();
  private readonly bans: BanStore;
  private readonly now: () => number;
  private readonly maxSources: number;
  private readonly banLog: RateLimitedLog;
  private trusted = new CidrSet([]);
  private floodMax = 0;
  private floodWindowMs = 0;
  private floodBanMs = 0;
  private authMax = 0;
  private authWindowMs = 0;
  private authBanMs = 0;
  /** Messages (and connections) dropped because their source was banned, by the ban's reason. */
  private readonly dropped = [0, 0];
  /** Bans made since start, by reason. */
  private readonly issued = [0, 0];

  constructor(settings: GuardSettings, opts: GuardOptions) {
    this.bans = opts.bans ?? new MemoryBans();
    this.now = opts.now ?? Date.now;
    this.maxSources = opts.maxSources ?? DEFAULT_MAX_SOURCES;
    // A ban line per ban, at most 20 per 10 s: a spoofed flood must not become a log flood.
    this.banLog = new RateLimitedLog(opts.log, 10_000, 20, this.now);
    this.configure(settings);
  }

  /** At start and on SIGHUP: limits apply from the next message; counting starts afresh. */
  configure(s: GuardSettings): void {
    this.trusted = new CidrSet(s.trusted);
    this.floodMax = s.floodLimit.requests;
    this.floodWindowMs = s.floodLimit.seconds * 1000;
    this.floodBanMs = s.floodLimit.ban * 1000;
    this.authMax = s.authFailures.max;
    this.authWindowMs = s.authFailures.seconds * 1000;
    this.authBanMs = s.authFailures.ban * 1000;
    // Entries cache whether their address is trusted; a new list needs new entries.
    this.sources.clear();
    for (const b of [...this.bans.all()]) if (this.trusted.has(b.address)) this.bans.remove(b.address);
  }

  /** SourceGate: every datagram and stream message, before it is parsed. */
  admit(address: string, data: Buffer): boolean {
    const now = this.now();
    let s = this.sources.get(address);
    if (s === undefined) s = this.track(address, now);
    if (s.trusted) return true;
    if (s.bannedUntil !== 0) {
      if (now < s.bannedUntil) {
        this.dropped[s.banReason]!++;
        return false;
      }
      s.bannedUntil = 0;
    }
    // Responses answer what this proxy sent (rings, keepalive probes): a busy phone must not
    // be banned for answering us. They are parsed but never answered or kept.
    if (isResponse(data)) return true;
    if (now - s.windowStart >= this.floodWindowMs) {
      s.windowStart = now;
      s.requests = 1;
      return true;
    }
    if (++s.requests <= this.floodMax) return true;
    this.ban(s, FLOOD, now, s.requests);
    this.dropped[FLOOD]!++;
    return false;
  }

  /** SourceGate: a stream connection from address was accepted; false closes it. */
  admitConnection(address: string): boolean {
    const now = this.now();
    const s = this.sources.get(address) ?? this.track(address, now);
    if (s.trusted || s.bannedUntil === 0 || now >= s.bannedUntil) return true;
    this.dropped[s.banReason]!++;
    return false;
  }

  /** A wrong digest answer (or an unknown username) from address. */
  authFailed(address: string): void {
    const now = this.now();
    const s = this.sources.get(address) ?? this.track(address, now);
    if (s.trusted || (s.bannedUntil !== 0 && now < s.bannedUntil)) return;
    if (s.failures === 0 || now - s.failStart >= this.authWindowMs) {
      s.failStart = now;
      s.failures = 1;
    } else s.failures++;
    if (s.failures >= this.authMax) this.ban(s, AUTH, now, s.failures);
  }

  /** Bans in force now. */
  list(): Ban[] {
    const now = this.now();
    this.bans.expire(now);
    return [...this.bans.all()].filter((b) => b.until > now);
  }

  /** Lifts the ban on an address (any spelling of it); false when there was none. */
  lift(address: string): boolean {
    const key = canonicalAddress(address);
    const now = this.now();
    const ban = this.bans.get(key);
    const had = ban !== undefined && ban.until > now;
    this.bans.remove(key);
    for (const s of this.sources.values()) {
      if (s.address !== key) continue;
      s.bannedUntil = 0;
      s.requests = 0;
      s.failures = 0;
      s.windowStart = now;
    }
    return had;
  }

  /**
   * The ban store changed for an address without this guard (another instance banned or lifted
   * it, several instances): the address's counters take the stored ban, or none.
   */
  refresh(address: string): void {
    const ban = this.bans.get(address);
    const now = this.now();
    for (const s of this.sources.values()) {
      if (s.address !== address || s.trusted) continue;
      if (ban !== undefined && ban.until > now) {
        s.bannedUntil = ban.until;
        s.banReason = ban.reason === 'flood' ? FLOOD : AUTH;
      } else s.bannedUntil = 0;
    }
  }

  /** Drops idle sources and ended bans; called by the app's one-second sweeper. */
  sweep(): void {
    const now = this.now();
    this.bans.expire(now);
    for (const [k, s] of this.sources) {
      if (s.bannedUntil !== 0 && now < s.bannedUntil) continue;
      if (now - s.windowStart < this.floodWindowMs) continue;
      if (s.failures !== 0 && now - s.failStart < this.authWindowMs) continue;
      this.sources.delete(k);
    }
  }

  get stats(): { activeBans: number; sources: number; dropped: ReadonlyMap<BanReason, number>; bans: ReadonlyMap<BanReason, number> } {
    const now = this.now();
    let active = 0;
    for (const b of this.bans.all()) if (b.until > now) active++;
    return {
      activeBans: active,
      sources: this.sources.size,
      dropped: new Map(BAN_REASONS.map((r, i) => [r, this.dropped[i]!])),
      bans: new Map(BAN_REASONS.map((r, i) => [r, this.issued[i]!])),
    };
  }

  private track(address: string, now: number): Source {
    if (this.sources.size >= this.maxSources) this.sources.delete(this.sources.keys().next().value!);
    const canonical = canonicalAddress(address);
    const s = new Source(canonical, this.trusted.has(canonical), now);
    const ban = this.bans.get(canonical);
    if (ban !== undefined && ban.until > now && !s.trusted) {
      s.bannedUntil = ban.until;
      s.banReason = ban.reason === 'flood' ? FLOOD : AUTH;
    }
    this.sources.set(address, s);
    return s;
  }

  private ban(s: Source, reason: number, now: number, count: number): void {
    const until = now + (reason === FLOOD ? this.floodBanMs : this.authBanMs);
    s.bannedUntil = until;
    s.banReason = reason;
    s.requests = 0;
    s.failures = 0;
    const name = BAN_REASONS[reason]!;
    this.bans.put({ address: s.address, reason: name, until });
    this.issued[reason]!++;
    const what = reason === FLOOD ? { requests: count, seconds: this.floodWindowMs / 1000 } : { failures: count, seconds: this.authWindowMs / 1000 };
    this.banLog.warn({ address: s.address, reason: name, until: new Date(until).toISOString(), ...what }, 'source address banned');
  }
}
