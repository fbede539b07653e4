import { randomBytes } from 'node:crypto';

/**
 * Branch ids (§8.1.1.7: the magic cookie, unique per request) and tags (§19.3) this process
 * makes. A random prefix per process, then a counter: unique without a random draw per id.
 */
export class LocalIds {
  /** Every branch id we make starts with this: a Via carrying it is ours. */
  readonly branchPrefix = `z9hG4bK-sb${randomBytes(4).toString('hex')}`;
  private readonly tagSeed = randomBytes(4).toString('hex');
  private seq = 0;

  /** A fresh branch id carrying the request's loop hash (§16.6 step 8). */
  branch(loopHash: string): string {
    return `${this.branchPrefix}${loopHash}.${(++this.seq).toString(36)}`;
  }

  /** A To tag for a response we generate. */
  tag(): string {
    return `${this.tagSeed}${(++this.seq).toString(36)}`;
  }
}
