/**
 * Choosing the response a forking proxy sends upstream when no branch answered 2xx
 * (RFC 3261 §16.7 step 6). Pure.
 */

/**
 * Within the 4xx class, responses that let the caller retry successfully come first
 * (§16.7: 401, 407, 415, 420, 484), then a real busy, then "not available", then the rest;
 * a branch that timed out (408) is the least informative.
 */
function rank4xx(code: number): number {
  switch (code) {
    case 401:
    case 407:
    case 415:
    case 420:
    case 484:
      return 0;
    case 486:
      return 1;
    case 480:
      return 2;
    case 408:
      return 4;
    default:
      return 3;
  }
}

/**
 * Index of the best final response among non-2xx statuses: any 6xx wins; otherwise the lowest
 * class; ties broken by rank4xx, then by arrival order. Returns -1 for an empty list.
 */
export function chooseBest(statuses: readonly number[]): number {
  let best = -1;
  for (let i = 0; i < statuses.length; i++) {
    if (best === -1 || better(statuses[i]!, statuses[best]!)) best = i;
  }
  return best;
}

function better(a: number, b: number): boolean {
  const ca = Math.floor(a / 100);
  const cb = Math.floor(b / 100);
  if (ca === 6 || cb === 6) return ca === 6 && cb !== 6;
  if (ca !== cb) return ca < cb;
  if (ca === 4) return rank4xx(a) < rank4xx(b);
  return false;
}

/** §16.7 step 6: a 503 must not be forwarded as such (it would stop the caller trying elsewhere). */
export function upstreamStatus(code: number): number {
  return code === 503 ? 500 : code;
}
