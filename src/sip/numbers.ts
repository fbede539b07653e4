/**
 * Decimal numbers in SIP headers (Content-Length, Max-Forwards, Expires, CSeq): digits only,
 * leading zeros allowed (RFC 4475 wsinv sends "Max-Forwards: 0068"), no sign, no regex.
 */

/** The decimal in buf[s, e): at most maxDigits digits and at most max, else -1. */
export function parseDecimal(buf: Buffer, s: number, e: number, max: number, maxDigits = 10): number {
  if (s >= e || e - s > maxDigits) return -1;
  let n = 0;
  for (let i = s; i < e; i++) {
    const c = buf[i]!;
    if (c < 48 || c > 57) return -1;
    n = n * 10 + (c - 48);
  }
  return n > max ? -1 : n;
}

/**
 * The decimal in v: at most maxDigits digits, else -1. Above max it is -1, or max itself with
 * saturate (delta-seconds beyond 2^32-1 mean "very long", RFC 3261 §20.19).
 */
export function parseDecimalString(v: string, max: number, maxDigits = 16, saturate = false): number {
  if (v.length === 0 || v.length > maxDigits) return -1;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    n = n * 10 + (c - 48);
  }
  if (n <= max) return n;
  return saturate ? max : -1;
}
