/**
 * IPv4 and IPv6 networks (`10.0.0.0/8`, `2001:db8::/32`): which source addresses are trusted.
 * Parsed by hand into 32-bit words, so a match is a few integer compares and an address is
 * parsed once per source (the guard caches the answer), never per message.
 */

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

/** Dotted quad to an unsigned 32-bit number; -1 when it is not one. */
function parseV4(s: string, from = 0, to = s.length): number {
  let value = 0;
  let part = -1;
  let parts = 0;
  let digits = 0;
  for (let i = from; i <= to; i++) {
    const c = i < to ? s.charCodeAt(i) : 0x2e; // a final '.' closes the last part
    if (c === 0x2e) {
      if (part < 0 || part > 255) return -1;
      value = value * 256 + part;
      parts++;
      part = -1;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      // A leading zero ("010") is ambiguous (octal in some parsers): refused.
      if (digits > 0 && part === 0) return -1;
      part = (part < 0 ? 0 : part) * 10 + (c - 0x30);
      if (++digits > 3) return -1;
    } else return -1;
  }
  return parts === 4 ? value : -1;
}

/** IPv6 text (with ::, an embedded IPv4 tail, a %zone) to eight 16-bit groups; undefined when it is not one. */
function parseV6(s: string): number[] | undefined {
  const zone = s.indexOf('%');
  const text = zone < 0 ? s : s.slice(0, zone);
  const gap = text.indexOf('::');
  if (gap >= 0 && text.indexOf('::', gap + 1) >= 0) return undefined;
  const head = gap < 0 ? text : text.slice(0, gap);
  const tail = gap < 0 ? '' : text.slice(gap + 2);
  const groups = (part: string, last: boolean): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const fields = part.split(':');
    for (let k = 0; k < fields.length; k++) {
      const f = fields[k]!;
      if (last && k === fields.length - 1 && f.indexOf('.') >= 0) {
        const v4 = parseV4(f);
        if (v4 < 0) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
        continue;
      }
      if (f.length === 0 || f.length > 4) return undefined;
      let v = 0;
      for (let i = 0; i < f.length; i++) {
        const c = f.charCodeAt(i) | 0x20;
        const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x61 + 10 : -1;
        if (d < 0) return undefined;
        v = v * 16 + d;
      }
      out.push(v);
    }
    return out;
  };
  const h = groups(head, gap < 0);
  const t = groups(tail, true);
  if (!h || !t) return undefined;
  if (gap < 0) return h.length === 8 ? h : undefined;
  const fill = 8 - h.length - t.length;
  if (fill < 1) return undefined;
  return [...h, ...new Array<number>(fill).fill(0), ...t];
}

/** An IP literal (IPv4, IPv6, IPv4-mapped IPv6 as IPv4) as words; undefined when it is none. */
export function parseAddress(s: string): Parsed | undefined {
  if (s.indexOf(':') < 0) {
    const v4 = parseV4(s);
    return v4 < 0 ? undefined : { family: 4, words: [0, 0, 0, v4] };
  }
  const g = parseV6(s);
  if (!g) return undefined;
  // ::ffff:a.b.c.d is how a dual-stack socket shows an IPv4 peer: the same host as a.b.c.d.
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return { family: 4, words: [0, 0, 0, ((g[6]! << 16) | g[7]!) >>> 0] };
  }
  const w = (i: number) => ((g[i]! << 16) | g[i + 1]!) >>> 0;
  return { family: 6, words: [w(0), w(2), w(4), w(6)] };
}

/** The canonical text of an address for ban keys: IPv4-mapped IPv6 as plain IPv4, the zone dropped. */
export function canonicalAddress(s: string): string {
  if (s.startsWith('::ffff:') && s.indexOf('.') > 0 && parseV4(s, 7) >= 0) return s.slice(7);
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
