/**
 * Bans shared by several instances: an address banned by one instance (a flood, a password
 * guesser) is dropped by all of them. Memory answers every question on the datagram path;
 * bans made and lifted here are written to Redis behind it, and the other instances' arrive
 * through mirror/forget, which write nothing back.
 */
import { BAN_REASONS, MemoryBans, type Ban, type BanStore } from '../../security/bans.js';

export interface BanWriter {
  put(ban: Ban): void;
  remove(address: string): void;
}

export class SharedBans implements BanStore {
  private readonly local = new MemoryBans();

  constructor(private readonly writer: BanWriter) {}

  get(address: string): Ban | undefined {
    return this.local.get(address);
  }

  put(ban: Ban): void {
    this.local.put(ban);
    this.writer.put(ban);
  }

  remove(address: string): boolean {
    const had = this.local.remove(address);
    if (had) this.writer.remove(address);
    return had;
  }

  /** Ended bans go from memory; each instance drops its own copy, and Redis's is dropped when read. */
  expire(now: number): number {
    return this.local.expire(now);
  }

  all(): Iterable<Ban> {
    return this.local.all();
  }

  get size(): number {
    return this.local.size;
  }

  /** Another instance's ban. */
  mirror(ban: Ban): void {
    this.local.put(ban);
  }

  /** Another instance lifted a ban. */
  forget(address: string): void {
    this.local.remove(address);
  }
}

/** A stored ban, or undefined when the record is not one. */
export function decodeBan(raw: unknown): Ban | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const reason = BAN_REASONS.find((x) => x === r.reason);
  if (typeof r.address !== 'string' || reason === undefined || typeof r.until !== 'number') return undefined;
  return { address: r.address, reason, until: r.until };
}
