/**
 * Comparing secrets (the admin token, device passwords) without leaking them through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/**
 * True when both strings are equal, in time independent of where they differ. Hashing both
 * sides first gives timingSafeEqual equal-length inputs, so neither the content nor the length
 * of the expected secret shows in the response time.
 */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(sha256(given), sha256(expected));
}
