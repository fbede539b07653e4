import { parseDecimalString } from './numbers.js';

/**
 * The interval of a Session-Expires header (RFC 4028 §4: delta-seconds, then parameters such
 * as ;refresher=uac), in seconds; 0 when absent or not a number.
 */
export function parseSessionExpires(v: string | undefined): number {
  if (v === undefined) return 0;
  const semi = v.indexOf(';');
  const n = parseDecimalString((semi === -1 ? v : v.slice(0, semi)).trim(), 0xffffffff, 10);
  return n < 0 ? 0 : n;
}
