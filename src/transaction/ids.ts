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

  /**
   * The To tag of a stateless answer: derived from the request's transaction key, so every
   * retransmission gets the same one (§8.2.7), and it starts like all our tags.
   */
  statelessTag(key: string): string {
    let h = 0x811c9dc5; // FNV-1a
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    return `${this.tagSeed}s${(h >>> 0).toString(36)}`;
  }

  /**
   * Whether a To tag is one this process made. This proxy is never a dialog's UAS, so an ACK
   * carrying such a tag acknowledges a final response we generated (as Kamailio's sl_filter_ACK).
   */
  isOurTag(tag: string): boolean {
    return tag.startsWith(this.tagSeed);
  }
}
