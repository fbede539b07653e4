/**
 * Who is calling the HTTP API: the admin (Bearer token) or one device (HTTP Basic with its SIP
 * username and password). Pure functions plus a small failed-login limiter; access.ts decides
 * what each principal may do on which route.
 */
import { LRUCache } from 'lru-cache';
import { sameSecret } from '../lib/constant-time.js';
import type { AdminView } from './view.js';

export type Principal =
  | { role: 'admin' }
  | { role: 'device'; username: string; extension: string };

export type AuthResult =
  | { kind: 'ok'; principal: Principal }
  /** No usable Authorization header: 401, not a failed login. */
  | { kind: 'anonymous' }
  /** Credentials given and wrong (or unparsable): 401 and counts against the source address. */
  | { kind: 'failed'; scheme: 'bearer' | 'basic'; username?: string };

/** Parses the Authorization header and checks it against the view. Never returns a password. */
export function authenticate(header: string | undefined, view: AdminView): AuthResult {
  if (header === undefined) return { kind: 'anonymous' };
  const space = header.indexOf(' ');
  if (space < 0) return { kind: 'anonymous' };
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();

  if (scheme === 'bearer') {
    const token = view.adminToken();
    // No token configured means nobody is admin; still a failed attempt so guessing is limited.
    if (token === undefined || token === '' || value === '' || !sameSecret(value, token)) {
      return { kind: 'failed', scheme: 'bearer' };
    }
    return { kind: 'ok', principal: { role: 'admin' } };
  }

  if (scheme === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    // RFC 7617: the user-id cannot contain a colon, the password may.
    const colon = decoded.indexOf(':');
    if (colon <= 0) return { kind: 'failed', scheme: 'basic' };
    const username = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const extension = view.deviceLogin(username, password);
    if (extension === undefined) return { kind: 'failed', scheme: 'basic', username };
    return { kind: 'ok', principal: { role: 'device', username, extension } };
  }

  // Other schemes (Digest, Negotiate...) are not offered; treat as no credentials.
  return { kind: 'anonymous' };
}

export interface LoginLimiterOptions {
  /** Failed logins allowed per source address within windowMs before refusing. */
  maxFailures: number;
  windowMs: number;
  /** Addresses tracked at once; the least recently failing are forgotten first. */
  maxTracked: number;
}

export const DEFAULT_LOGIN_LIMIT: LoginLimiterOptions = { maxFailures: 5, windowMs: 60_000, maxTracked: 10_000 };

/**
 * Fixed-window failed-login counter per source address (the idea of Kamailio's pike module,
 * for logins). The window opens at the first failure and is not extended by later ones, so a
 * refused address is served again once the window has passed. The LRU bound keeps memory
 * constant when many addresses fail.
 */
export class LoginLimiter {
  private readonly failures: LRUCache<string, { count: number }>;

  constructor(private readonly opts: LoginLimiterOptions = DEFAULT_LOGIN_LIMIT) {
    this.failures = new LRUCache({ max: opts.maxTracked, ttl: opts.windowMs, noUpdateTTL: true });
  }

  /** Seconds to wait before trying again, or 0 when this address may try now. */
  retryAfter(ip: string): number {
    const entry = this.failures.get(ip);
    if (entry === undefined || entry.count < this.opts.maxFailures) return 0;
    const ms = this.failures.getRemainingTTL(ip);
    return Math.max(1, Math.ceil(ms / 1000));
  }

  fail(ip: string): void {
    const entry = this.failures.get(ip);
    if (entry === undefined) this.failures.set(ip, { count: 1 });
    else entry.count++; // mutate in place: the TTL keeps counting from the first failure
  }
}
