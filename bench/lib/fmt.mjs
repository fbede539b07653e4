// Numbers as the shell's awk printed them: printf("%.Nf") rounds an exact tie to even,
// Number.prototype.toFixed rounds it up; the figures must not change with the rewrite.

/**
 * printf("%.<d>f", x) of C.
 * @param {number} x
 * @param {number} d
 */
export function cfixed(x, d) {
  if (!Number.isFinite(x)) return String(x);
  const exact = x.toFixed(Math.min(100, d + 40)); // the binary value's decimal digits
  const dot = exact.indexOf('.');
  const cut = dot + (d > 0 ? 1 + d : 0);
  if (/^\.?50*$/.test(exact.slice(cut))) {
    const kept = exact.slice(0, cut);
    const last = Number(kept[kept.length - 1]);
    if (last % 2 === 0) return kept;
  }
  return x.toFixed(d);
}

/** A whole number as awk's "%.0f". @param {number} x */
export const c0 = (x) => cfixed(x, 0);
