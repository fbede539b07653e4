/**
 * Strings and bytes that outlive the message they came from.
 *
 * V8 makes a substring of 13 or more characters a "sliced string": a view that keeps its whole
 * parent alive. A binding's contact sliced out of `<sip:...>;expires=600`, or a nonce sliced
 * out of the Authorization header, would keep that whole header in memory for as long as the
 * binding lives. A transaction key kept for 32 s would keep its request's header text. Strings stored beyond their message go
 * through ownString first; the per-message path does not need it.
 */
export function ownString(s: string): string {
  // Shorter substrings are copies already. For longer ones, the concatenation is flattened
  // into a fresh string by slice(), and the result points into that copy only.
  return s.length < 13 ? s : (' ' + s).slice(1);
}

/**
 * The same for bytes: Buffer.from() and allocUnsafe() hand out slices of a shared 8 KiB pool, and
 * one slice kept for 32 s (a response a transaction may re-send) keeps the whole slab. A buffer
 * kept that long gets its own memory; one that has it already is returned as it is.
 */
export function ownBuffer(b: Buffer): Buffer {
  if (b.byteOffset === 0 && b.buffer.byteLength === b.length) return b;
  const own = Buffer.allocUnsafeSlow(b.length);
  b.copy(own);
  return own;
}

/**
 * The same few User-Agent values repeat across thousands of bindings; one copy each. Bounded,
 * so a flood of distinct values cannot grow it: past the bound, values are only owned.
 */
export class StringPool {
  private readonly pool = new Map<string, string>();

  constructor(private readonly max = 1000) {}

  get size(): number {
    return this.pool.size;
  }

  intern(s: string): string {
    const hit = this.pool.get(s);
    if (hit !== undefined) return hit;
    const own = ownString(s);
    if (this.pool.size < this.max) this.pool.set(own, own);
    return own;
  }
}
