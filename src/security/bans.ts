/**
 * Where bans are kept: behind BanStore so that a shared store (Redis, issue 14) can replace
 * the in-memory one without the guard changing.
 */

export const BAN_REASONS = ['flood', 'auth-failures'] as const;
export type BanReason = (typeof BAN_REASONS)[number];

export interface Ban {
  /** Canonical address text (security/cidr.ts canonicalAddress). */
  address: string;
  reason: BanReason;
  /** Milliseconds since the epoch when the ban ends. */
  until: number;
}

export interface BanStore {
  /** The ban on an address, expired ones included (the caller compares `until`). */
  get(address: string): Ban | undefined;
  /** Adds or replaces the ban on ban.address. */
  put(ban: Ban): void;
  /** False when the address had no ban. */
  remove(address: string): boolean;
  /** Drops bans that ended at or before now; returns the count left. */
  expire(now: number): number;
  /** Every ban, ended ones included until the next expire(). */
  all(): Iterable<Ban>;
  readonly size: number;
}

/** Far more bans than a real attack produces (each costs the attacker a whole flood window). */
const DEFAULT_MAX_BANS = 100_000;

/**
 * Bans in a Map, bounded: when full, the oldest ban goes first. Bans are created in time order
 * with a duration per reason, so the oldest is (nearly) the one that would end first.
 */
export class MemoryBans implements BanStore {
  private readonly bans = new Map<string, Ban>();

  constructor(private readonly max = DEFAULT_MAX_BANS) {}

  get(address: string): Ban | undefined {
    return this.bans.get(address);
  }

  put(ban: Ban): void {
    // Re-inserted at the end, so the Map's order stays the order of the bans' starts.
    this.bans.delete(ban.address);
    if (this.bans.size >= this.max) this.bans.delete(this.bans.keys().next().value!);
    this.bans.set(ban.address, ban);
  }

  remove(address: string): boolean {
    return this.bans.delete(address);
  }

  expire(now: number): number {
    for (const [k, b] of this.bans) if (b.until <= now) this.bans.delete(k);
    return this.bans.size;
  }

  all(): Iterable<Ban> {
    return this.bans.values();
  }

  get size(): number {
    return this.bans.size;
  }
}
