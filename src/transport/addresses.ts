/**
 * What kind of IP address a string is, and whether it lies in a network: pure, no regular
 * expression, no DNS. Used for NAT detection (a private address in a Contact or Via), for
 * choosing which of our addresses a message leaves from, and for `sipbob check`.
 */

export type AddressScope = 'unspecified' | 'loopback' | 'link-local' | 'private' | 'public';

/** An address as 16-bit groups: 2 for IPv4, 8 for IPv6; undefined when s is not an IP literal. */
export function addressGroups(s: string): number[] | undefined {
  const v4 = ipv4Number(s);
  if (v4 !== -1) return [v4 >>> 16, v4 & 0xffff];
  return ipv6Groups(s);
}

/** Dotted-quad IPv4 as an unsigned 32-bit number, or -1 (also for a part with a leading zero). */
export function ipv4Number(s: string): number {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || ++dots > 3) return -1;
      n = n * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      // A leading zero ("010") is octal to some parsers: ambiguous, so not an address.
      if (digits > 0 && part === 0) return -1;
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return n * 256 + part;
}

/** IPv6 literal (no brackets; a zone "%eth0" is ignored; an IPv4 tail allowed) as 8 groups, or undefined. */
function ipv6Groups(s: string): number[] | undefined {
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  if (s.indexOf(':') === -1 || s.length > 45) return undefined;
  const gap = s.indexOf('::');
  if (gap !== -1 && s.indexOf('::', gap + 1) !== -1) return undefined;
  const head = gap === -1 ? s : s.slice(0, gap);
  const tail = gap === -1 ? '' : s.slice(gap + 2);
  const a = head === '' ? [] : parseGroups(head, gap === -1);
  const b = tail === '' ? [] : parseGroups(tail, true);
  if (a === undefined || b === undefined) return undefined;
  const missing = 8 - a.length - b.length;
  if (gap === -1 ? missing !== 0 : missing < 1) return undefined;
  const out = a;
  for (let i = 0; i < missing; i++) out.push(0);
  for (const g of b) out.push(g);
  return out;
}

/** "a:b:c" hex groups; the last may be a dotted IPv4 (two groups) when it ends the address. */
function parseGroups(s: string, endsAddress: boolean): number[] | undefined {
  const out: number[] = [];
  const parts = s.split(':');
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (i === parts.length - 1 && endsAddress && p.indexOf('.') !== -1) {
      const v4 = ipv4Number(p);
      if (v4 === -1) return undefined;
      out.push(v4 >>> 16, v4 & 0xffff);
      continue;
    }
    if (p.length === 0 || p.length > 4) return undefined;
    let g = 0;
    for (let j = 0; j < p.length; j++) {
      const c = p.charCodeAt(j) | 32;
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
      if (d < 0) return undefined;
      g = g * 16 + d;
    }
    out.push(g);
  }
  return out;
}

/** Whether the address (groups) lies in the network base/prefix of the same family. */
export function inNetwork(address: readonly number[], base: readonly number[], prefix: number): boolean {
  if (address.length !== base.length) return false;
  let bits = prefix;
  for (let i = 0; i < address.length && bits > 0; i++, bits -= 16) {
    const mask = bits >= 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
    if ((address[i]! & mask) !== (base[i]! & mask)) return false;
  }
  return true;
}

/**
 * Private: RFC 1918 (10/8, 172.16/12, 192.168/16), RFC 6598 shared space (100.64/10, carrier-grade
 * NAT) and IPv6 unique local fc00::/7 (RFC 4193). An IPv4-mapped IPv6 address is judged as its
 * IPv4 address. Undefined when s is not an IP literal.
 */
export function addressScope(s: string): AddressScope | undefined {
  // IPv4 (nearly every Contact and Via) without building groups: this runs per REGISTER.
  const v4 = ipv4Number(s);
  if (v4 !== -1) return v4Scope(v4);
  const g = ipv6Groups(s);
  if (g === undefined) return undefined;
  // ::ffff:a.b.c.d
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) return v4Scope(g[6]! * 65536 + g[7]!);
  if (g.every((x) => x === 0)) return 'unspecified';
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return 'loopback';
  if ((g[0]! & 0xffc0) === 0xfe80) return 'link-local';
  if ((g[0]! & 0xfe00) === 0xfc00) return 'private';
  return 'public';
}

function v4Scope(n: number): AddressScope {
  const a = n >>> 24;
  const b = (n >>> 16) & 0xff;
  if (n === 0) return 'unspecified';
  if (a === 127) return 'loopback';
  if (a === 169 && b === 254) return 'link-local';
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127)) return 'private';
  return 'public';
}

/** The wildcard addresses a listener binds to mean "every address of this host". */
export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

/** 127.0.0.0/8 or ::1 as written (lower case, compressed), without allocating: for per-message checks. */
export function isLoopbackAddress(s: string): boolean {
  if (s === '::1') return true;
  return s.charCodeAt(0) === 49 && s.startsWith('127.') && ipv4Number(s) !== -1;
}
