/**
 * IPv4 and IPv6 networks (`10.0.0.0/8`, `2001:db8::/32`): which source addresses are trusted.
 * Held as 32-bit words, so a match is a few integer compares and an address is
 * parsed once per source (the guard caches the answer), never per message. The address text is
 * read by transport/addresses.ts, as for NAT detection.
 */
import { addressGroups, ipv4Number } from '../transport/addresses.js';

/** An address as four 32-bit words (IPv4: one word, in words[3], family 4). */
interface Parsed {
  family: 4 | 6;
  words: [number, number, number, number];
}

/** What config/ gives: an address and a prefix length (config's Cidr has this shape). */
export interface CidrSpec {
  address: string;
  prefix: number;
}

interface Net {
  family: 4 | 6;
  words: [number, number, number, number];
  masks: [number, number, number, number];
}

/** An IP literal (IPv4, IPv6, IPv4-mapped IPv6 as IPv4) as words; undefined when it is none. */
export function parseAddress(s: string): Parsed | undefined {
  if (s.indexOf(':') < 0) {
    const v4 = ipv4Number(s);
    return v4 < 0 ? undefined : { family: 4, words: [0, 0, 0, v4] };
  }
  const g = addressGroups(s);
  if (!g || g.length !== 8) return undefined;
  // ::ffff:a.b.c.d is how a dual-stack socket shows an IPv4 peer: the same host as a.b.c.d.
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return { family: 4, words: [0, 0, 0, ((g[6]! << 16) | g[7]!) >>> 0] };
  }
  const w = (i: number) => ((g[i]! << 16) | g[i + 1]!) >>> 0;
  return { family: 6, words: [w(0), w(2), w(4), w(6)] };
}

/** The canonical text of an address for ban keys: IPv4-mapped IPv6 as plain IPv4, the zone dropped. */
export function canonicalAddress(s: string): string {
  if (s.startsWith('::ffff:') && s.indexOf('.') > 0 && ipv4Number(s.slice(7)) >= 0) return s.slice(7);
  const zone = s.indexOf('%');
  return (zone < 0 ? s : s.slice(0, zone)).toLowerCase();
}

/** A set of networks; `has` answers whether an address lies in any of them. */
export class CidrSet {
  private readonly nets: Net[] = [];

  /** Throws on a spec that does not parse (config/ validated it already). */
  constructor(specs: readonly CidrSpec[]) {
    for (const spec of specs) {
      const p = parseAddress(spec.address);
      if (!p) throw new TypeError(`not an IP address: ${spec.address}`);
      // A network written as IPv4-mapped IPv6 (::ffff:10.0.0.0/104) is the IPv4 network.
      const mapped = p.family === 4 && spec.address.indexOf(':') >= 0;
      const prefix = mapped ? spec.prefix - 96 : spec.prefix;
      const max = p.family === 4 ? 32 : 128;
      if (!(prefix >= 0 && prefix <= max)) throw new TypeError(`bad prefix length for ${spec.address}: ${spec.prefix}`);
      const bits = p.family === 4 ? prefix + 96 : prefix;
      const masks: [number, number, number, number] = [0, 0, 0, 0];
      for (let i = 0; i < 4; i++) {
        const b = Math.max(0, Math.min(32, bits - 32 * i));
        masks[i] = b === 0 ? 0 : (0xffffffff << (32 - b)) >>> 0;
      }
      const words = p.words.map((w, i) => (w & masks[i]!) >>> 0) as Net['words'];
      this.nets.push({ family: p.family, words, masks });
    }
  }

  get size(): number {
    return this.nets.length;
  }

  has(address: string): boolean {
    if (this.nets.length === 0) return false;
    const p = parseAddress(address);
    if (!p) return false;
    for (const n of this.nets) {
      if (n.family !== p.family) continue;
      if (
        ((p.words[0] & n.masks[0]) >>> 0) === n.words[0] &&
        ((p.words[1] & n.masks[1]) >>> 0) === n.words[1] &&
        ((p.words[2] & n.masks[2]) >>> 0) === n.words[2] &&
        ((p.words[3] & n.masks[3]) >>> 0) === n.words[3]
      ) {
        return true;
      }
    }
    return false;
  }
}
